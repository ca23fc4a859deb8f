//! `ingest`: how many records per second the collector stores, beside how many a plain QoS 1
//! subscriber receives from the same broker for the same load.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::{
    central::{Central, StoreKind, store_summary},
    load::{Load, Plan},
    mqtt::{AckWatch, PlainSubscriber, publish_all, publishers},
    proc::{Sampler, Usage},
    rate,
    table::{Table, mib, thousands},
};
use crate::Broker;

/// What the `ingest` scenario is asked to do.
#[derive(Debug, Clone)]
pub struct IngestArgs {
    /// The simulated fleet.
    pub load: Load,
    /// Records per second in total (0: as fast as possible).
    pub rate: f64,
    /// Where the collector stores.
    pub store: StoreKind,
    /// Runs of the whole scenario; medians are printed after more than one.
    pub runs: usize,
}

/// The rates of one run.
struct Rates {
    plain: f64,
    decoding: f64,
    collector: f64,
}

/// How one load went through the collector.
pub struct CollectorRun {
    /// From the first record published to the last agent's final ack.
    pub elapsed: Duration,
    /// From the first record published until the collector's store counter reached the load.
    pub stored_elapsed: Duration,
    /// Records in the load.
    pub records: u64,
    /// Publishing alone (records handed to the MQTT clients).
    pub publish_elapsed: Duration,
    /// Agents whose final ack arrived.
    pub acked_agents: usize,
    /// Agents in the load.
    pub agents: usize,
    /// The collector's resident set before the fleet said hello.
    pub idle_rss: u64,
    /// The collector's resources during the run.
    pub usage: Usage,
    /// The collector's `/metrics` afterwards.
    pub metrics: String,
    /// The collector itself, still running (for figures taken after the load).
    pub central: Central,
    /// Its broker.
    pub broker: Broker,
}

/// Runs the baselines and the collector for the same load and prints them, `args.runs`
/// times, then the medians.
pub async fn run(args: &IngestArgs) -> anyhow::Result<()> {
    let runs = args.runs.max(1);
    let mut all = Vec::with_capacity(runs);
    for i in 1..=runs {
        let title = if runs == 1 {
            String::new()
        } else {
            format!(" (run {i} of {runs})")
        };
        all.push(once(args, &title).await?);
    }
    if runs > 1 {
        medians(args, &all).print();
    }
    Ok(())
}

/// The medians of the runs' rates and ratios, with their spread.
fn medians(args: &IngestArgs, all: &[Rates]) -> Table {
    let mut t = Table::new(format!(
        "ingest medians of {} runs: {} agents, batches of {}, store {:?}",
        all.len(),
        args.load.agents,
        args.load.batch,
        args.store
    ));
    let rates = |label: &str, of: fn(&Rates) -> f64, note: &str, t: &mut Table| {
        let (median, low, high) = spread(all.iter().map(of).collect());
        t.row(
            label,
            format!("{} rec/s", thousands(median)),
            format!("{}-{} {note}", thousands(low), thousands(high)),
        );
    };
    rates("plain subscriber", |r| r.plain, "", &mut t);
    rates("decoding subscriber", |r| r.decoding, "", &mut t);
    rates(
        "collector stored and acked",
        |r| r.collector,
        "(target >= 50,000 into SQLite)",
        &mut t,
    );
    let (median, low, high) = spread(
        all.iter()
            .map(|r| r.collector / r.plain.max(1e-9) * 100.0)
            .collect(),
    );
    t.row(
        "collector / plain subscriber",
        format!("{median:.0} %"),
        format!("{low:.0}-{high:.0} % of the runs' own baselines (target >= 70 %)"),
    );
    t
}

/// Median, lowest and highest of `values` (at least one).
fn spread(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        f64::midpoint(values[n / 2 - 1], values[n / 2])
    };
    (median, values[0], values[n - 1])
}

/// One run: the baselines and the collector for the same load, printed as one table.
async fn once(args: &IngestArgs, title: &str) -> anyhow::Result<Rates> {
    let baseline = plain(&args.load, args.rate, false).await?;
    let decoding = plain(&args.load, args.rate, true).await?;
    let stored = through_collector(&args.load, args.rate, args.store, "").await?;
    let collector_rate = rate(stored.records, stored.elapsed);
    let mut t = Table::new(format!(
        "ingest{title}: {} agents on {} connections, {} records in batches of {}, {}% failing, store {:?}",
        args.load.agents,
        args.load.connections.min(args.load.agents),
        thousands(stored.records as f64),
        args.load.batch,
        args.load.fail_pct,
        args.store
    ));
    t.row(
        "plain subscriber (QoS 1, no storage)",
        format!("{} rec/s", thousands(baseline)),
        "baseline, same broker and load",
    );
    t.row(
        "subscriber that also decodes each batch",
        format!("{} rec/s", thousands(decoding)),
        "second baseline: JSON decode, no storage",
    );
    t.row(
        "collector stored and acked",
        format!("{} rec/s", thousands(collector_rate)),
        "target >= 50,000 rec/s into SQLite",
    );
    t.row(
        "collector stored (its own counter)",
        format!(
            "{} rec/s",
            thousands(rate(stored.records, stored.stored_elapsed))
        ),
        format!(
            "the last agent's ack {} ms later",
            stored
                .elapsed
                .saturating_sub(stored.stored_elapsed)
                .as_millis()
        ),
    );
    t.row(
        "collector / plain subscriber",
        format!("{:.0} %", collector_rate / baseline.max(1e-9) * 100.0),
        "target >= 70 %",
    );
    t.row(
        "collector / decoding subscriber",
        format!("{:.0} %", collector_rate / decoding.max(1e-9) * 100.0),
        "",
    );
    t.row(
        "load generator publish rate",
        format!(
            "{} rec/s",
            thousands(rate(stored.records, stored.publish_elapsed))
        ),
        "records handed to the MQTT clients",
    );
    usage_rows(&mut t, &stored);
    t.print();
    Ok(Rates {
        plain: baseline,
        decoding,
        collector: collector_rate,
    })
}

