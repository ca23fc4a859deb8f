//! The SQLite backend: one file, WAL journal, `synchronous = NORMAL` (a power cut may lose
//! the last transactions but never corrupts; agents replay what was not acknowledged).

use std::{path::Path, sync::mpsc, time::Duration};

use rusqlite::{
    Connection, TransactionBehavior,
    types::{ToSqlOutput, ValueRef},
};

use super::{
    SqlStore, StoreError,
    backend::{Backend, Param, Row, Sql, Value},
    schema,
};

/// One SQLite connection; writers take the write lock at `BEGIN` (no upgrade deadlocks).
pub struct Sqlite {
    conn: Connection,
    behavior: TransactionBehavior,
    /// The writer's: told after each commit that the WAL has grown.
    checkpoints: Option<Checkpoints>,
}

/// Opens (creating folder and file) and migrates the database at `path`.
pub fn open(path: &Path) -> Result<SqlStore<Sqlite>, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Open(format!(
                "cannot create the store folder {}: {e}; create it or set [store] url",
                dir.display()
            ))
        })?;
    }
    let mut writer = connect(path, TransactionBehavior::Immediate)?;
    schema::migrate(&mut writer)?;
    let reader = connect(path, TransactionBehavior::Deferred)?;
    writer.checkpoints = Some(Checkpoints::start(path)?);
    Ok(SqlStore::new(writer, reader))
}

/// Copies the WAL back into the database file on a thread of its own, so the writer's
/// commits do not wait for that copy and its fsync (they did, through SQLite's
/// autocheckpoint: with writes back to back, the store sat idle meanwhile). The writer's
/// own autocheckpoint stays as the backstop that resets the WAL under sustained load; by
/// then most of the copying is done.
struct Checkpoints {
    nudge: mpsc::SyncSender<()>,
}

impl Checkpoints {
    /// At most one checkpoint this often; a write nudges the next one.
    const EVERY: Duration = Duration::from_millis(100);

    fn start(path: &Path) -> Result<Self, StoreError> {
        let conn = open_connection(path)?;
        let (nudge, nudged) = mpsc::sync_channel(1);
        let path = path.to_owned();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || Self::run(&conn, &path, &nudged))
            .map_err(|e| StoreError::Open(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Self { nudge })
    }

    /// Until the writer is gone: a passive checkpoint (it never blocks the writer or
    /// readers) after each nudge, at most every [`Self::EVERY`].
    fn run(conn: &Connection, path: &Path, nudged: &mpsc::Receiver<()>) {
        let mut failing = false;
        while nudged.recv().is_ok() {
            let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            match done {
                Ok(()) => failing = false,
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(store = %path.display(), error = %e,
                        "background checkpoint failed; the writer's own checkpoints go on");
                }
                Err(_) => {}
            }
            std::thread::sleep(Self::EVERY);
        }
    }

    fn after_commit(&self) {
        // Full means a nudge is already waiting: that checkpoint will see this commit too.
        let _ = self.nudge.try_send(());
    }
}

/// A connection to the store's file that waits (up to 5 s) for another one's lock.
fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(|e| {
        StoreError::Open(format!("cannot open SQLite store {}: {e}", path.display()))
    })?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

fn connect(path: &Path, behavior: TransactionBehavior) -> Result<Sqlite, StoreError> {
    let conn = open_connection(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Ingest writes large transactions back to back: checkpoint less often, cache more,
    // and keep temporary B-trees in memory (profiled: checkpoints took ~9 % of ingest).
    conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
    conn.pragma_update(None, "cache_size", -65_536)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(Sqlite {
        conn,
        behavior,
        checkpoints: None,
    })
}

impl Backend for Sqlite {
    fn transaction<R>(
        &mut self,
        f: impl FnOnce(&mut dyn Sql) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let tx = self.conn.transaction_with_behavior(self.behavior)?;
        let out = f(&mut Tx(&tx))?;
        tx.commit()?;
        if let Some(checkpoints) = &self.checkpoints {
            checkpoints.after_commit();
        }
        Ok(out)
    }
}

/// Statements inside one SQLite transaction.
struct Tx<'a>(&'a Connection);

/// The shared SQL (PostgreSQL style) in SQLite's dialect:
/// - `$1` placeholders are `?1`; no SQL here contains a literal `$`.
/// - An insert that skips conflicting rows (`ON CONFLICT DO NOTHING`) is `INSERT OR IGNORE`.
///   Otherwise a NOT NULL check keeps its default ABORT, and SQLite must be able to undo a
///   multi-row insert halfway: it copies every page the statement touches into a statement
///   journal first (profiled: 13 % of a store write, plus its allocations). With IGNORE
///   there is nothing to undo. A row with a NULL in a NOT NULL column would be skipped
///   rather than fail the write, but the write path never binds NULL to those columns:
///   their values are not `Option`s.
fn sqlite_sql(sql: &str) -> String {
    let sql = sql.replace('$', "?");
    if sql.contains("ON CONFLICT DO NOTHING")
        && let Some(rest) = sql.trim_start().strip_prefix("INSERT INTO")
    {
        return format!("INSERT OR IGNORE INTO{rest}");
    }
    sql
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Self::Int(v) => v.to_sql(),
            Self::Text(Some(text)) => Ok(ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes()))),
            Self::Text(None) => Ok(ToSqlOutput::Owned(rusqlite::types::Value::Null)),
            Self::Bool(v) => v.to_sql(),
        }
    }
}

impl Sql for Tx<'_> {
    fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        let mut stmt = self.0.prepare_cached(&sqlite_sql(sql))?;
        let changed = stmt.execute(rusqlite::params_from_iter(params))?;
        Ok(changed as u64)
    }

    fn query(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.0.prepare_cached(&sqlite_sql(sql))?;
        let columns = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match row.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Int(v),
                    ValueRef::Real(v) => Value::Real(v),
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        Value::Text(String::from_utf8_lossy(t).into_owned())
                    }
                });
            }
            out.push(Row(values));
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.0.execute_batch(sql)?;
        Ok(())
    }
}
