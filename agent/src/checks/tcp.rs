//! `tcp`: a port answers (`target = "host:port"`); the connect time is the metric.

use std::{sync::Arc, time::Instant};

use outpost_shared::Status;
use serde::Deserialize;

use super::{Check, CheckCommon, CheckFuture, Outcome, RunContext, SettingError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    target: String,
    warn_connect_ms: Option<f64>,
}

struct Tcp {
    common: CheckCommon,
    target: String,
    warn_connect_ms: Option<f64>,
}

pub(super) fn build(
    common: CheckCommon,
    table: toml::Table,
) -> Result<Arc<dyn Check>, SettingError> {
    let s: Settings = super::settings(table)?;
    let valid = s
        .target
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if !valid {
        return Err(SettingError::key(
            "target",
            format!(
                "{:?} is not host:port; expected like \"192.168.1.20:502\" or \"nas.local:445\"",
                s.target
            ),
        ));
    }
    Ok(Arc::new(Tcp {
        common,
        target: s.target,
        warn_connect_ms: s.warn_connect_ms,
    }))
}

impl Check for Tcp {
    fn common(&self) -> &CheckCommon {
        &self.common
    }

    fn thresholds(&self) -> std::collections::BTreeMap<String, f64> {
        self.warn_connect_ms
            .map(|w| ("warn_connect_ms".to_owned(), w))
            .into_iter()
            .collect()
    }

    fn run<'a>(&'a self, _ctx: &'a RunContext) -> CheckFuture<'a> {
        Box::pin(async move {
            let title = &self.common.title;
            let target = self.target.as_str();
            let started = Instant::now();
            let budget = self.common.budget();
            let connected = tokio::time::timeout(budget, tokio::net::TcpStream::connect(target))
                .await
                .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
            match connected {
                Ok(_stream) => {
                    let ms = started.elapsed().as_secs_f64() * 1000.0;
                    let slow = self.warn_connect_ms.is_some_and(|w| ms >= w);
                    let outcome = if slow {
                        Outcome::new(
                            Status::Warn,
                            format!("{title} answers on {target}, but slowly ({ms:.0} ms)."),
                        )
                    } else {
                        Outcome::new(Status::Ok, format!("{title} answers on {target}."))
                    };
                    outcome.metric("connect_ms", ms)
                }
                Err(err) => Outcome::new(Status::Fail, explain(title, target, &err)),
            }
        })
    }
}

/// A connect error in words.
fn explain(title: &str, target: &str, err: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match err.kind() {
        K::ConnectionRefused => format!(
            "Nothing answers at {target}: {title} refused the connection (is the service running?)."
        ),
        K::TimedOut => format!("{title} at {target} did not answer (no reply to the connection)."),
        K::HostUnreachable | K::NetworkUnreachable => {
            format!("{title} at {target} cannot be reached: there is no route to it.")
        }
        _ if err.to_string().contains("lookup") || err.to_string().contains("resolve") => {
            format!("The name in {target} could not be found ({err}).")
        }
        _ => format!("Cannot connect to {title} at {target}: {err}."),
    }
}
