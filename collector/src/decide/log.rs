//! The decision log: where the engine's state, the escalations and the notification outbox
//! live, so a restart (even `kill -9`) resumes exactly. One transaction per engine step.

use outpost_shared::{AgentId, SiteId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::engine::{AgentInfo, CheckKey, CheckState, Escalation, Maintenance, NotifyEvent};

/// Why the decision log failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// SQLite said no.
    #[error("decision log (SQLite): {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL said no.
    #[error("decision log (PostgreSQL): {0}")]
    Postgres(#[from] postgres::Error),
    /// A stored row did not decode (written by a newer collector?).
    #[error("decision log: a stored {what} row does not decode: {source}")]
    Decode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// Another collector holds the decision lock: this one only stores and forwards.
    #[error("decision log: another collector decides (this one does not hold the leader lock)")]
    NotLeader,
    /// The URL names no known backend.
    #[error("store url {0:?}: expected sqlite://PATH or postgres://USER@HOST/DB")]
    Url(String),
}

/// Everything the engine needs back after a restart.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Agents.
    pub agents: Vec<((SiteId, AgentId), AgentInfo)>,
    /// Check states.
    pub checks: Vec<(CheckKey, CheckState)>,
    /// Open and recently resolved escalations.
    pub escalations: Vec<Escalation>,
    /// Maintenance windows not long over.
    pub maintenance: Vec<Maintenance>,
    /// Next id to hand out.
    pub next_id: u64,
}

/// A notification to put in the outbox, already rendered for one notifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewNotification {
    /// The escalation.
    pub escalation_id: u64,
    /// What happened.
    pub event: NotifyEvent,
    /// Which notifier (`webhook#0`, `alertmanager#1`, ...).
    pub notifier: String,
    /// `outpost:{site}:{agent}:{check}:{id}`.
    pub dedup_key: String,
    /// Where to POST.
    pub url: String,
    /// What to POST.
    pub body: serde_json::Value,
}

/// A notification waiting in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedNotification {
    /// Outbox row id.
    pub id: i64,
    /// The notification.
    pub notification: NewNotification,
    /// Failed tries so far.
    pub attempts: u32,
}

/// A notification as it went (for the dashboard's history).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationLogEntry {
    /// Outbox row id.
    pub id: i64,
    /// Notifier name.
    pub notifier: String,
    /// Event name.
    pub event: NotifyEvent,
    /// When queued.
    pub created_at: Timestamp,
    /// When delivered.
    pub sent_at: Option<Timestamp>,
    /// Tries.
    pub attempts: u32,
    /// Last error.
    pub last_error: Option<String>,
}

/// One engine step to persist atomically.
#[derive(Debug, Clone)]
pub struct Step {
    /// Agents changed.
    pub agents: Vec<((SiteId, AgentId), AgentInfo)>,
    /// Check states changed.
    pub checks: Vec<(CheckKey, CheckState)>,
    /// Escalations changed.
    pub escalations: Vec<Escalation>,
    /// Maintenance windows changed.
    pub maintenance: Vec<Maintenance>,
    /// Next id.
    pub next_id: u64,
    /// Notifications to queue.
    pub notifications: Vec<NewNotification>,
    /// When.
    pub at: Timestamp,
}

impl Step {
    /// Folds a later step into this one (its rows replace this one's of the same key), so
    /// a step that could not be saved goes out with the next, whole and in order.
    pub fn absorb(&mut self, later: Step) {
        fn replace<K: PartialEq, V>(rows: &mut Vec<(K, V)>, later: Vec<(K, V)>) {
            for (key, value) in later {
                rows.retain(|(k, _)| *k != key);
                rows.push((key, value));
            }
        }
        replace(&mut self.agents, later.agents);
        replace(&mut self.checks, later.checks);
        for e in later.escalations {
            self.escalations.retain(|old| old.id != e.id);
            self.escalations.push(e);
        }
        for m in later.maintenance {
            self.maintenance.retain(|old| old.id != m.id);
            self.maintenance.push(m);
        }
        self.notifications.extend(later.notifications);
        self.next_id = self.next_id.max(later.next_id);
        self.at = later.at;
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
            && self.checks.is_empty()
            && self.escalations.is_empty()
            && self.maintenance.is_empty()
            && self.notifications.is_empty()
    }
}

/// Whether this collector decides, after [`DecisionLog::lead`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leadership {
    /// It decides and notifies.
    Leading,
    /// Another collector does; `leader` is the HTTP address it advertised, when known.
    Following {
        /// The leader's advertised HTTP base URL.
        leader: Option<String>,
    },
}

/// Persistence for decisions. Implemented for SQLite and PostgreSQL.
pub trait DecisionLog: Send + Sync {
    /// Takes (or keeps) the right to decide, advertising `advertise` (this collector's HTTP
    /// base URL) to the others. With SQLite there is only ever one collector: it leads. An
    /// error means the right is not known to be held: stop deciding.
    fn lead(&self, advertise: &str) -> Result<Leadership, LogError>;
    /// Loads the engine state (open escalations and those resolved since `resolved_since`).
    fn load(&self, resolved_since: Timestamp) -> Result<Snapshot, LogError>;
    /// Writes one step in one transaction.
    fn save(&self, step: &Step) -> Result<(), LogError>;
    /// Notifications due for (re)delivery at `now`, oldest first. One still waiting holds the
    /// later ones of its escalation at the same notifier: a resolve never overtakes its page.
    fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<QueuedNotification>, LogError>;
    /// Marks a notification delivered.
    fn delivered(&self, id: i64, at: Timestamp) -> Result<(), LogError>;
    /// Records a failed try and when to try again.
    fn failed(&self, id: i64, error: &str, retry_at: Timestamp) -> Result<(), LogError>;
    /// How many notifications wait for delivery.
    fn backlog(&self) -> Result<u64, LogError>;
    /// Escalations (any state) opened since `since`, for reports and the API.
    fn escalations_since(&self, since: Timestamp) -> Result<Vec<Escalation>, LogError>;
    /// One escalation by id, from the store (also old ones).
    fn escalation(&self, id: u64) -> Result<Option<Escalation>, LogError>;
    /// The notification history of one escalation.
    fn notifications_of(&self, escalation_id: u64) -> Result<Vec<NotificationLogEntry>, LogError>;
}

pub(super) fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("engine types serialize: all map keys are strings")
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(
    what: &'static str,
    text: &str,
) -> Result<T, LogError> {
    serde_json::from_str(text).map_err(|source| LogError::Decode { what, source })
}
