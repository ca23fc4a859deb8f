//! Records: what an agent emits (results, notes, gaps), batched onto the `records` topic.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{AgentId, CheckId, SiteId, Status, Timestamp};

/// The identity of a record, unique across the fleet: replays and duplicates carry the same key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordKey {
    /// The site.
    pub site: SiteId,
    /// The agent.
    pub agent: AgentId,
    /// The agent's buffer generation; changes only when its buffer is lost.
    pub epoch: u64,
    /// Rises by one per record within an epoch.
    pub seq: u64,
}

/// A batch of records on `outpost/v1/site/{site}/{agent}/records`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// Protocol major version.
    pub v: u32,
    /// Must equal the topic's site.
    pub site: SiteId,
    /// Must equal the topic's agent.
    pub agent: AgentId,
    /// The agent's buffer generation.
    pub epoch: u64,
    /// The watermark the agent holds for this epoch: everything up to it was acknowledged
    /// (or dropped and counted in a gap record), so the agent will never send it again. A
    /// collector that has not seen the epoch starts its watermark here rather than guessing
    /// from the batch; absent from agents older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked: Option<u64>,
    /// Records in `seq` order.
    pub records: Vec<Record>,
}

impl Batch {
    /// The key of one of this batch's records.
    pub fn key(&self, record: &Record) -> RecordKey {
        RecordKey {
            site: self.site.clone(),
            agent: self.agent.clone(),
            epoch: self.epoch,
            seq: record.seq,
        }
    }
}

/// One record: a sequence number, a time, and what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Rises by one per record and survives restarts.
    pub seq: u64,
    /// When the record was made (UTC).
    pub ts: Timestamp,
    /// What the record says.
    #[serde(flatten)]
    pub body: RecordBody,
}

/// The three record types, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RecordBody {
    /// A check result.
    Result(ResultRecord),
    /// Something a person said or did.
    Note(NoteRecord),
    /// Records the agent had to drop, counted.
    Gap(GapRecord),
}

/// A check result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRecord {
    /// Which check.
    pub check: CheckId,
    /// The outcome.
    pub status: Status,
    /// One plain-language sentence a site operator understands.
    pub summary: String,
    /// Measured values, by name.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// True when sent from the buffer after an outage.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub historical: bool,
}

/// What a note asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteAction {
    /// Plain information for IT ("I restarted the router").
    Note,
    /// Someone on site is on it.
    WorkingOnIt,
    /// A checklist duty was confirmed.
    ChecklistDone,
    /// Planned work until `until`: escalations of this agent are held.
    PlannedWork,
    /// Planned work ended early.
    PlannedWorkEnded,
}

impl NoteAction {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Note => "note",
            Self::WorkingOnIt => "working_on_it",
            Self::ChecklistDone => "checklist_done",
            Self::PlannedWork => "planned_work",
            Self::PlannedWorkEnded => "planned_work_ended",
        }
    }
}

/// Something a person on site said or did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoteRecord {
    /// The check it is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckId>,
    /// Who (free text, as typed).
    pub by: String,
    /// What they said.
    pub text: String,
    /// What the note means.
    pub action: NoteAction,
    /// For planned work: when it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
}

/// Records the agent dropped (buffer full or too old, or a corrupt tail), counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GapRecord {
    /// First dropped seq.
    pub from_seq: u64,
    /// Last dropped seq (inclusive).
    pub to_seq: u64,
    /// How many records were dropped in that range.
    pub dropped: u64,
    /// Why: `size`, `age` or `corrupt`.
    pub reason: String,
}

impl Record {
    /// The result inside, if this is a result record.
    pub fn as_result(&self) -> Option<&ResultRecord> {
        match &self.body {
            RecordBody::Result(r) => Some(r),
            _ => None,
        }
    }

    /// The record type's wire name.
    pub const fn type_name(&self) -> &'static str {
        match self.body {
            RecordBody::Result(_) => "result",
            RecordBody::Note(_) => "note",
            RecordBody::Gap(_) => "gap",
        }
    }
}
