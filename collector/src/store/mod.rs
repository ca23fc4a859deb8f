//! Durable storage of what agents send: births, presence, results, notes, gaps, and the ack
//! watermark per agent epoch. One [`Store`] trait, two backends (SQLite, PostgreSQL) sharing
//! the same SQL and the same write logic.
//!
//! The methods are synchronous and may block on disk or network: call them from a dedicated
//! thread or `tokio::task::spawn_blocking`, never directly inside async code (the sync
//! `postgres` client panics inside a runtime). Ingest writes from `spawn_blocking`.

mod backend;
mod postgres;
mod read;
mod schema;
mod shared;
mod sqlite;
mod watermark;
mod write;

use std::sync::Arc;

use outpost_shared::{
    AgentId, Birth, CheckId, NoteRecord, PresenceState, Record, ResultRecord, SiteId, Timestamp,
};

pub use backend::SqlStore;
pub use postgres::MIGRATION_LOCK;
pub use watermark::Watermark;

use crate::config::StoreUrl;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL refused or is unreachable.
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] ::postgres::Error),
    /// The store URL or its folder is unusable.
    #[error("{0}")]
    Open(String),
    /// A stored row could not be read back (written by another version?).
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
}

/// What one input batch changed.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchWrite {
    /// The batch's site.
    pub site: SiteId,
    /// The batch's agent.
    pub agent: AgentId,
    /// The batch's epoch.
    pub epoch: u64,
    /// The records stored for the first time, in seq order (duplicates left out).
    pub new: Vec<Record>,
    /// How many records were already stored.
    pub duplicates: usize,
    /// The epoch's ack watermark after this batch: every seq up to it is stored or was dropped.
    pub watermark: u64,
}

/// An agent as the store knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAgent {
    /// The site.
    pub site: SiteId,
    /// The agent.
    pub agent: AgentId,
    /// Its latest birth (version, host facts, check catalogue), if one arrived.
    pub birth: Option<Birth>,
    /// When the collector received that birth.
    pub birth_at: Option<Timestamp>,
    /// When the collector last heard anything from it.
    pub last_seen: Option<Timestamp>,
    /// Its last presence (`false` until a state message says online).
    pub online: bool,
}

/// A stored result with its key.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResult {
    /// The site.
    pub site: SiteId,
    /// The agent.
    pub agent: AgentId,
    /// The agent's epoch.
    pub epoch: u64,
    /// The record's seq.
    pub seq: u64,
    /// When the agent made it.
    pub ts: Timestamp,
    /// The result.
    pub result: ResultRecord,
}

/// A stored note with its key.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredNote {
    /// The site.
    pub site: SiteId,
    /// The agent.
    pub agent: AgentId,
    /// The agent's epoch.
    pub epoch: u64,
    /// The record's seq.
    pub seq: u64,
    /// When it was written.
    pub ts: Timestamp,
    /// The note.
    pub note: NoteRecord,
}

/// Hourly status counts of one check, kept after raw results expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusCounts {
    /// ok results.
    pub ok: u64,
    /// warn results.
    pub warn: u64,
    /// fail results.
    pub fail: u64,
    /// unknown results.
    pub unknown: u64,
}

/// A results query; every filter is optional. Newest first, at most `limit`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultQuery {
    /// Only this site.
    pub site: Option<SiteId>,
    /// Only this agent.
    pub agent: Option<AgentId>,
    /// Only this check.
    pub check: Option<CheckId>,
    /// Only results made at or after this time.
    pub since: Option<Timestamp>,
    /// At most this many (0 means the default of 1000).
    pub limit: usize,
}

/// Storage for the collector. Idempotent on the record key `(site, agent, epoch, seq)`.
pub trait Store: Send + Sync {
    /// Stores batches in one transaction; returns, per batch in order, which records were new
    /// and the epoch's watermark. Nothing is stored when it fails.
    fn write_batches(
        &self,
        batches: &[outpost_shared::Batch],
        received: Timestamp,
    ) -> Result<Vec<BatchWrite>, StoreError>;

    /// Records an agent's birth (version, host facts, check catalogue).
    fn save_birth(&self, birth: &Birth, at: Timestamp) -> Result<(), StoreError>;

    /// Records an agent's presence.
    fn save_presence(
        &self,
        site: &SiteId,
        agent: &AgentId,
        state: PresenceState,
        at: Timestamp,
    ) -> Result<(), StoreError>;

    /// The persisted watermark of one agent epoch.
    fn watermark(
        &self,
        site: &SiteId,
        agent: &AgentId,
        epoch: u64,
    ) -> Result<Option<u64>, StoreError>;

    /// Every known agent, by site then agent.
    fn agents(&self) -> Result<Vec<StoredAgent>, StoreError>;

    /// One agent.
    fn agent(&self, site: &SiteId, agent: &AgentId) -> Result<Option<StoredAgent>, StoreError>;

    /// Results matching `query`, newest first.
    fn results(&self, query: &ResultQuery) -> Result<Vec<StoredResult>, StoreError>;

    /// The newest result of each check (by the agent's time), optionally of one site/agent.
    fn latest_results(
        &self,
        site: Option<&SiteId>,
        agent: Option<&AgentId>,
    ) -> Result<Vec<StoredResult>, StoreError>;

    /// Notes of an agent written at or after `since`, oldest first. With `check`, the notes
    /// about that check and those about no particular check.
    fn notes(
        &self,
        site: &SiteId,
        agent: &AgentId,
        check: Option<&CheckId>,
        since: Timestamp,
    ) -> Result<Vec<StoredNote>, StoreError>;

    /// Hourly status counts of a site's checks from `since` (raw and downsampled together):
    /// `(agent, check, hour start, counts)`, oldest first.
    fn hourly_counts(
        &self,
        site: &SiteId,
        since: Timestamp,
    ) -> Result<Vec<(AgentId, CheckId, Timestamp, StatusCounts)>, StoreError>;

    /// Folds raw results older than `cutoff` into hourly counts and deletes them; returns how
    /// many were deleted.
    fn prune(&self, cutoff: Timestamp) -> Result<u64, StoreError>;

    /// While `on`, the new records `write_batches` stores are also queued, in the same
    /// transaction, for the collector that decides ([`Store::take_inbox`]): this one only
    /// stores (several collectors on one PostgreSQL).
    fn set_forwarding(&self, on: bool);

    /// Takes (removes and returns) up to `limit` batches other collectors queued, by agent
    /// and seq.
    fn take_inbox(&self, limit: usize) -> Result<Vec<InboxBatch>, StoreError>;
}

/// New records another collector stored, queued for the one that decides.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxBatch {
    /// The site.
    pub site: SiteId,
    /// The agent.
    pub agent: AgentId,
    /// The agent's buffer generation.
    pub epoch: u64,
    /// When the storing collector received them.
    pub received: Timestamp,
    /// The records, in seq order.
    pub records: Vec<Record>,
}

/// Opens (creating and migrating as needed) the store a URL names.
pub fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    match StoreUrl::parse(url).map_err(StoreError::Open)? {
        StoreUrl::Sqlite(path) => Ok(Arc::new(sqlite::open(&path)?)),
        StoreUrl::Postgres(url) => Ok(Arc::new(postgres::open(&url)?)),
    }
}
