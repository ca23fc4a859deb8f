//! What the engine knows about each agent's checks (from its birth) and its own settings.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use outpost_shared::{CheckId, CheckSpec, Timestamp};
use serde::{Deserialize, Serialize};

/// Collector-wide engine settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSettings {
    /// Silence after which an agent counts as offline; `None` = three times its longest interval.
    pub offline_after: Option<Duration>,
    /// The site team's window for an `agent-offline` escalation before IT is called.
    pub offline_window: Duration,
    /// An agent's Last Will (or `offline` state) opens `agent-offline` only when no `online`
    /// follows within this grace: a session taken over by the agent's own reconnect, or a
    /// blip of a second, is not an incident. The escalation still counts from the Will.
    pub offline_grace: Duration,
    /// Re-send an open, unacknowledged escalation this often (`None`: never).
    pub reminder: Option<Duration>,
    /// Flapping: this many good/bad changes of one check inside `flap_window` open a flapping escalation.
    pub flap_limit: usize,
    /// Flapping window; a flapping escalation resolves after a calm window.
    pub flap_window: Duration,
    /// Longest planned work a site team may declare.
    pub max_planned_work: Duration,
    /// Resolved escalations stay in the retained list and in memory this long.
    pub keep_resolved: Duration,
    /// Recurring maintenance windows from the config.
    pub scheduled: Vec<super::ScheduledWindow>,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            offline_after: None,
            offline_window: Duration::from_secs(120),
            offline_grace: Duration::from_secs(5),
            reminder: Some(Duration::from_secs(3600)),
            flap_limit: 6,
            flap_window: Duration::from_secs(3600),
            max_planned_work: Duration::from_secs(4 * 3600),
            keep_resolved: Duration::from_secs(24 * 3600),
            scheduled: Vec::new(),
        }
    }
}

/// How one check is judged (copied from the agent's birth).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckPolicy {
    /// Consecutive failures before an escalation opens.
    pub fail_after: u32,
    /// Consecutive good results to resolve.
    pub recover_after: u32,
    /// The site team's window.
    pub local_window: Duration,
    /// Whether `warn` counts as a failure.
    pub escalate_warn: bool,
    /// Checks whose failure explains this one.
    pub depends_on: Vec<CheckId>,
    /// Run interval (for the offline timeout).
    pub interval: Duration,
    /// Plain-language title, for notifications.
    #[serde(default)]
    pub title: String,
    /// The site team's steps, for notifications.
    #[serde(default)]
    pub runbook: Vec<String>,
}

impl From<&CheckSpec> for CheckPolicy {
    fn from(spec: &CheckSpec) -> Self {
        Self {
            fail_after: spec.fail_after.max(1),
            recover_after: spec.recover_after.max(1),
            local_window: spec.local_window.get(),
            escalate_warn: spec.escalate_warn,
            depends_on: spec.depends_on.clone(),
            interval: spec.interval.get(),
            title: spec.title.clone(),
            runbook: spec.runbook.clone(),
        }
    }
}

impl Default for CheckPolicy {
    /// What a check gets when its agent's birth has not arrived: the contract's defaults.
    fn default() -> Self {
        Self {
            fail_after: 3,
            recover_after: 2,
            local_window: Duration::ZERO,
            escalate_warn: false,
            depends_on: Vec::new(),
            interval: Duration::from_secs(60),
            title: String::new(),
            runbook: Vec::new(),
        }
    }
}

/// One agent as the engine tracks it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AgentInfo {
    /// Check policies by id, from the latest birth.
    pub checks: HashMap<CheckId, CheckPolicy>,
    /// Connected according to its presence topic (or heard from recently).
    pub online: bool,
    /// Last time anything arrived from it.
    pub last_seen: Option<Timestamp>,
    /// When its Last Will (or `offline`) arrived, while `agent-offline` waits out the grace.
    #[serde(default)]
    pub offline_since: Option<Timestamp>,
    /// Planned work declared by the site team for the whole agent, until this time.
    pub planned_until: Option<Timestamp>,
    /// Planned work the site team declared on single checks, until these times.
    #[serde(default)]
    pub planned_checks: BTreeMap<CheckId, Timestamp>,
    /// When IT last ended the site team's planned work early (told to the site page).
    #[serde(default)]
    pub planned_ended_by_it: Option<Timestamp>,
}

impl AgentInfo {
    /// Silence after which this agent counts as offline.
    pub fn offline_after(&self, settings: &EngineSettings) -> Duration {
        settings.offline_after.unwrap_or_else(|| {
            let longest = self
                .checks
                .values()
                .map(|c| c.interval)
                .max()
                .unwrap_or(Duration::from_secs(60));
            (longest * 3).max(Duration::from_secs(1))
        })
    }
}

/// A maintenance window set by IT: holds escalations of a site, an agent or one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Maintenance {
    /// Id (collector-wide).
    pub id: u64,
    /// The site.
    pub site: outpost_shared::SiteId,
    /// One agent, or all of the site.
    pub agent: Option<outpost_shared::AgentId>,
    /// One check, or all.
    pub check: Option<CheckId>,
    /// Start.
    pub starts_at: Timestamp,
    /// End.
    pub ends_at: Timestamp,
    /// Why.
    pub reason: String,
    /// Who set it.
    pub by: String,
}

impl Maintenance {
    /// Whether it covers this check at `now`.
    pub fn covers(
        &self,
        site: &outpost_shared::SiteId,
        agent: &outpost_shared::AgentId,
        check: Option<&CheckId>,
        now: Timestamp,
    ) -> bool {
        &self.site == site
            && self.agent.as_ref().is_none_or(|a| a == agent)
            && self.check.as_ref().is_none_or(|c| Some(c) == check)
            && self.starts_at <= now
            && now < self.ends_at
    }
}
