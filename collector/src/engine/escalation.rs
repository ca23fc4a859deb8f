//! One escalation and the transitions of its lifecycle:
//! failing (held) → local (site team's window) → escalated → acknowledged → resolved.

use outpost_shared::{
    AgentId, EscalationKind, EscalationState, EscalationView, FixedBy, SiteId, Timestamp,
};
use serde::{Deserialize, Serialize};

/// Why an escalation waits instead of going ahead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum Hold {
    /// The agent is offline: its agent-offline escalation speaks for it.
    AgentOffline,
    /// A check it depends on (the router) is failing.
    Dependency(String),
    /// A maintenance window or the site's planned work.
    Maintenance(String),
    /// The check is flapping: the flapping escalation speaks for it.
    Flapping,
}

impl Hold {
    /// Words for the dashboard.
    pub fn describe(&self) -> String {
        match self {
            Self::AgentOffline => "held: the agent is offline".into(),
            Self::Dependency(c) => format!("held under the failing check {c}"),
            Self::Maintenance(r) => format!("held by planned work: {r}"),
            Self::Flapping => "held: the check is flapping".into(),
        }
    }
}

/// What happened to an escalation, for notifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// The site team's window started (informational; IT is not called yet).
    Opened,
    /// IT is called.
    Escalated,
    /// Still open and unacknowledged: called again.
    Reminder,
    /// IT acknowledged.
    Acknowledged,
    /// Recovered or closed.
    Resolved,
}

impl NotifyEvent {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Escalated => "escalated",
            Self::Reminder => "reminder",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
        }
    }
}

/// An escalation as the collector keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    /// Collector-wide id.
    pub id: u64,
    /// The site.
    pub site: SiteId,
    /// The agent.
    pub agent: AgentId,
    /// The check id, or `agent-offline`.
    pub check: String,
    /// What it is about.
    pub kind: EscalationKind,
    /// Lifecycle state.
    pub state: EscalationState,
    /// When the threshold was crossed.
    pub opened_at: Timestamp,
    /// End of the site team's window.
    pub local_until: Option<Timestamp>,
    /// When IT was called.
    pub escalated_at: Option<Timestamp>,
    /// When IT acknowledged.
    pub acknowledged_at: Option<Timestamp>,
    /// Who acknowledged.
    pub acknowledged_by: Option<String>,
    /// IT's note.
    pub note: Option<String>,
    /// When it resolved.
    pub resolved_at: Option<Timestamp>,
    /// Who in IT closed it by hand (`POST …/resolve` with `by`); `None` when it recovered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    /// Who fixed it.
    pub fixed_by: Option<FixedBy>,
    /// Latest summary.
    pub summary: String,
    /// Why it waits, if it does.
    pub held: Option<Hold>,
    /// Learned only from replayed records: recorded and reported, never paged.
    pub historical: bool,
    /// Last time IT was called about it (escalation or reminder).
    pub last_notified_at: Option<Timestamp>,
}

impl Escalation {
    /// True until resolved.
    pub fn is_open(&self) -> bool {
        self.state.is_open()
    }

    /// Whether IT has been called about it.
    pub fn reached_it(&self) -> bool {
        self.escalated_at.is_some()
    }

    /// Stable key for notifier de-duplication: `outpost:{site}:{agent}:{check}:{id}`.
    pub fn dedup_key(&self) -> String {
        format!(
            "outpost:{}:{}:{}:{}",
            self.site, self.agent, self.check, self.id
        )
    }

    /// Starts the site team's window (or calls IT at once when the window is zero).
    /// Returns the notifications this causes.
    pub(crate) fn start_window(
        &mut self,
        window: std::time::Duration,
        now: Timestamp,
    ) -> Vec<NotifyEvent> {
        self.held = None;
        if window.is_zero() {
            self.local_until = Some(now);
            return self.escalate(now);
        }
        self.state = EscalationState::Local;
        self.local_until = Some(super::add(now, window));
        vec![NotifyEvent::Opened]
    }

    /// Goes on after a hold: a window that was running starts again (the site team gets its
    /// whole time after planned work or an outage); one already with IT resumes reminders.
    pub(crate) fn resume(&mut self, window: std::time::Duration, now: Timestamp) {
        self.held = None;
        if self.state == EscalationState::Local {
            self.local_until = Some(super::add(now, window));
        }
    }

    /// Calls IT.
    pub(crate) fn escalate(&mut self, now: Timestamp) -> Vec<NotifyEvent> {
        self.state = EscalationState::Escalated;
        self.escalated_at = Some(now);
        self.last_notified_at = Some(now);
        vec![NotifyEvent::Escalated]
    }

    /// Recovered (or closed by IT when `by_it`).
    pub(crate) fn resolve(&mut self, now: Timestamp, by_it: bool) -> Vec<NotifyEvent> {
        let was_with_it = self.reached_it() || self.acknowledged_at.is_some();
        self.fixed_by = if by_it || was_with_it {
            Some(FixedBy::It)
        } else if self.state == EscalationState::Local {
            Some(FixedBy::SiteTeam)
        } else {
            // Held or historical: nobody was asked, nobody gets credit.
            None
        };
        self.state = EscalationState::Resolved;
        self.resolved_at = Some(now);
        self.held = None;
        if was_with_it && !self.historical {
            vec![NotifyEvent::Resolved]
        } else {
            Vec::new()
        }
    }

    /// IT acknowledged it.
    pub(crate) fn acknowledge(
        &mut self,
        by: String,
        note: Option<String>,
        now: Timestamp,
    ) -> Vec<NotifyEvent> {
        self.state = EscalationState::Acknowledged;
        self.acknowledged_at = Some(now);
        self.acknowledged_by = Some(by);
        self.note = note;
        vec![NotifyEvent::Acknowledged]
    }

    /// The site's view of it, for the retained `escalations` topic.
    pub fn view(&self) -> EscalationView {
        EscalationView {
            id: self.id,
            kind: self.kind,
            check: self.check.clone(),
            state: self.state,
            opened_at: self.opened_at,
            local_until: self.local_until,
            escalated_at: self.escalated_at,
            acknowledged_at: self.acknowledged_at,
            acknowledged_by: self.acknowledged_by.clone(),
            note: self.note.clone(),
            resolved_at: self.resolved_at,
            fixed_by: self.fixed_by,
            summary: self.summary.clone(),
        }
    }
}
