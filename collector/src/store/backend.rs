//! What the two SQL backends have in common: a tiny statement interface ([`Sql`]), and the
//! [`SqlStore`] that implements [`Store`] once on top of it.
//!
//! SQL is written once with `$1`-style placeholders (SQLite reads them as `?1`). Values cross
//! as [`Param`] / [`Value`], so row decoding is shared too.

use std::{
    borrow::Cow,
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use outpost_shared::{AgentId, Batch, Birth, CheckId, PresenceState, SiteId, Timestamp};

use super::{
    BatchWrite, InboxBatch, ResultQuery, StatusCounts, Store, StoreError, StoredAgent, StoredNote,
    StoredResult, Watermark, read, shared, write,
};

/// A statement parameter. Text borrows where it can: the write path binds every record's
/// site, agent, check, status and summary, and copying each into a `String` first was a
/// tenth of a store write's allocations.
#[derive(Debug, Clone, PartialEq)]
pub enum Param<'a> {
    /// BIGINT (nullable).
    Int(Option<i64>),
    /// TEXT (nullable).
    Text(Option<Cow<'a, str>>),
    /// BOOLEAN.
    Bool(bool),
}

impl From<i64> for Param<'_> {
    fn from(v: i64) -> Self {
        Self::Int(Some(v))
    }
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(v: &'a str) -> Self {
        Self::Text(Some(Cow::Borrowed(v)))
    }
}

impl From<String> for Param<'_> {
    fn from(v: String) -> Self {
        Self::Text(Some(Cow::Owned(v)))
    }
}

impl<'a> From<Option<&'a str>> for Param<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Self::Text(v.map(Cow::Borrowed))
    }
}

impl From<bool> for Param<'_> {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

/// A column value read back.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// NULL.
    Null,
    /// Any integer (SQLite stores booleans here too).
    Int(i64),
    /// A float.
    Real(f64),
    /// Text.
    Text(String),
    /// A boolean (PostgreSQL).
    Bool(bool),
}

/// One row, with typed accessors that report a corrupt column instead of panicking.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn get(&self, i: usize) -> Result<&Value, StoreError> {
        self.0
            .get(i)
            .ok_or_else(|| StoreError::Corrupt(format!("column {i} missing")))
    }

    /// An integer column (NULL is an error).
    pub fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.opt_int(i)?
            .ok_or_else(|| StoreError::Corrupt(format!("column {i} is NULL")))
    }

    /// A nullable integer column.
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.get(i)? {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(*v)),
            Value::Bool(b) => Ok(Some(i64::from(*b))),
            other => Err(StoreError::Corrupt(format!(
                "column {i}: expected an integer, found {other:?}"
            ))),
        }
    }

    /// A text column (NULL is an error).
    pub fn text(&self, i: usize) -> Result<String, StoreError> {
        self.opt_text(i)?
            .ok_or_else(|| StoreError::Corrupt(format!("column {i} is NULL")))
    }

    /// A nullable text column.
    pub fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.get(i)? {
            Value::Null => Ok(None),
            Value::Text(s) => Ok(Some(s.clone())),
            other => Err(StoreError::Corrupt(format!(
                "column {i}: expected text, found {other:?}"
            ))),
        }
    }

    /// A boolean column (SQLite integers 0/1 accepted).
    pub fn bool(&self, i: usize) -> Result<bool, StoreError> {
        Ok(self.int(i)? != 0)
    }
}

/// Runs statements on one connection or transaction.
pub trait Sql {
    /// Runs a statement; returns the number of rows changed.
    fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, StoreError>;
    /// Runs a query; returns all rows.
    fn query(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError>;
    /// Runs several statements separated by `;` (no parameters).
    fn batch(&mut self, sql: &str) -> Result<(), StoreError>;
}

/// A database connection that can run a closure inside a transaction.
pub trait Backend: Send + 'static {
    /// Whether other collectors may write the same database at the same time (PostgreSQL):
    /// watermarks are then read under a per-agent lock in every transaction, never cached.
    const SHARED: bool = false;

    /// Runs `f` in a transaction; commits when it returns `Ok`, rolls back otherwise.
    fn transaction<R>(
        &mut self,
        f: impl FnOnce(&mut dyn Sql) -> Result<R, StoreError>,
    ) -> Result<R, StoreError>;
}

/// Watermarks of the agent epochs seen since start, keyed by (site, agent, epoch).
pub type Watermarks = HashMap<(SiteId, AgentId, u64), Watermark>;

/// A [`Store`] over a SQL backend: one connection for writes, one for reads (so API reads do
/// not wait behind a write batch), and the in-memory watermarks.
pub struct SqlStore<B> {
    writer: Mutex<(B, Watermarks)>,
    reader: Mutex<B>,
    /// Queue new records for the deciding collector ([`Store::set_forwarding`]).
    forwarding: AtomicBool,
    /// This collector's name in the watermark rows (random per process).
    name: String,
}

