//! Checks: one file per kind, one trait, one registry.
//!
//! Adding a kind means one new file with a `build` function and one line in [`KINDS`].

mod backup;
mod checklist;
mod guard;
mod heartbeat;
mod http;
mod ping;
mod resources;
mod tcp;
mod uptime;

use std::{collections::BTreeMap, future::Future, path::PathBuf, pin::Pin, sync::Arc};

use outpost_shared::{CheckId, CheckSpec, HumanDuration, Status};
use serde::de::DeserializeOwned;

use crate::live::Live;

pub use checklist::{Schedule, checklist_state};
pub use guard::run_guarded;
pub use heartbeat::heartbeat_state;

/// A boxed future a check returns; checks borrow themselves and the context while running.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// One kind of check, configured.
pub trait Check: Send + Sync + 'static {
    /// The settings every check shares.
    fn common(&self) -> &CheckCommon;

    /// The configured thresholds, by name, for the catalogue (e.g. `warn_loss_pct`).
    fn thresholds(&self) -> BTreeMap<String, f64> {
        BTreeMap::new()
    }

    /// Runs the check once. Never panics on outside input; a panic is caught by the caller.
    fn run<'a>(&'a self, ctx: &'a RunContext) -> CheckFuture<'a>;

    /// The catalogue entry for the birth message.
    fn spec(&self) -> CheckSpec {
        let c = self.common();
        CheckSpec {
            id: c.id.clone(),
            kind: c.kind.to_owned(),
            title: c.title.clone(),
            interval: c.interval,
            fail_after: c.fail_after,
            recover_after: c.recover_after,
            local_window: c.local_window,
            escalate_warn: c.escalate_warn,
            runbook: c.runbook.clone(),
            depends_on: c.depends_on.clone(),
            thresholds: self.thresholds(),
        }
    }
}

/// The settings every check shares (DESIGN.md "Checks").
#[derive(Debug, Clone)]
pub struct CheckCommon {
    /// Unique on the agent.
    pub id: CheckId,
    /// The kind's name.
    pub kind: &'static str,
    /// Plain-language title.
    pub title: String,
    /// How often it runs.
    pub interval: HumanDuration,
    /// How long one run may take before it is stopped and reported `unknown`.
    pub timeout: HumanDuration,
    /// Consecutive failures before an escalation opens.
    pub fail_after: u32,
    /// Consecutive ok results to resolve.
    pub recover_after: u32,
    /// Time the site team gets before IT is called.
    pub local_window: HumanDuration,
    /// Steps for the site team.
    pub runbook: Vec<String>,
    /// Checks whose failure explains this one.
    pub depends_on: Vec<CheckId>,
    /// Whether warnings escalate like failures.
    pub escalate_warn: bool,
}

impl CheckCommon {
    /// How long a run may wait on the network: its `timeout` less a tenth (at most 500 ms)
    /// for setup, so a target that does not answer is reported as failing, with a reason,
    /// before the guard cuts the run off as `unknown`.
    pub fn budget(&self) -> std::time::Duration {
        let timeout = self.timeout.get();
        timeout.saturating_sub((timeout / 10).min(std::time::Duration::from_millis(500)))
    }
}

/// What one run found.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// ok, warn, fail or unknown.
    pub status: Status,
    /// One plain-language sentence for the site team.
    pub summary: String,
    /// Measured values by name.
    pub metrics: BTreeMap<String, f64>,
}

impl Outcome {
    /// An outcome without metrics.
    pub fn new(status: Status, summary: impl Into<String>) -> Self {
        Self {
            status,
            summary: summary.into(),
            metrics: BTreeMap::new(),
        }
    }

    /// Adds a metric.
    #[must_use]
    pub fn metric(mut self, name: &str, value: f64) -> Self {
        self.metrics.insert(name.to_owned(), value);
        self
    }
}

