//! The decision log in SQLite (the default, embedded store).

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
};

use outpost_shared::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    log::{
        DecisionLog, Leadership, LogError, NewNotification, NotificationLogEntry,
        QueuedNotification, Snapshot, Step, from_json, to_json,
    },
    sql::{SCHEMA, from_ms, ms},
};
use crate::engine::Escalation;

/// Decision log on one SQLite connection (WAL), in its own file beside the telemetry store.
pub struct SqliteLog {
    conn: Mutex<Connection>,
}

/// The decision log's tables, which earlier collectors kept inside the store's file.
const TABLES: [&str; 7] = [
    "engine_meta",
    "engine_agents",
    "engine_checks",
    "escalations",
    "maintenance",
    "notifications",
    "collector_leader",
];

/// Where the decision log of the store at `store` lives: `outpost.db` → `outpost-decisions.db`
/// in the same folder.
pub fn beside(store: &Path) -> PathBuf {
    let stem = store
        .file_stem()
        .map_or_else(|| "outpost".into(), |s| s.to_string_lossy());
    let name = match store.extension() {
        Some(ext) => format!("{stem}-decisions.{}", ext.to_string_lossy()),
        None => format!("{stem}-decisions"),
    };
    store.with_file_name(name)
}

impl SqliteLog {
    /// Opens the decision log of the telemetry store at `store`, in its own file ([`beside`]):
    /// its commits (one per engine step) then neither wait for the store's write lock nor
    /// checkpoint the store's WAL. A log an earlier version kept inside the store's file is
    /// copied over the first time.
    pub fn open_beside(store: &Path) -> Result<Self, LogError> {
        let path = beside(store);
        let fresh = !path.exists();
        let log = Self::open(&path)?;
        if fresh && store.exists() {
            match log.adopt(store) {
                Ok(0) => {}
                Ok(rows) => tracing::info!(
                    from = %store.display(),
                    to = %path.display(),
                    rows,
                    "moved the decision log out of the store's file (the old tables there are no longer read)"
                ),
                Err(e) => {
                    // Leave no half-copied log behind: the next start tries again.
                    drop(log);
                    for suffix in ["", "-wal", "-shm"] {
                        let mut name = path.clone().into_os_string();
                        name.push(suffix);
                        let _ = std::fs::remove_file(name);
                    }
                    return Err(e);
                }
            }
        }
        Ok(log)
    }

    /// Copies the decision log tables found in the database at `earlier` into this (empty)
    /// log, in one transaction; returns how many rows were copied.
    fn adopt(&self, earlier: &Path) -> Result<usize, LogError> {
        let mut conn = self.conn();
        conn.execute("ATTACH DATABASE ?1 AS earlier", [earlier.to_string_lossy()])?;
        let copied = copy_tables(&mut conn);
        let detached = conn.execute("DETACH DATABASE earlier", []);
        let rows = copied?;
        detached?;
        Ok(rows)
    }

