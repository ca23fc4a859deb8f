//! Outbox benchmark: append rate (one fsync per record), replay rate of `pending()` and the time
//! to reopen (recover) a full buffer. Prints figures; never passes or fails on a time.
//!
//! `cargo run --release -p outpost-agent --bin outbox-bench [-- RECORDS [DIR]]`

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use jiff::{SignedDuration, Timestamp};
use outpost_agent::outbox::{Outbox, OutboxLimits};
use outpost_shared::{CheckId, RecordBody, ResultRecord, Status};

/// Records per `pending()` call, as the publisher batches them.
const BATCH: usize = 500;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let records: u64 = match args.next() {
        Some(n) => n
            .parse()
            .context("the first argument is the number of records")?,
        None => 100_000,
    };
    let dir = args.next().map_or_else(
        || std::env::temp_dir().join(format!("outbox-bench-{}", std::process::id())),
        PathBuf::from,
    );
    if dir.exists() {
        bail!("{} exists; give an empty or new folder", dir.display());
    }
    let limits = OutboxLimits {
        max_size: 256 * 1024 * 1024,
        max_age: Duration::from_secs(7 * 86_400),
    };
    let result = run(&dir, limits, records);
    std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    result
}

fn run(dir: &std::path::Path, limits: OutboxLimits, records: u64) -> anyhow::Result<()> {
    let checks: Vec<CheckId> = [
        "router",
        "wan-http",
        "disk-root",
        "backup-nas",
        "robot-cage",
    ]
    .iter()
    .map(|c| CheckId::new(*c))
    .collect::<Result<_, _>>()?;
    let start_ts: Timestamp = "2025-03-01T08:00:00Z".parse()?;
    let mut outbox = Outbox::open(dir, limits).context("opening the outbox")?;
    let started = Instant::now();
    let mut bytes = 0;
    for n in 0..records {
        let body = RecordBody::Result(ResultRecord {
            check: checks[(n % 5) as usize].clone(),
            status: Status::Ok,
            summary: format!(
                "The main router answered all 10 pings; the slowest took {} ms.",
                n % 40
            ),
            metrics: BTreeMap::from([
                ("loss_pct".to_owned(), 0.0),
                ("rtt_avg_ms".to_owned(), 3.25 + (n % 7) as f64),
                ("rtt_max_ms".to_owned(), 9.5),
                ("jitter_ms".to_owned(), 0.75),
            ]),
            historical: false,
        });
        let ts = start_ts + SignedDuration::from_secs(n as i64);
        outbox.append(ts, body).context("appending")?;
        if n == 0 {
            bytes = outbox.stats().bytes;
        }
    }
    let append = started.elapsed();
    let stats = outbox.stats();
    println!(
        "append: {records} records ({} bytes on disk, ~{} bytes/record) in {:.2} s = {:.0} records/s (fsync per append)",
        stats.bytes,
        stats.bytes.saturating_sub(bytes) / records.max(2).saturating_sub(1),
        append.as_secs_f64(),
        records as f64 / append.as_secs_f64()
    );

    let started = Instant::now();
    let mut after = 0;
    let mut read = 0;
    loop {
        let batch = outbox
            .pending(after, BATCH)
            .context("reading pending records")?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        read += batch.len();
    }
    let replay = started.elapsed();
    println!(
        "replay: {read} records in batches of {BATCH} in {:.3} s = {:.0} records/s",
        replay.as_secs_f64(),
        read as f64 / replay.as_secs_f64()
    );
    drop(outbox);

    let started = Instant::now();
    let mut outbox = Outbox::open(dir, limits).context("reopening the outbox")?;
    println!(
        "reopen: recovered {} pending records in {:.3} s",
        outbox.stats().pending,
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let mut acked = 0;
    while acked < records {
        acked = (acked + BATCH as u64).min(records);
        outbox.ack(outbox.epoch(), acked).context("acking")?;
    }
    println!(
        "ack: {} acks of {BATCH} in {:.3} s; {} bytes left on disk",
        records.div_ceil(BATCH as u64),
        started.elapsed().as_secs_f64(),
        outbox.stats().bytes
    );
    Ok(())
}
