//! `store`: the collector's store alone, without MQTT or processes, so store changes can be
//! compared with little noise. Decoded batches of a simulated fleet go straight into
//! [`outpost_collector::store::open`]'s `write_batches`, as many records per transaction as
//! the collector's `[ingest] batch_records`; beside it, the same rows inserted into a bare
//! SQLite table (no key, no index, one prepared statement) in transactions of the same size:
//! what SQLite itself charges for these rows on this disk.

use std::time::{Duration, Instant};

use anyhow::Context;
use outpost_shared::{Batch, RecordBody};

use super::{
    central::StoreKind,
    rate,
    sim::{SimAgent, fail_every},
    table::{Table, thousands},
};
use crate::TempDb;

/// What the `store` scenario is asked to do (its command-line flags too).
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Simulated agents, sending in turn.
    #[arg(long, default_value_t = 100)]
    pub agents: usize,
    /// Records timed.
    #[arg(long, default_value_t = 200_000)]
    pub records: usize,
    /// Records written before the clock starts, so the B-trees are as deep as a store's
    /// that has run for a while (SQLite's cost per record grows with them).
    #[arg(long, default_value_t = 0)]
    pub prefill: usize,
    /// Records per batch message.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Records per transaction (the collector's `[ingest] batch_records`).
    #[arg(long, default_value_t = outpost_collector::config::DEFAULT_BATCH_RECORDS as usize)]
    pub transaction: usize,
    /// Share of failing results, percent.
    #[arg(long, default_value_t = 5.0)]
    pub fail_pct: f64,
    /// Which store.
    #[arg(long, value_enum, default_value_t = StoreKind::Sqlite)]
    pub store: StoreKind,
}

/// Runs the bare baseline (SQLite only) and the store for the same rows and prints both.
pub fn run(args: &StoreArgs) -> anyhow::Result<()> {
    let mut sims: Vec<SimAgent> = (0..args.agents.max(1))
        .map(|i| SimAgent::new("store", i))
        .collect();
    let prefill = fleet(args, &mut sims, args.prefill)?;
    let transactions = fleet(args, &mut sims, args.records)?;
    let records: usize = transactions.iter().flatten().map(|b| b.records.len()).sum();
    let dir = tempfile::tempdir().context("a temp folder for the databases")?;

    let bare = bare_sqlite(&dir.path().join("bare.db"), &prefill, &transactions)?;
    let db = match args.store {
        StoreKind::Sqlite => None,
        StoreKind::Postgres => Some(TempDb::create("outpost_bench_store")),
    };
    let url = db.as_ref().map_or_else(
        || format!("sqlite://{}", dir.path().join("outpost.db").display()),
        TempDb::url,
    );
    let (stored, slowest) = through_store(&url, &prefill, &transactions)?;

    let bare_rate = rate(records as u64, bare);
    let store_rate = rate(records as u64, stored);
    let mut table = Table::new(format!(
        "store: {} records after {} from {} agents, {} per message, {} per transaction, {:?}",
        thousands(records as f64),
        thousands(args.prefill as f64),
        args.agents,
        args.batch,
        args.transaction,
        args.store
    ));
    table.row(
        "bare SQLite insert (rec/s)",
        thousands(bare_rate),
        "baseline: same rows, no key, no index",
    );
    table.row(
        "store write_batches (rec/s)",
        thousands(store_rate),
        "target 50,000 through the whole collector",
    );
    table.row(
        "store / bare",
        format!("{:.0} %", 100.0 * store_rate / bare_rate.max(1e-9)),
        "",
    );
    table.row(
        "per record (µs)",
        format!("{:.1}", stored.as_secs_f64() * 1e6 / records.max(1) as f64),
        format!(
            "bare {:.1}",
            bare.as_secs_f64() * 1e6 / records.max(1) as f64
        ),
    );
    table.row(
        "slowest transaction (ms)",
        format!("{:.1}", slowest.as_secs_f64() * 1e3),
        format!("{} transactions", transactions.len()),
    );
    table.print();
    Ok(())
}

/// `records` more of the fleet's messages, decoded, in the order a live fleet sends them
/// (each agent in turn), cut into transactions of about `args.transaction` records as the
/// collector's writer does.
fn fleet(
    args: &StoreArgs,
    sims: &mut [SimAgent],
    records: usize,
) -> anyhow::Result<Vec<Vec<Batch>>> {
    let batch = args.batch.max(1);
    let every = fail_every(args.fail_pct);
    let mut transactions = vec![Vec::new()];
    let (mut made, mut in_transaction) = (0, 0);
    while made < records {
        for sim in sims.iter_mut() {
            let count = batch.min(records - made);
            if count == 0 {
                break;
            }
            let decoded: Batch = outpost_shared::decode(&sim.batch(count, every, false))
                .context("a simulated batch decodes")?;
            made += count;
            in_transaction += count;
            let open = transactions.last_mut().context("one transaction is open")?;
            open.push(decoded);
            if in_transaction >= args.transaction {
                transactions.push(Vec::new());
                in_transaction = 0;
            }
        }
    }
    transactions.retain(|t| !t.is_empty());
    Ok(transactions)
}

/// Time to store every transaction through the collector's store (after `prefill`,
/// untimed), and the slowest one.
fn through_store(
    url: &str,
    prefill: &[Vec<Batch>],
    transactions: &[Vec<Batch>],
) -> anyhow::Result<(Duration, Duration)> {
    let store = outpost_collector::store::open(url).with_context(|| format!("opening {url}"))?;
    for batches in prefill {
        store
            .write_batches(batches, jiff::Timestamp::now())
            .context("prefill")?;
    }
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    for batches in transactions {
        let began = Instant::now();
        let written = store
            .write_batches(batches, jiff::Timestamp::now())
            .context("write_batches")?;
        slowest = slowest.max(began.elapsed());
        let new: usize = written.iter().map(|w| w.new.len()).sum();
        let sent: usize = batches.iter().map(|b| b.records.len()).sum();
        anyhow::ensure!(new == sent, "the store kept {new} of {sent} new records");
    }
    Ok((start.elapsed(), slowest))
}

/// Time to insert the same result rows into a table with no key and no index, with the
/// store's journal settings, one transaction per collector transaction (after `prefill`,
/// untimed).
fn bare_sqlite(
    path: &std::path::Path,
    prefill: &[Vec<Batch>],
    transactions: &[Vec<Batch>],
) -> anyhow::Result<Duration> {
    let mut conn = rusqlite::Connection::open(path).context("opening the bare database")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(
        "CREATE TABLE results (site TEXT, agent TEXT, epoch INTEGER, seq INTEGER,
             ts_us INTEGER, check_id TEXT, status TEXT, summary TEXT, metrics TEXT,
             historical INTEGER, received_us INTEGER)",
    )?;
    let mut start = Instant::now();
    for (i, batches) in prefill.iter().chain(transactions).enumerate() {
        if i == prefill.len() {
            start = Instant::now();
        }
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO results VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            let now = jiff::Timestamp::now().as_microsecond();
            for batch in batches {
                for record in &batch.records {
                    let RecordBody::Result(r) = &record.body else {
                        continue;
                    };
                    insert.execute(rusqlite::params![
                        batch.site.as_str(),
                        batch.agent.as_str(),
                        batch.epoch as i64,
                        record.seq as i64,
                        record.ts.as_microsecond(),
                        r.check.as_str(),
                        r.status.as_str(),
                        r.summary,
                        serde_json::to_string(&r.metrics)?,
                        r.historical,
                        now,
                    ])?;
                }
            }
        }
        tx.commit()?;
    }
    Ok(start.elapsed())
}