impl<B: Backend> SqlStore<B> {
    /// Wraps two connections to the same, already migrated, database.
    pub fn new(writer: B, reader: B) -> Self {
        Self {
            writer: Mutex::new((writer, Watermarks::default())),
            reader: Mutex::new(reader),
            forwarding: AtomicBool::new(false),
            name: format!("{:016x}", rand::random::<u64>()),
        }
    }

    fn write<R>(
        &self,
        f: impl FnOnce(&mut dyn Sql, &mut Watermarks) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        // A poisoned lock only means another writer panicked; the connection itself is fine
        // because the transaction it was in rolled back on drop.
        let mut guard = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (backend, marks) = &mut *guard;
        backend.transaction(|sql| f(sql, marks))
    }

    fn read<R>(
        &self,
        f: impl FnOnce(&mut dyn Sql) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut guard = self
            .reader
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.transaction(f)
    }
}

impl<B: Backend> Store for SqlStore<B> {
    fn write_batches(
        &self,
        batches: &[Batch],
        received: Timestamp,
    ) -> Result<Vec<BatchWrite>, StoreError> {
        // Watermarks change in memory only once the transaction commits.
        let mut guard = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (backend, marks) = &mut *guard;
        let forward = self.forwarding.load(Ordering::Relaxed);
        let writer = self.name.as_str();
        let mut staged = marks.clone_subset(batches);
        let out = backend.transaction(|sql| {
            if B::SHARED {
                // Another collector may store this agent's records too: hold the agents'
                // locks until commit, and drop the cached watermarks it touched since.
                shared::lock_agents(sql, batches)?;
                for key in shared::outdated(sql, &staged, writer)? {
                    staged.remove(&key);
                }
            }
            let out = write::batches(sql, &mut staged, batches, received, writer)?;
            if forward {
                write::forward(sql, &out, received)?;
            }
            Ok(out)
        })?;
        marks.extend(staged);
        Ok(out)
    }

    fn save_birth(&self, birth: &Birth, at: Timestamp) -> Result<(), StoreError> {
        self.write(|sql, _| write::birth(sql, birth, at))
    }

    fn save_presence(
        &self,
        site: &SiteId,
        agent: &AgentId,
        state: PresenceState,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(|sql, _| write::presence(sql, site, agent, state, at))
    }

    fn watermark(
        &self,
        site: &SiteId,
        agent: &AgentId,
        epoch: u64,
    ) -> Result<Option<u64>, StoreError> {
        self.read(|sql| read::watermark(sql, site, agent, epoch))
    }

    fn agents(&self) -> Result<Vec<StoredAgent>, StoreError> {
        self.read(|sql| read::agents(sql, None))
    }

    fn agent(&self, site: &SiteId, agent: &AgentId) -> Result<Option<StoredAgent>, StoreError> {
        self.read(|sql| read::agents(sql, Some((site, agent))))
            .map(|mut v| v.pop())
    }

    fn results(&self, query: &ResultQuery) -> Result<Vec<StoredResult>, StoreError> {
        self.read(|sql| read::results(sql, query))
    }

    fn latest_results(
        &self,
        site: Option<&SiteId>,
        agent: Option<&AgentId>,
    ) -> Result<Vec<StoredResult>, StoreError> {
        self.read(|sql| read::latest(sql, site, agent))
    }

    fn notes(
        &self,
        site: &SiteId,
        agent: &AgentId,
        check: Option<&CheckId>,
        since: Timestamp,
    ) -> Result<Vec<StoredNote>, StoreError> {
        self.read(|sql| read::notes(sql, site, agent, check, since))
    }

    fn hourly_counts(
        &self,
        site: &SiteId,
        since: Timestamp,
    ) -> Result<Vec<(AgentId, CheckId, Timestamp, StatusCounts)>, StoreError> {
        self.read(|sql| read::hourly(sql, site, since))
    }

    fn prune(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        self.write(|sql, _| write::prune(sql, cutoff))
    }

    fn set_forwarding(&self, on: bool) {
        self.forwarding.store(on, Ordering::Relaxed);
    }

    fn take_inbox(&self, limit: usize) -> Result<Vec<InboxBatch>, StoreError> {
        self.write(|sql, _| write::take_inbox(sql, limit))
    }
}

/// Copies the watermarks a set of batches touches, so they can be changed tentatively.
trait CloneSubset {
    fn clone_subset(&self, batches: &[Batch]) -> Watermarks;
}

impl CloneSubset for Watermarks {
    fn clone_subset(&self, batches: &[Batch]) -> Watermarks {
        batches
            .iter()
            .filter_map(|b| {
                let key = (b.site.clone(), b.agent.clone(), b.epoch);
                self.get(&key).map(|w| (key, w.clone()))
            })
            .collect()
    }
}
