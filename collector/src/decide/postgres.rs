//! The decision log in PostgreSQL (several collectors, large fleets).
//! The sync client must not run inside an async context: callers use `spawn_blocking`.

use std::sync::Mutex;

use outpost_shared::Timestamp;
use postgres::{Client, NoTls};

use super::{
    log::{
        DecisionLog, Leadership, LogError, NewNotification, NotificationLogEntry,
        QueuedNotification, Snapshot, Step, from_json, to_json,
    },
    sql::{SCHEMA, from_ms, ms},
};
use crate::engine::Escalation;

/// Decision log on one PostgreSQL connection, which also holds the leader lock: only the
/// collector whose connection holds it decides, and a save on any other connection is refused,
/// so two collectors can never both write decisions. Reconnects after the server went away
/// (and then has to win the lock again).
pub struct PostgresLog {
    url: String,
    conn: Mutex<Connection>,
}

/// The connection and whether its session holds the leader lock.
struct Connection {
    /// `None` only while being dropped.
    client: Option<Client>,
    leading: bool,
}

/// Session lock key of the deciding collector ("outpost1").
const LEADER_LOCK: i64 = 0x6f75_7470_6f73_7431;

impl Drop for PostgresLog {
    fn drop(&mut self) {
        // Closing the sync client blocks on its own runtime, which panics inside an async
        // context; close it on a plain thread instead.
        let client = self
            .conn
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .client
            .take();
        if let Some(client) = client {
            let _ = std::thread::spawn(move || drop(client)).join();
        }
    }
}

/// Opens a session whose death the server notices within seconds (so a leader cut off by the
/// network loses its lock), and creates missing tables, one collector at a time.
fn connect(url: &str) -> Result<Client, LogError> {
    let mut client = Client::connect(url, NoTls)?;
    client.batch_execute(
        "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; \
         SET tcp_keepalives_count = 3; SET client_min_messages = warning",
    )?;
    let lock = crate::store::MIGRATION_LOCK;
    client.batch_execute(&format!("SELECT pg_advisory_lock({lock})"))?;
    let created = SCHEMA
        .iter()
        .copied()
        .chain(["CREATE SEQUENCE IF NOT EXISTS notifications_id_seq"])
        .try_for_each(|statement| client.batch_execute(statement));
    client.batch_execute(&format!("SELECT pg_advisory_unlock({lock})"))?;
    created?;
    Ok(client)
}

impl PostgresLog {
    /// Connects (e.g. `postgres://postgres@127.0.0.1/outpost`) and creates missing tables.
    pub fn connect(url: &str) -> Result<Self, LogError> {
        Ok(Self {
            url: url.to_owned(),
            conn: Mutex::new(Connection {
                client: Some(connect(url)?),
                leading: false,
            }),
        })
    }

    /// The connection, reconnected first when the server closed it (a restart): the new
    /// session holds no lock.
    fn client(&self) -> Result<ClientGuard<'_>, LogError> {
        let mut conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if conn.client.as_ref().is_none_or(Client::is_closed) {
            tracing::warn!("decision log: PostgreSQL connection lost; reconnecting");
            conn.leading = false;
            conn.client = Some(connect(&self.url)?);
        }
        Ok(ClientGuard(conn))
    }
}

/// The locked connection (its client present until `Drop`).
struct ClientGuard<'a>(std::sync::MutexGuard<'a, Connection>);

impl ClientGuard<'_> {
    fn leading(&self) -> bool {
        self.0.leading
    }
}

impl std::ops::Deref for ClientGuard<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.0
            .client
            .as_ref()
            .expect("the client is only taken in Drop")
    }
}

impl std::ops::DerefMut for ClientGuard<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.0
            .client
            .as_mut()
            .expect("the client is only taken in Drop")
    }
}