/// What a check may look at while it runs.
#[derive(Clone)]
pub struct RunContext {
    /// Shared live state (heartbeat reports, checklist confirmations).
    pub live: Live,
    /// The site's time zone.
    pub timezone: jiff::tz::TimeZone,
    /// When the agent started (a heartbeat's clock starts here before its first report).
    pub started_at: jiff::Timestamp,
    /// A folder where checks may keep small state across restarts (uptime's last boot time).
    pub state_dir: Option<PathBuf>,
}

/// A kind's settings were refused: which key (if known) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    /// The key at fault.
    pub key: Option<String>,
    /// What is wrong and what would be valid.
    pub message: String,
}

impl SettingError {
    /// An error about `key`.
    pub fn key(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }
}

/// Builds a configured check from its common settings and the rest of its table.
pub type BuildFn = fn(CheckCommon, toml::Table) -> Result<Arc<dyn Check>, SettingError>;

/// A registered kind.
pub struct Kind {
    /// The `kind = "..."` value.
    pub name: &'static str,
    /// Its builder.
    pub build: BuildFn,
}

/// Every kind the agent knows.
pub const KINDS: &[Kind] = &[
    Kind {
        name: "ping",
        build: ping::build,
    },
    Kind {
        name: "tcp",
        build: tcp::build,
    },
    Kind {
        name: "http",
        build: http::build,
    },
    Kind {
        name: "uptime",
        build: uptime::build,
    },
    Kind {
        name: "resources",
        build: resources::build,
    },
    Kind {
        name: "backup",
        build: backup::build,
    },
    Kind {
        name: "heartbeat",
        build: heartbeat::build,
    },
    Kind {
        name: "checklist",
        build: checklist::build,
    },
];

/// The kind called `name`.
pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

/// The names of every kind, for messages.
pub fn kind_names() -> Vec<&'static str> {
    KINDS.iter().map(|k| k.name).collect()
}

/// Reads a kind's settings table into `T` (which should `deny_unknown_fields`), naming the key
/// on error.
pub(crate) fn settings<T: DeserializeOwned>(table: toml::Table) -> Result<T, SettingError> {
    // TOML allows `nan` and `inf`; no threshold means anything with them, and JSON (the wire)
    // cannot carry them.
    if let Some((key, value)) = table
        .iter()
        .find(|(_, v)| v.as_float().is_some_and(|f| !f.is_finite()))
    {
        return Err(SettingError::key(
            key,
            format!("{value} is not a usable number; expected a finite number like 20.0"),
        ));
    }
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|err| {
        let path = err.path().to_string();
        let message = err.into_inner().message().trim().to_owned();
        let key = if path == "." {
            crate::config::missing_field(&message).or_else(|| unknown_field(&message))
        } else {
            Some(path)
        };
        SettingError { key, message }
    })
}

fn unknown_field(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    Some(rest.split('`').next()?.to_owned())
}

/// Checks `warn_x <= fail_x` as a setting error on `fail_x`.
pub(crate) fn limits_in_order(
    name: &str,
    limits: outpost_shared::threshold::Limits,
) -> Result<(), SettingError> {
    limits
        .check_order(name)
        .map_err(|message| SettingError::key(&format!("warn_{name}"), message))
}

/// Adds `warn_x`/`fail_x` of `limits` to a thresholds map.
pub(crate) fn put_limits(
    map: &mut BTreeMap<String, f64>,
    name: &str,
    limits: outpost_shared::threshold::Limits,
) {
    if let Some(w) = limits.warn {
        map.insert(format!("warn_{name}"), w);
    }
    if let Some(f) = limits.fail {
        map.insert(format!("fail_{name}"), f);
    }
}

/// "5 seconds", "3 minutes", "31 hours", "2 days": ages and periods in words.
pub fn in_words(d: std::time::Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = if s < 120 {
        (s, "second")
    } else if s < 2 * 3600 {
        (s / 60, "minute")
    } else if s < 3 * 86_400 {
        (s / 3600, "hour")
    } else {
        (s / 86_400, "day")
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}
