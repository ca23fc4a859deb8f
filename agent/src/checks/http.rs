//! `http`: a web interface answers with the expected status and text.

use std::{sync::Arc, time::Instant};

use outpost_shared::Status;
use serde::Deserialize;

use super::{Check, CheckCommon, CheckFuture, Outcome, RunContext, SettingError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    url: String,
    expect_status: Option<ExpectStatus>,
    expect_body: Option<String>,
    warn_response_ms: Option<f64>,
}

/// `expect_status = 200`, `[200, 204]` or `"200-399"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum ExpectStatus {
    One(u16),
    Many(Vec<u16>),
    Range(String),
}

struct Http {
    common: CheckCommon,
    url: reqwest::Url,
    accept: Vec<(u16, u16)>,
    expect_body: Option<String>,
    warn_response_ms: Option<f64>,
    client: reqwest::Client,
}

fn accept_ranges(expect: Option<ExpectStatus>) -> Result<Vec<(u16, u16)>, SettingError> {
    let bad = |text: String| {
        SettingError::key(
            "expect_status",
            format!(
                "{text} is not a status; expected a code like 200, a list like [200, 204] or a range like \"200-399\""
            ),
        )
    };
    let ranges = match expect {
        None => vec![(200, 399)],
        Some(ExpectStatus::One(code)) => vec![(code, code)],
        Some(ExpectStatus::Many(codes)) => codes.into_iter().map(|c| (c, c)).collect(),
        Some(ExpectStatus::Range(text)) => {
            let (lo, hi) = text.split_once('-').unwrap_or((&text, &text));
            let lo: u16 = lo.trim().parse().map_err(|_| bad(format!("{text:?}")))?;
            let hi: u16 = hi.trim().parse().map_err(|_| bad(format!("{text:?}")))?;
            vec![(lo, hi)]
        }
    };
    if ranges.is_empty()
        || ranges
            .iter()
            .any(|&(lo, hi)| !(100..=599).contains(&lo) || hi < lo || hi > 599)
    {
        return Err(bad(format!("{ranges:?}")));
    }
    Ok(ranges)
}

pub(super) fn build(
    common: CheckCommon,
    table: toml::Table,
) -> Result<Arc<dyn Check>, SettingError> {
    let s: Settings = super::settings(table)?;
    let url = reqwest::Url::parse(&s.url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            SettingError::key("url", format!("{:?} is not a web address; expected like \"http://192.168.1.30/\" or \"https://nas.local/\"", s.url))
        })?;
    let accept = accept_ranges(s.expect_status)?;
    crate::install_tls_provider();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(5))
        // Under the check's timeout, so a slow page is reported as slow (fail) rather than
        // cut off by the guard (unknown).
        .timeout(common.budget())
        .user_agent(concat!("outpost-agent/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| SettingError {
            key: None,
            message: format!("cannot set up the web client: {err}"),
        })?;
    Ok(Arc::new(Http {
        common,
        url,
        accept,
        expect_body: s.expect_body,
        warn_response_ms: s.warn_response_ms,
        client,
    }))
}

/// `expect_body` is looked for in the first this many bytes of the page.
const MAX_BODY: usize = 1 << 20;

/// The start of the page (at most `max` bytes), as text; `None` when it cannot be read.
async fn read_capped(mut response: reqwest::Response, max: usize) -> Option<String> {
    let mut body = Vec::new();
    while body.len() < max {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(max - body.len())]),
            Ok(None) => break,
            Err(_) => return None,
        }
    }
    Some(String::from_utf8_lossy(&body).into_owned())
}

impl Http {
    async fn fetch(&self) -> Outcome {
        let title = &self.common.title;
        let started = Instant::now();
        let response = match self.client.get(self.url.clone()).send().await {
            Ok(r) => r,
            Err(err) => return Outcome::new(Status::Fail, explain(title, &self.url, &err)),
        };
        let code = response.status().as_u16();
        let body = if self.expect_body.is_some() {
            read_capped(response, MAX_BODY).await
        } else {
            None
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let outcome = if !self
            .accept
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&code))
        {
            Outcome::new(
                Status::Fail,
                format!(
                    "{title} answered with an error (HTTP {code}{}).",
                    reason(code)
                ),
            )
        } else if let Some(expected) = &self.expect_body {
            match body {
                Some(body) if body.contains(expected.as_str()) => {
                    ok_or_slow(title, ms, self.warn_response_ms)
                }
                Some(_) => Outcome::new(
                    Status::Fail,
                    format!("{title} answered, but the page does not show {expected:?}."),
                ),
                None => Outcome::new(
                    Status::Fail,
                    format!("{title} answered, but its page could not be read."),
                ),
            }
        } else {
            ok_or_slow(title, ms, self.warn_response_ms)
        };
        outcome
            .metric("status_code", f64::from(code))
            .metric("response_ms", ms)
    }
}

fn ok_or_slow(title: &str, ms: f64, warn_ms: Option<f64>) -> Outcome {
    if warn_ms.is_some_and(|w| ms >= w) {
        Outcome::new(
            Status::Warn,
            format!("{title} answers, but slowly ({ms:.0} ms)."),
        )
    } else {
        Outcome::new(
            Status::Ok,
            format!("{title} answers normally ({ms:.0} ms)."),
        )
    }
}

fn reason(code: u16) -> String {
    reqwest::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" {r}"))
        .unwrap_or_default()
}

/// A request error in plain words: name lookup, refused, TLS, timeout, too many redirects.
fn explain(title: &str, url: &reqwest::Url, err: &reqwest::Error) -> String {
    let host = url.host_str().unwrap_or("the server");
    let mut chain = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = source {
        chain.push_str(&e.to_string().to_lowercase());
        chain.push(' ');
        source = e.source();
    }
    if err.is_timeout() {
        format!("{title} did not answer in time.")
    } else if err.is_redirect() {
        format!("{title} sends the browser round in circles (more than 5 redirects).")
    } else if chain.contains("dns error")
        || chain.contains("failed to lookup")
        || chain.contains("name or service not known")
    {
        format!(
            "The name {host} could not be found (DNS); check the address or the network's name server."
        )
    } else if chain.contains("certificate") || chain.contains("tls") || chain.contains("handshake")
    {
        format!(
            "{title}'s security certificate is not trusted or the secure connection failed ({}).",
            first_line(&chain)
        )
    } else if chain.contains("connection refused") {
        format!("Nothing answers at {host}: the connection was refused (is the service running?).")
    } else if chain.contains("unreachable") {
        format!("{host} cannot be reached: there is no route to it.")
    } else {
        format!("{title} could not be reached ({}).", first_line(&chain))
    }
}

fn first_line(text: &str) -> &str {
    text.trim().lines().next().unwrap_or_default()
}

impl Check for Http {
    fn common(&self) -> &CheckCommon {
        &self.common
    }

    fn thresholds(&self) -> std::collections::BTreeMap<String, f64> {
        self.warn_response_ms
            .map(|w| ("warn_response_ms".to_owned(), w))
            .into_iter()
            .collect()
    }

    fn run<'a>(&'a self, _ctx: &'a RunContext) -> CheckFuture<'a> {
        Box::pin(self.fetch())
    }
}