    /// Opens (and creates) the tables in the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, LogError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        for statement in SCHEMA {
            conn.execute(statement, [])?;
        }
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn copy_tables(conn: &mut Connection) -> Result<usize, LogError> {
    let tx = conn.transaction()?;
    let mut rows = 0;
    for table in TABLES {
        let present: i64 = tx.query_row(
            "SELECT count(*) FROM earlier.sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )?;
        if present > 0 {
            // The same SCHEMA made both, so the columns line up.
            rows += tx.execute(
                &format!("INSERT INTO main.{table} SELECT * FROM earlier.{table}"),
                [],
            )?;
        }
    }
    tx.commit()?;
    Ok(rows)
}

fn escalation_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<String> {
    row.get(0)
}

impl DecisionLog for SqliteLog {
    /// One SQLite file has one collector: it always decides.
    fn lead(&self, _advertise: &str) -> Result<Leadership, LogError> {
        Ok(Leadership::Leading)
    }

    fn load(&self, resolved_since: Timestamp) -> Result<Snapshot, LogError> {
        let conn = self.conn();
        let mut snapshot = Snapshot {
            next_id: conn
                .query_row(
                    "SELECT value FROM engine_meta WHERE key = 'next_id'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?
                .map_or(1, |v| v.max(1) as u64),
            ..Snapshot::default()
        };
        let mut stmt = conn.prepare("SELECT site, agent, info FROM engine_agents")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (site, agent, info) = row?;
            let key = super::parse_agent_key(&site, &agent)?;
            snapshot.agents.push((key, from_json("agent", &info)?));
        }
        let mut stmt = conn.prepare("SELECT site, agent, check_id, state FROM engine_checks")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        for row in rows {
            let (site, agent, check, state) = row?;
            let key = super::parse_check_key(&site, &agent, &check)?;
            snapshot
                .checks
                .push((key, from_json("check state", &state)?));
        }
        let mut stmt = conn.prepare(
            "SELECT body FROM escalations WHERE resolved_at IS NULL OR resolved_at >= ?1",
        )?;
        for body in stmt.query_map([ms(resolved_since)], escalation_row)? {
            snapshot.escalations.push(from_json("escalation", &body?)?);
        }
        let mut stmt = conn.prepare("SELECT body FROM maintenance WHERE ends_at >= ?1")?;
        for body in stmt.query_map([ms(resolved_since)], escalation_row)? {
            snapshot.maintenance.push(from_json("maintenance", &body?)?);
        }
        Ok(snapshot)
    }

    fn save(&self, step: &Step) -> Result<(), LogError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut agents = tx.prepare_cached(
                "INSERT INTO engine_agents (site, agent, info) VALUES (?1, ?2, ?3)
                 ON CONFLICT (site, agent) DO UPDATE SET info = excluded.info",
            )?;
            for ((site, agent), info) in &step.agents {
                agents.execute(params![site.as_str(), agent.as_str(), to_json(info)])?;
            }
            let mut checks = tx.prepare_cached(
                "INSERT INTO engine_checks (site, agent, check_id, state) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (site, agent, check_id) DO UPDATE SET state = excluded.state",
            )?;
            for (key, state) in &step.checks {
                checks.execute(params![
                    key.site.as_str(),
                    key.agent.as_str(),
                    key.check.as_str(),
                    to_json(state)
                ])?;
            }
            let mut escalations = tx.prepare_cached(
                "INSERT INTO escalations (id, site, agent, check_id, kind, state, opened_at, resolved_at, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, resolved_at = excluded.resolved_at, body = excluded.body",
            )?;
            for e in &step.escalations {
                escalations.execute(params![
                    e.id as i64,
                    e.site.as_str(),
                    e.agent.as_str(),
                    e.check,
                    e.kind.as_str(),
                    e.state.as_str(),
                    ms(e.opened_at),
                    e.resolved_at.map(ms),
                    to_json(e)
                ])?;
            }
            let mut maintenance = tx.prepare_cached(
                "INSERT INTO maintenance (id, site, ends_at, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET ends_at = excluded.ends_at, body = excluded.body",
            )?;
            for m in &step.maintenance {
                maintenance.execute(params![
                    m.id as i64,
                    m.site.as_str(),
                    ms(m.ends_at),
                    to_json(m)
                ])?;
            }
            let mut notifications = tx.prepare_cached(
                "INSERT INTO notifications (id, escalation_id, event, notifier, dedup_key, url, body, created_at, next_at)
                 VALUES ((SELECT COALESCE(MAX(id), 0) + 1 FROM notifications), ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
            )?;
            for n in &step.notifications {
                notifications.execute(params![
                    n.escalation_id as i64,
                    n.event.as_str(),
                    n.notifier,
                    n.dedup_key,
                    n.url,
                    n.body.to_string(),
                    ms(step.at)
                ])?;
            }
            tx.execute(
                "INSERT INTO engine_meta (key, value) VALUES ('next_id', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [step.next_id as i64],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<QueuedNotification>, LogError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, escalation_id, event, notifier, dedup_key, url, body, attempts FROM notifications n
             WHERE sent_at IS NULL AND next_at <= ?1 AND NOT EXISTS (
                 SELECT 1 FROM notifications e WHERE e.escalation_id = n.escalation_id
                 AND e.notifier = n.notifier AND e.sent_at IS NULL AND e.id < n.id)
             ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![ms(now), limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, i64>(7)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, escalation_id, event, notifier, dedup_key, url, body, attempts) = row?;
            out.push(QueuedNotification {
                id,
                notification: NewNotification {
                    escalation_id: escalation_id as u64,
                    event: from_json("notification event", &format!("\"{event}\""))?,
                    notifier,
                    dedup_key,
                    url,
                    body: from_json("notification body", &body)?,
                },
                attempts: attempts as u32,
            });
        }
        Ok(out)
    }

    fn delivered(&self, id: i64, at: Timestamp) -> Result<(), LogError> {
        self.conn().execute(
            "UPDATE notifications SET sent_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
            params![id, ms(at)],
        )?;
        Ok(())
    }

    fn failed(&self, id: i64, error: &str, retry_at: Timestamp) -> Result<(), LogError> {
        self.conn().execute(
            "UPDATE notifications SET attempts = attempts + 1, last_error = ?2, next_at = ?3 WHERE id = ?1",
            params![id, error, ms(retry_at)],
        )?;
        Ok(())
    }

    fn backlog(&self) -> Result<u64, LogError> {
        let n: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM notifications WHERE sent_at IS NULL",
            [],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    fn escalations_since(&self, since: Timestamp) -> Result<Vec<Escalation>, LogError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT body FROM escalations WHERE opened_at >= ?1 OR resolved_at IS NULL OR resolved_at >= ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([ms(since)], escalation_row)?;
        rows.map(|b| from_json("escalation", &b?)).collect()
    }

    fn escalation(&self, id: u64) -> Result<Option<Escalation>, LogError> {
        let body = self
            .conn()
            .query_row(
                "SELECT body FROM escalations WHERE id = ?1",
                [id as i64],
                escalation_row,
            )
            .optional()?;
        body.map(|b| from_json("escalation", &b)).transpose()
    }

    fn notifications_of(&self, escalation_id: u64) -> Result<Vec<NotificationLogEntry>, LogError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, notifier, event, created_at, sent_at, attempts, last_error FROM notifications
             WHERE escalation_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([escalation_id as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, notifier, event, created, sent, attempts, last_error) = row?;
            out.push(NotificationLogEntry {
                id,
                notifier,
                event: from_json("notification event", &format!("\"{event}\""))?,
                created_at: from_ms(created),
                sent_at: sent.map(from_ms),
                attempts: attempts as u32,
                last_error,
            });
        }
        Ok(out)
    }
}