impl DecisionLog for PostgresLog {
    fn lead(&self, advertise: &str) -> Result<Leadership, LogError> {
        let mut client = self.client()?;
        if client.leading() {
            // A round trip proves the session, and so its lock, still lives.
            client.batch_execute("SELECT 1")?;
            return Ok(Leadership::Leading);
        }
        let won: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK])?
            .get(0);
        if won {
            client.0.leading = true;
            client.execute(
                "INSERT INTO collector_leader (id, url, since) VALUES (1, $1, $2)
                 ON CONFLICT (id) DO UPDATE SET url = excluded.url, since = excluded.since",
                &[&advertise, &ms(Timestamp::now())],
            )?;
            return Ok(Leadership::Leading);
        }
        let leader = client
            .query_opt("SELECT url FROM collector_leader WHERE id = 1", &[])?
            .map(|r| r.get::<_, String>(0));
        Ok(Leadership::Following { leader })
    }

    fn load(&self, resolved_since: Timestamp) -> Result<Snapshot, LogError> {
        let mut client = self.client()?;
        let next_id = client
            .query_opt("SELECT value FROM engine_meta WHERE key = 'next_id'", &[])?
            .map_or(1, |r| r.get::<_, i64>(0).max(1) as u64);
        let mut snapshot = Snapshot {
            next_id,
            ..Snapshot::default()
        };
        for row in client.query("SELECT site, agent, info FROM engine_agents", &[])? {
            let key = super::parse_agent_key(row.get(0), row.get(1))?;
            snapshot.agents.push((key, from_json("agent", row.get(2))?));
        }
        for row in client.query(
            "SELECT site, agent, check_id, state FROM engine_checks",
            &[],
        )? {
            let key = super::parse_check_key(row.get(0), row.get(1), row.get(2))?;
            snapshot
                .checks
                .push((key, from_json("check state", row.get(3))?));
        }
        let since = ms(resolved_since);
        for row in client.query(
            "SELECT body FROM escalations WHERE resolved_at IS NULL OR resolved_at >= $1",
            &[&since],
        )? {
            snapshot
                .escalations
                .push(from_json("escalation", row.get(0))?);
        }
        for row in client.query(
            "SELECT body FROM maintenance WHERE ends_at >= $1",
            &[&since],
        )? {
            snapshot
                .maintenance
                .push(from_json("maintenance", row.get(0))?);
        }
        Ok(snapshot)
    }

    fn save(&self, step: &Step) -> Result<(), LogError> {
        let mut client = self.client()?;
        if !client.leading() {
            return Err(LogError::NotLeader);
        }
        let mut tx = client.transaction()?;
        // One statement each for the agents and checks of a step (there may be thousands):
        // a round trip per row was what limited ingest of one-record messages. Keys are unique
        // within a step (`Step::absorb` keeps them so), as one upsert statement requires.
        if !step.agents.is_empty() {
            let (mut sites, mut agents, mut infos) = (Vec::new(), Vec::new(), Vec::new());
            for ((site, agent), info) in &step.agents {
                sites.push(site.as_str());
                agents.push(agent.as_str());
                infos.push(to_json(info));
            }
            tx.execute(
                "INSERT INTO engine_agents (site, agent, info)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
                 ON CONFLICT (site, agent) DO UPDATE SET info = excluded.info",
                &[&sites, &agents, &infos],
            )?;
        }
        if !step.checks.is_empty() {
            let (mut sites, mut agents) = (Vec::new(), Vec::new());
            let (mut checks, mut states) = (Vec::new(), Vec::new());
            for (key, state) in &step.checks {
                sites.push(key.site.as_str());
                agents.push(key.agent.as_str());
                checks.push(key.check.as_str());
                states.push(to_json(state));
            }
            tx.execute(
                "INSERT INTO engine_checks (site, agent, check_id, state)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
                 ON CONFLICT (site, agent, check_id) DO UPDATE SET state = excluded.state",
                &[&sites, &agents, &checks, &states],
            )?;
        }
        for e in &step.escalations {
            tx.execute(
                "INSERT INTO escalations (id, site, agent, check_id, kind, state, opened_at, resolved_at, body)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, resolved_at = excluded.resolved_at, body = excluded.body",
                &[
                    &(e.id as i64),
                    &e.site.as_str(),
                    &e.agent.as_str(),
                    &e.check,
                    &e.kind.as_str(),
                    &e.state.as_str(),
                    &ms(e.opened_at),
                    &e.resolved_at.map(ms),
                    &to_json(e),
                ],
            )?;
        }
        for m in &step.maintenance {
            tx.execute(
                "INSERT INTO maintenance (id, site, ends_at, body) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET ends_at = excluded.ends_at, body = excluded.body",
                &[
                    &(m.id as i64),
                    &m.site.as_str(),
                    &ms(m.ends_at),
                    &to_json(m),
                ],
            )?;
        }
        for n in &step.notifications {
            tx.execute(
                "INSERT INTO notifications (id, escalation_id, event, notifier, dedup_key, url, body, created_at, next_at)
                 VALUES (nextval('notifications_id_seq'), $1, $2, $3, $4, $5, $6, $7, $7)",
                &[
                    &(n.escalation_id as i64),
                    &n.event.as_str(),
                    &n.notifier,
                    &n.dedup_key,
                    &n.url,
                    &n.body.to_string(),
                    &ms(step.at),
                ],
            )?;
        }
        tx.execute(
            "INSERT INTO engine_meta (key, value) VALUES ('next_id', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&(step.next_id as i64)],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<QueuedNotification>, LogError> {
        let rows = self.client()?.query(
            "SELECT id, escalation_id, event, notifier, dedup_key, url, body, attempts FROM notifications n
             WHERE sent_at IS NULL AND next_at <= $1 AND NOT EXISTS (
                 SELECT 1 FROM notifications e WHERE e.escalation_id = n.escalation_id
                 AND e.notifier = n.notifier AND e.sent_at IS NULL AND e.id < n.id)
             ORDER BY id LIMIT $2",
            &[&ms(now), &(limit as i64)],
        )?;
        rows.iter()
            .map(|r| {
                Ok(QueuedNotification {
                    id: r.get(0),
                    notification: NewNotification {
                        escalation_id: r.get::<_, i64>(1) as u64,
                        event: from_json(
                            "notification event",
                            &format!("\"{}\"", r.get::<_, &str>(2)),
                        )?,
                        notifier: r.get(3),
                        dedup_key: r.get(4),
                        url: r.get(5),
                        body: from_json("notification body", r.get(6))?,
                    },
                    attempts: r.get::<_, i32>(7) as u32,
                })
            })
            .collect()
    }

    fn delivered(&self, id: i64, at: Timestamp) -> Result<(), LogError> {
        self.client()?.execute(
            "UPDATE notifications SET sent_at = $2, attempts = attempts + 1, last_error = NULL WHERE id = $1",
            &[&id, &ms(at)],
        )?;
        Ok(())
    }

    fn failed(&self, id: i64, error: &str, retry_at: Timestamp) -> Result<(), LogError> {
        self.client()?.execute(
            "UPDATE notifications SET attempts = attempts + 1, last_error = $2, next_at = $3 WHERE id = $1",
            &[&id, &error, &ms(retry_at)],
        )?;
        Ok(())
    }

    fn backlog(&self) -> Result<u64, LogError> {
        let row = self.client()?.query_one(
            "SELECT COUNT(*) FROM notifications WHERE sent_at IS NULL",
            &[],
        )?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    fn escalations_since(&self, since: Timestamp) -> Result<Vec<Escalation>, LogError> {
        let rows = self.client()?.query(
            "SELECT body FROM escalations WHERE opened_at >= $1 OR resolved_at IS NULL OR resolved_at >= $1 ORDER BY id",
            &[&ms(since)],
        )?;
        rows.iter()
            .map(|r| from_json("escalation", r.get(0)))
            .collect()
    }

    fn escalation(&self, id: u64) -> Result<Option<Escalation>, LogError> {
        let row = self.client()?.query_opt(
            "SELECT body FROM escalations WHERE id = $1",
            &[&(id as i64)],
        )?;
        row.map(|r| from_json("escalation", r.get(0))).transpose()
    }

    fn notifications_of(&self, escalation_id: u64) -> Result<Vec<NotificationLogEntry>, LogError> {
        let rows = self.client()?.query(
            "SELECT id, notifier, event, created_at, sent_at, attempts, last_error FROM notifications
             WHERE escalation_id = $1 ORDER BY id",
            &[&(escalation_id as i64)],
        )?;
        rows.iter()
            .map(|r| {
                Ok(NotificationLogEntry {
                    id: r.get(0),
                    notifier: r.get(1),
                    event: from_json(
                        "notification event",
                        &format!("\"{}\"", r.get::<_, &str>(2)),
                    )?,
                    created_at: from_ms(r.get(3)),
                    sent_at: r.get::<_, Option<i64>>(4).map(from_ms),
                    attempts: r.get::<_, i32>(5) as u32,
                    last_error: r.get(6),
                })
            })
            .collect()
    }
}
