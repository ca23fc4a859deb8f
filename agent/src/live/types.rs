//! The values the live state hands out, and its errors.

use std::collections::BTreeMap;

use jiff::Timestamp;
use outpost_shared::{CheckId, CheckSpec, EscalationList, Status};
use serde::{Deserialize, Serialize};

/// The newest result of one check, with when its status last changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveResult {
    /// When it ran.
    pub ts: Timestamp,
    /// Its status.
    pub status: Status,
    /// The plain-language sentence.
    pub summary: String,
    /// Measured values.
    pub metrics: BTreeMap<String, f64>,
    /// When the status became what it is now.
    pub since: Timestamp,
}

/// The latest report of a job to a heartbeat check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReport {
    /// When it arrived.
    pub ts: Timestamp,
    /// `ok` or `fail`, as the job said.
    pub status: Status,
    /// The job's message, if any.
    pub message: Option<String>,
}

/// A person confirmed a checklist duty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// When.
    pub ts: Timestamp,
    /// Who (as typed).
    pub by: String,
}

/// The link to the collector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connection {
    /// Whether the broker connection is up.
    pub connected: bool,
    /// Since when it is up or down.
    pub since: Timestamp,
    /// The last connection error, in words.
    pub last_error: Option<String>,
    /// The collector's own presence, when known.
    pub collector_online: Option<bool>,
}

/// A write by a person or a job was refused.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// No check has that id.
    #[error("there is no check {0:?} on this agent")]
    UnknownCheck(String),
    /// The check is of another kind.
    #[error("check {check:?} is a {kind} check; this needs a {expected} check")]
    WrongKind {
        /// The check.
        check: String,
        /// Its kind.
        kind: String,
        /// The kind needed.
        expected: &'static str,
    },
    /// A text field is empty or too long.
    #[error("{0}")]
    Invalid(String),
    /// This agent runs without an outbox (the one-shot `check` command).
    #[error("this agent runs without an outbox; notes cannot be kept")]
    NoOutbox,
    /// Writing to the outbox failed.
    #[error(transparent)]
    Outbox(#[from] crate::outbox::OutboxError),
}

/// Everything the site page shows, at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// When the agent started.
    pub started_at: Timestamp,
    /// The check catalogue, in config order.
    pub checks: Vec<CheckSpec>,
    /// Newest result per check.
    pub results: BTreeMap<CheckId, LiveResult>,
    /// Newest heartbeat report per check.
    pub heartbeats: BTreeMap<CheckId, HeartbeatReport>,
    /// Recent confirmations per checklist, oldest first.
    pub confirmations: BTreeMap<CheckId, Vec<Confirmation>>,
    /// What the collector last said about escalations.
    pub escalations: Option<EscalationList>,
    /// The link to the collector (`None` before the first attempt).
    pub connection: Option<Connection>,
}
