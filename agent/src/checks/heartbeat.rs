//! `heartbeat`: a job (backup script, cron) reports in; silence past `period` + `grace` fails.
//! Reports arrive through the live state (`POST /api/v1/heartbeat/{id}` on the site page).

use std::{sync::Arc, time::Duration};

use jiff::Timestamp;
use outpost_shared::{HumanDuration, Status};
use serde::Deserialize;

use super::{Check, CheckCommon, CheckFuture, Outcome, RunContext, SettingError, in_words};
use crate::live::HeartbeatReport;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    period: HumanDuration,
    #[serde(default = "default_grace")]
    grace: HumanDuration,
}

const fn default_grace() -> HumanDuration {
    HumanDuration::from_secs(15 * 60)
}

struct Heartbeat {
    common: CheckCommon,
    period: Duration,
    grace: Duration,
}

pub(super) fn build(
    common: CheckCommon,
    table: toml::Table,
) -> Result<Arc<dyn Check>, SettingError> {
    let s: Settings = super::settings(table)?;
    if s.period.get().is_zero() {
        return Err(SettingError::key(
            "period",
            "period is 0s; expected how often the job reports, like \"24h\"",
        ));
    }
    Ok(Arc::new(Heartbeat {
        common,
        period: s.period.get(),
        grace: s.grace.get(),
    }))
}

/// Judges a heartbeat at `now` from its last report (or the agent's start when none came yet).
pub fn heartbeat_state(
    title: &str,
    period: Duration,
    grace: Duration,
    last: Option<&HeartbeatReport>,
    started_at: Timestamp,
    now: Timestamp,
) -> Outcome {
    let since = last.map_or(started_at, |r| r.ts);
    let silent = Duration::try_from(now.duration_since(since)).unwrap_or(Duration::ZERO);
    let every = in_words(period);
    let outcome = match last {
        _ if silent > period + grace => Outcome::new(
            Status::Fail,
            match last {
                Some(_) => format!(
                    "{title} last reported {} ago; it should report every {every}.",
                    in_words(silent)
                ),
                None => format!(
                    "{title} has not reported since the agent started {} ago; it should report every {every}.",
                    in_words(silent)
                ),
            },
        ),
        Some(HeartbeatReport {
            status: Status::Fail,
            message,
            ..
        }) => Outcome::new(
            Status::Fail,
            match message {
                Some(m) if !m.trim().is_empty() => {
                    format!(
                        "{title} reported a failure {} ago: {}",
                        in_words(silent),
                        m.trim()
                    )
                }
                _ => format!("{title} reported a failure {} ago.", in_words(silent)),
            },
        ),
        Some(_) => Outcome::new(
            Status::Ok,
            format!("{title} reported {} ago.", in_words(silent)),
        ),
        None => Outcome::new(
            Status::Ok,
            format!("Waiting for the first report from {title} (expected every {every})."),
        ),
    };
    outcome.metric("silent_s", silent.as_secs() as f64)
}

impl Check for Heartbeat {
    fn common(&self) -> &CheckCommon {
        &self.common
    }

    fn thresholds(&self) -> std::collections::BTreeMap<String, f64> {
        [
            ("period_s".to_owned(), self.period.as_secs() as f64),
            ("grace_s".to_owned(), self.grace.as_secs() as f64),
        ]
        .into()
    }

    fn run<'a>(&'a self, ctx: &'a RunContext) -> CheckFuture<'a> {
        Box::pin(async move {
            let last = ctx.live.heartbeat(&self.common.id);
            heartbeat_state(
                &self.common.title,
                self.period,
                self.grace,
                last.as_ref(),
                ctx.started_at,
                Timestamp::now(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_780_000_000 + s).expect("valid")
    }

    #[test]
    fn silence_past_period_and_grace_fails() {
        let day = Duration::from_secs(86_400);
        let grace = Duration::from_secs(3600);
        let report = |ts, status, message: Option<&str>| HeartbeatReport {
            ts,
            status,
            message: message.map(str::to_owned),
        };
        let cases = [
            (None, 60, Status::Ok, "Waiting for the first report"),
            (
                None,
                90_001,
                Status::Fail,
                "has not reported since the agent started",
            ),
            (
                Some(report(at(0), Status::Ok, None)),
                86_400,
                Status::Ok,
                "reported 24 hours ago",
            ),
            (
                Some(report(at(0), Status::Ok, None)),
                90_001,
                Status::Fail,
                "last reported 25 hours ago; it should report every 24 hours",
            ),
            (
                Some(report(at(0), Status::Fail, Some("disk full"))),
                10,
                Status::Fail,
                "reported a failure 10 seconds ago: disk full",
            ),
        ];
        for (last, now, want, text) in cases {
            let got = heartbeat_state("The backup job", day, grace, last.as_ref(), at(0), at(now));
            assert_eq!(got.status, want, "{now}: {}", got.summary);
            assert!(got.summary.contains(text), "{now}: {}", got.summary);
        }
    }
}