/// The collector's CPU, memory and store figures of a run, as table rows.
pub fn usage_rows(t: &mut Table, stored: &CollectorRun) {
    t.row(
        "collector CPU",
        format!("{:.0} % of one core", stored.usage.cpu_pct(Duration::ZERO)),
        "during the load",
    );
    t.row("collector peak RSS", mib(stored.usage.peak_rss()), "VmHWM");
    t.row(
        "agents that got their final ack",
        format!("{} of {}", stored.acked_agents, stored.agents),
        "within 10 s of the last record stored",
    );
    if let Some((batches, per_batch, secs)) = store_summary(&stored.metrics) {
        t.row(
            "store transactions",
            thousands(batches),
            format!(
                "{per_batch:.0} records each, {:.2} ms mean commit",
                secs * 1e3
            ),
        );
        t.row(
            "time inside store writes",
            format!(
                "{:.0} %",
                batches * secs / stored.elapsed.as_secs_f64().max(1e-9) * 100.0
            ),
            "of the run's wall time",
        );
    }
}

/// The baseline: records/s a plain subscriber receives (and decodes, with `decode`).
pub async fn plain(load: &Load, records_rate: f64, decode: bool) -> anyhow::Result<f64> {
    let broker = tokio::task::block_in_place(Broker::start);
    let sub = PlainSubscriber::start(broker.port(), decode).await?;
    let plan = load.plan("plain");
    let clients = publishers(broker.port(), "bench-plain", plan.records.len()).await?;
    let Plan {
        hello,
        records,
        messages,
        total_records,
        ..
    } = plan;
    publish_all(&clients, hello, 0.0).await?;
    let started = Instant::now();
    publish_all(&clients, records, records_rate).await?;
    let last = sub.wait(messages, timeout(total_records)).await?;
    Ok(rate(total_records, last - started))
}

/// Sends `load` to a fresh collector and waits until every agent's last record is acked.
pub async fn through_collector(
    load: &Load,
    records_rate: f64,
    store: StoreKind,
    extra_config: &str,
) -> anyhow::Result<CollectorRun> {
    let broker = tokio::task::block_in_place(Broker::start);
    let port = broker.port();
    let central = tokio::task::block_in_place(|| Central::start(port, store, extra_config))?;
    let acks = AckWatch::start(port).await?;
    wait_subscribed(&central).await;
    let plan = load.plan("site");
    let clients = publishers(port, "bench-agents", plan.records.len()).await?;
    let Plan {
        hello,
        records,
        targets,
        total_records,
        ..
    } = plan;
    let idle_rss = super::proc::read(central.pid, Duration::ZERO).map_or(0, |s| s.rss);
    publish_all(&clients, hello, 0.0).await?;
    let sampler = Sampler::start(central.pid, Duration::from_millis(500));
    let started = Instant::now();
    publish_all(&clients, records, records_rate).await?;
    let publish_elapsed = started.elapsed();
    // Stored is the collector's own counter; acked is what the agents see. Both are reported.
    let stored_at = central
        .wait_stored(total_records, timeout(total_records))
        .await
        .with_context(|| format!("collector log:\n{}", tail(&central.process.log())))?;
    let acked = match acks.wait_all(&targets, Duration::from_secs(10)).await {
        Ok(last) => Some(last),
        Err(e) => {
            eprintln!("note: {e} (after everything was stored)");
            None
        }
    };
    let acked_agents = acks.count_acked(&targets);
    let last = acked.unwrap_or(stored_at).max(stored_at);
    let usage = sampler.finish();
    let metrics = central.metrics().await.unwrap_or_default();
    Ok(CollectorRun {
        elapsed: last - started,
        stored_elapsed: stored_at - started,
        records: total_records,
        publish_elapsed,
        idle_rss,
        acked_agents,
        agents: targets.len(),
        usage,
        metrics,
        central,
        broker,
    })
}

/// The collector subscribes right after it connects; give it a moment to do so.
async fn wait_subscribed(central: &Central) {
    for _ in 0..100 {
        if central.metrics().await.is_ok_and(|m| {
            super::central::metric(&m, "outpost_collector_mqtt_connections_total")
                .is_some_and(|c| c >= 1.0)
        }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// Generous: a tenth of the way to 1,000 records/s, never under a minute.
fn timeout(records: u64) -> Duration {
    Duration::from_secs((records / 1000).max(60))
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
