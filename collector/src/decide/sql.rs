//! The decision log's schema and SQL, shared by the SQLite and PostgreSQL backends.
//! Times are stored as milliseconds since the epoch so they compare correctly.

use outpost_shared::Timestamp;

/// Tables, created if missing (both backends accept this SQL).
pub(super) const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS engine_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS engine_agents (site TEXT NOT NULL, agent TEXT NOT NULL, info TEXT NOT NULL, PRIMARY KEY (site, agent))",
    "CREATE TABLE IF NOT EXISTS engine_checks (site TEXT NOT NULL, agent TEXT NOT NULL, check_id TEXT NOT NULL, state TEXT NOT NULL, PRIMARY KEY (site, agent, check_id))",
    "CREATE TABLE IF NOT EXISTS escalations (id BIGINT PRIMARY KEY, site TEXT NOT NULL, agent TEXT NOT NULL, check_id TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL, opened_at BIGINT NOT NULL, resolved_at BIGINT, body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS escalations_open ON escalations (resolved_at)",
    "CREATE INDEX IF NOT EXISTS escalations_opened ON escalations (opened_at)",
    "CREATE TABLE IF NOT EXISTS maintenance (id BIGINT PRIMARY KEY, site TEXT NOT NULL, ends_at BIGINT NOT NULL, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS notifications (id BIGINT PRIMARY KEY, escalation_id BIGINT NOT NULL, event TEXT NOT NULL, notifier TEXT NOT NULL, dedup_key TEXT NOT NULL, url TEXT NOT NULL, body TEXT NOT NULL, created_at BIGINT NOT NULL, next_at BIGINT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, sent_at BIGINT, last_error TEXT)",
    "CREATE INDEX IF NOT EXISTS notifications_due ON notifications (sent_at, next_at)",
    "CREATE INDEX IF NOT EXISTS notifications_escalation ON notifications (escalation_id)",
    "CREATE TABLE IF NOT EXISTS collector_leader (id INTEGER PRIMARY KEY, url TEXT NOT NULL, since BIGINT NOT NULL)",
];

pub(super) fn ms(ts: Timestamp) -> i64 {
    ts.as_millisecond()
}

pub(super) fn from_ms(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}
