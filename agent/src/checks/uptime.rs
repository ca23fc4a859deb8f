//! `uptime`: how long the host has been up; a reboot since the last run is reported once.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
};

use outpost_shared::Status;
use serde::Deserialize;

use super::{Check, CheckCommon, CheckFuture, Outcome, RunContext, SettingError, in_words};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default = "yes")]
    warn_on_reboot: bool,
}

const fn yes() -> bool {
    true
}

struct Uptime {
    common: CheckCommon,
    warn_on_reboot: bool,
    /// The boot time seen at the last run (seconds since the epoch).
    last_boot: Mutex<Option<u64>>,
}

pub(super) fn build(
    common: CheckCommon,
    table: toml::Table,
) -> Result<Arc<dyn Check>, SettingError> {
    let s: Settings = super::settings(table)?;
    Ok(Arc::new(Uptime {
        common,
        warn_on_reboot: s.warn_on_reboot,
        last_boot: Mutex::new(None),
    }))
}

/// Boot times further apart than this are a reboot (the kernel's figure wobbles by a second).
const BOOT_TIME_SLACK_S: u64 = 5;

/// What one run concludes, from the boot time now and the one seen before.
pub fn judge_uptime(
    title: &str,
    boot: u64,
    now: u64,
    previous_boot: Option<u64>,
    warn_on_reboot: bool,
) -> Outcome {
    let up = std::time::Duration::from_secs(now.saturating_sub(boot));
    let rebooted = previous_boot.is_some_and(|prev| boot.abs_diff(prev) > BOOT_TIME_SLACK_S);
    let boot_text = jiff::Timestamp::from_second(i64::try_from(boot).unwrap_or(0)).map_or_else(
        |_| "an unknown time".to_owned(),
        |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
    );
    let outcome = if rebooted {
        let status = if warn_on_reboot {
            Status::Warn
        } else {
            Status::Ok
        };
        Outcome::new(
            status,
            format!(
                "{title} restarted at {boot_text} ({} ago) since the last check.",
                in_words(up)
            ),
        )
    } else {
        Outcome::new(
            Status::Ok,
            format!("{title} has been running for {}.", in_words(up)),
        )
    };
    outcome
        .metric("uptime_s", up.as_secs() as f64)
        .metric("boot_time", boot as f64)
        .metric("rebooted", if rebooted { 1.0 } else { 0.0 })
}

impl Uptime {
    fn state_file(ctx: &RunContext) -> Option<PathBuf> {
        ctx.state_dir.as_ref().map(|d| d.join("last-boot-time"))
    }

    fn previous_boot(&self, ctx: &RunContext) -> Option<u64> {
        let remembered = *self.last_boot.lock().ok()?;
        remembered.or_else(|| {
            let text = std::fs::read_to_string(Self::state_file(ctx)?).ok()?;
            text.trim().parse().ok()
        })
    }

    fn remember(&self, ctx: &RunContext, boot: u64) {
        if let Ok(mut last) = self.last_boot.lock() {
            if *last == Some(boot) {
                return;
            }
            *last = Some(boot);
        }
        if let Some(file) = Self::state_file(ctx)
            && let Err(err) = std::fs::write(&file, boot.to_string())
        {
            tracing::warn!(file = %file.display(), error = %err, "cannot remember the boot time");
        }
    }
}

impl Check for Uptime {
    fn common(&self) -> &CheckCommon {
        &self.common
    }

    fn run<'a>(&'a self, ctx: &'a RunContext) -> CheckFuture<'a> {
        Box::pin(async move {
            let boot = sysinfo::System::boot_time();
            let now = jiff::Timestamp::now().as_second().max(0) as u64;
            let previous = self.previous_boot(ctx);
            let outcome =
                judge_uptime(&self.common.title, boot, now, previous, self.warn_on_reboot);
            self.remember(ctx, boot);
            outcome
        })
    }
}

#[cfg(test)]
#[allow(
    clippy::float_cmp,
    reason = "the metrics compared are exact small integers"
)]
mod tests {
    use super::*;

    #[test]
    fn a_reboot_is_reported_once_with_its_time() {
        let boot = 1_780_000_000;
        let first = judge_uptime("This computer", boot, boot + 3600, None, true);
        assert_eq!(first.status, Status::Ok);
        assert!(
            first.summary.contains("running for 60 minutes"),
            "{}",
            first.summary
        );
        let rebooted = judge_uptime("This computer", boot, boot + 120, Some(boot - 86_400), true);
        assert_eq!(rebooted.status, Status::Warn);
        assert!(
            rebooted.summary.contains("restarted at"),
            "{}",
            rebooted.summary
        );
        assert_eq!(rebooted.metrics["rebooted"], 1.0);
        let quiet = judge_uptime(
            "This computer",
            boot,
            boot + 120,
            Some(boot - 86_400),
            false,
        );
        assert_eq!(quiet.status, Status::Ok);
        let wobble = judge_uptime("This computer", boot, boot + 120, Some(boot - 1), true);
        assert_eq!(wobble.status, Status::Ok);
    }
}
