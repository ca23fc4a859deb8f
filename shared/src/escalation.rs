//! Escalations as the collector tells them back to a site on the retained `escalations` topic.

use serde::{Deserialize, Serialize};

use crate::{AgentId, SiteId, Timestamp};

/// Where an escalation is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationState {
    /// The threshold is crossed; nobody has been told yet (held, or about to open).
    Failing,
    /// The site team's window: the local page counts down.
    Local,
    /// IT has been notified.
    Escalated,
    /// IT acknowledged it.
    Acknowledged,
    /// Recovered, or closed by IT.
    Resolved,
}

impl EscalationState {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Failing => "failing",
            Self::Local => "local",
            Self::Escalated => "escalated",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
        }
    }

    /// True until resolved.
    pub const fn is_open(self) -> bool {
        !matches!(self, Self::Resolved)
    }
}

impl std::str::FromStr for EscalationState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "failing" => Ok(Self::Failing),
            "local" => Ok(Self::Local),
            "escalated" => Ok(Self::Escalated),
            "acknowledged" => Ok(Self::Acknowledged),
            "resolved" => Ok(Self::Resolved),
            other => Err(format!(
                "{other:?} is not an escalation state; expected failing, local, escalated, acknowledged or resolved"
            )),
        }
    }
}

/// What an escalation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationKind {
    /// One check crossed its threshold.
    Check,
    /// The agent stopped reporting (Last Will or silence).
    AgentOffline,
    /// A check changed state too often.
    Flapping,
}

impl EscalationKind {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Check => "check",
            Self::AgentOffline => "agent_offline",
            Self::Flapping => "flapping",
        }
    }
}

/// Who made the problem go away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixedBy {
    /// Recovered inside the site team's window.
    SiteTeam,
    /// Recovered after IT was called, or closed by IT.
    It,
}

/// One escalation as a site sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationView {
    /// Collector-wide id.
    pub id: u64,
    /// What it is about.
    pub kind: EscalationKind,
    /// The check id, or `agent-offline` for offline escalations.
    pub check: String,
    /// Lifecycle state.
    pub state: EscalationState,
    /// When the threshold was crossed.
    pub opened_at: Timestamp,
    /// End of the site team's window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_until: Option<Timestamp>,
    /// When IT was notified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalated_at: Option<Timestamp>,
    /// When IT acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<Timestamp>,
    /// Who in IT acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    /// IT's note to the site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When it resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
    /// Who fixed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_by: Option<FixedBy>,
    /// The latest plain-language summary.
    #[serde(default)]
    pub summary: String,
}

/// The retained `escalations` payload for one agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationList {
    /// Protocol major version.
    pub v: u32,
    /// The site.
    pub site: SiteId,
    /// The agent.
    pub agent: AgentId,
    /// When the collector wrote this list.
    pub updated_at: Timestamp,
    /// When IT last ended the site team's planned work on this agent early: planned work
    /// declared before then is over, and the site page says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_work_ended_at: Option<Timestamp>,
    /// Open ones and those resolved recently.
    pub escalations: Vec<EscalationView>,
}
