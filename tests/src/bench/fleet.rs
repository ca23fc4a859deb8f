//! `agents`: the collector's memory while it holds a large fleet, each agent having sent a
//! birth and a few results.

use std::time::Duration;

use super::{
    central::StoreKind,
    ingest::{through_collector, usage_rows},
    load::Load,
    proc, rate,
    table::{Table, mib, thousands},
};

/// Holds `load.agents` simulated agents and prints the collector's memory.
pub async fn run(load: &Load, store: StoreKind) -> anyhow::Result<()> {
    let stored = through_collector(load, 0.0, store, "").await?;
    let idle = stored.idle_rss;
    // Let the engine settle (births processed, escalations decided) before the last reading.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let settled = proc::read(stored.central.pid, Duration::ZERO).map_or(0, |s| s.rss);
    let mut t = Table::new(format!(
        "agents: {} simulated agents on {} connections, {} results each",
        thousands(load.agents as f64),
        load.connections.min(load.agents),
        load.records_per_agent
    ));
    t.row(
        "collector RSS before the fleet",
        mib(idle),
        "baseline, same process",
    );
    t.row(
        "collector RSS holding the fleet",
        mib(settled),
        "5 s after the last ack; target < 500 MB",
    );
    t.row(
        "per agent",
        format!(
            "{:.1} KiB",
            settled.saturating_sub(idle) as f64 / 1024.0 / load.agents.max(1) as f64
        ),
        "(settled - before) / agents",
    );
    t.row(
        "births + results stored and acked in",
        format!("{:.1} s", stored.elapsed.as_secs_f64()),
        format!("{} rec/s", thousands(rate(stored.records, stored.elapsed))),
    );
    usage_rows(&mut t, &stored);
    t.print();
    Ok(())
}
