//! The schema, as numbered migrations applied in order at start. The SQL is portable between
//! SQLite and PostgreSQL. Times are microseconds since the Unix epoch (BIGINT); the agent's
//! random u64 epoch and seqs are stored bit-for-bit as BIGINT (`u64 as i64`).

use super::{
    StoreError,
    backend::{Backend, Param},
};

/// Migrations, in order; the number of a migration is its index + 1. Never edit one that
/// has shipped: add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the data path.
    "CREATE TABLE agents (
        site TEXT NOT NULL,
        agent TEXT NOT NULL,
        version TEXT,
        epoch BIGINT,
        host TEXT,
        checks TEXT,
        boot_time_us BIGINT,
        started_us BIGINT,
        birth_us BIGINT,
        last_seen_us BIGINT,
        online BOOLEAN NOT NULL DEFAULT FALSE,
        PRIMARY KEY (site, agent)
    );
    CREATE TABLE results (
        site TEXT NOT NULL,
        agent TEXT NOT NULL,
        epoch BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        ts_us BIGINT NOT NULL,
        check_id TEXT NOT NULL,
        status TEXT NOT NULL,
        summary TEXT NOT NULL,
        metrics TEXT NOT NULL,
        historical BOOLEAN NOT NULL,
        received_us BIGINT NOT NULL,
        PRIMARY KEY (site, agent, epoch, seq)
    );
    CREATE INDEX results_by_check ON results (site, agent, check_id, ts_us);
    CREATE INDEX results_by_ts ON results (ts_us);
    CREATE TABLE latest_results (
        site TEXT NOT NULL,
        agent TEXT NOT NULL,
        check_id TEXT NOT NULL,
        epoch BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        ts_us BIGINT NOT NULL,
        status TEXT NOT NULL,
        summary TEXT NOT NULL,
        metrics TEXT NOT NULL,
        historical BOOLEAN NOT NULL,
        PRIMARY KEY (site, agent, check_id)
    );
    CREATE TABLE notes (
        site TEXT NOT NULL,
        agent TEXT NOT NULL,
        epoch BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        ts_us BIGINT NOT NULL,
        check_id TEXT,
        by_name TEXT NOT NULL,
        body TEXT NOT NULL,
        action TEXT NOT NULL,
        until_us BIGINT,
        PRIMARY KEY (site, agent, epoch, seq)
    );
    CREATE INDEX notes_by_ts ON notes (site, agent, ts_us);
    CREATE TABLE gaps (
        site TEXT NOT NULL,
        agent TEXT NOT NULL,
        epoch BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        ts_us BIGINT NOT NULL,
        from_seq BIGINT NOT NULL,
        to_seq BIGINT NOT NULL,
        dropped BIGINT NOT NULL,
        reason TEXT NOT NULL,
        PRIMARY KEY (site, agent, epoch, seq)
    );
    CREATE TABLE watermarks (
        site TEXT NOT NULL,
        agent TEXT NOT NULL,
        epoch BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        PRIMARY KEY (site, agent, epoch)
    );
    CREATE TABLE results_hourly (
        site TEXT NOT NULL,
        agent TEXT NOT NULL,
        check_id TEXT NOT NULL,
        hour_us BIGINT NOT NULL,
        count_ok BIGINT NOT NULL,
        count_warn BIGINT NOT NULL,
        count_fail BIGINT NOT NULL,
        count_unknown BIGINT NOT NULL,
        PRIMARY KEY (site, agent, check_id, hour_us)
    )",
    // 2: records stored by a collector that does not decide, waiting for the one that does
    // (several collectors on one PostgreSQL). One row per stored batch: its new records.
    "CREATE TABLE engine_inbox (
        site TEXT NOT NULL,
        agent TEXT NOT NULL,
        epoch BIGINT NOT NULL,
        first_seq BIGINT NOT NULL,
        received_us BIGINT NOT NULL,
        records TEXT NOT NULL,
        PRIMARY KEY (site, agent, epoch, first_seq)
    )",
    // 3: which collector wrote a watermark last (several collectors on one store).
    "ALTER TABLE watermarks ADD COLUMN writer TEXT",
];

/// The schema version this build writes.
pub const CURRENT: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`CURRENT`], one transaction per migration. Refuses a database
/// written by a newer collector.
pub fn migrate(backend: &mut impl Backend) -> Result<i64, StoreError> {
    backend.transaction(|sql| {
        sql.batch("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
    })?;
    let mut version = backend.transaction(|sql| {
        let rows = sql.query("SELECT MAX(version) FROM schema_version", &[])?;
        Ok(rows
            .first()
            .map(|r| r.opt_int(0))
            .transpose()?
            .flatten()
            .unwrap_or(0))
    })?;
    if version > CURRENT {
        return Err(StoreError::Open(format!(
            "the database has schema version {version}, but this collector knows only up to \
             {CURRENT}; run the newer collector or restore a backup"
        )));
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let number = index as i64 + 1;
        backend.transaction(|sql| {
            sql.batch(migration)?;
            sql.execute(
                "INSERT INTO schema_version (version) VALUES ($1)",
                &[Param::from(number)],
            )?;
            Ok(())
        })?;
        tracing::info!(version = number, "store schema migrated");
        version = number;
    }
    Ok(version)
}
