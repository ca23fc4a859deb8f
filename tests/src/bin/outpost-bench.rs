//! `outpost-bench`: figures showing Outpost small at the edge and fast at the centre, each
//! beside a baseline measured in the same run. Prints tables; never passes or fails on time.
//!
//! Build first: `cargo build --release -p outpost-agent -p outpost-collector -p outpost-tests
//! --bin outpost-bench`, then run `target/release/outpost-bench <scenario>`.

use std::{path::PathBuf, time::Duration};

use clap::{Parser, Subcommand};
use outpost_tests::bench::{
    central::StoreKind, fleet, footprint, ingest, latency, load::Load, parse_duration, replay,
    store,
};

#[derive(Parser)]
#[command(
    name = "outpost-bench",
    about = "Outpost benchmarks against real processes"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// The release agent's memory, CPU and wakeups with N mixed checks.
    AgentFootprint {
        /// Checks in the config, spread over every kind.
        #[arg(long, default_value_t = 50)]
        checks: usize,
        /// Every check's interval.
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        interval: Duration,
        /// How long to sample.
        #[arg(long, default_value = "5m", value_parser = parse_duration)]
        duration: Duration,
        /// The agent binary (default: outpost-agent beside this binary).
        #[arg(long)]
        agent_bin: Option<PathBuf>,
    },
    /// Records/s the collector stores, beside a plain subscriber on the same broker.
    Ingest {
        /// Simulated agents.
        #[arg(long, default_value_t = 100)]
        agents: usize,
        /// Records in total.
        #[arg(long, default_value_t = 200_000)]
        records: usize,
        /// Records per batch message.
        #[arg(long, default_value_t = 50)]
        batch: usize,
        /// MQTT connections the agents share.
        #[arg(long, default_value_t = 100)]
        connections: usize,
        /// Records per second in total (0: as fast as the broker takes them).
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
        /// Share of failing results, percent.
        #[arg(long, default_value_t = 5.0)]
        fail_pct: f64,
        /// Where the collector stores.
        #[arg(long, value_enum, default_value_t = StoreKind::Sqlite)]
        store: StoreKind,
        /// Runs of the whole scenario (each on fresh brokers); with more than one, the
        /// medians follow the runs' tables. On a shared 2-core machine one run is ±15-40 %.
        #[arg(long, default_value_t = 1)]
        runs: usize,
    },
    /// The collector's memory holding a large fleet.
    Agents {
        /// Simulated agents.
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        /// MQTT connections they share.
        #[arg(long, default_value_t = 100)]
        connections: usize,
        /// Results each agent sends after its birth.
        #[arg(long, default_value_t = 3)]
        results: usize,
        /// Where the collector stores.
        #[arg(long, value_enum, default_value_t = StoreKind::Sqlite)]
        store: StoreKind,
    },
    /// From a threshold-crossing record to the webhook call, under background load.
    Latency {
        /// Escalations to time.
        #[arg(long, default_value_t = 200)]
        escalations: usize,
        /// Pause between two escalations.
        #[arg(long, default_value = "50ms", value_parser = parse_duration)]
        spacing: Duration,
        /// Background results per second.
        #[arg(long, default_value_t = 5000.0)]
        background_rate: f64,
        /// Where the collector stores.
        #[arg(long, value_enum, default_value_t = StoreKind::Sqlite)]
        store: StoreKind,
    },
    /// The collector's store alone (no MQTT), beside a bare SQLite insert of the same rows.
    Store(store::StoreArgs),
    /// A site back from a long outage replays its buffer while others send fresh results.
    Replay {
        /// Buffered records.
        #[arg(long, default_value_t = 100_000)]
        records: usize,
        /// Where the collector stores.
        #[arg(long, value_enum, default_value_t = StoreKind::Sqlite)]
        store: StoreKind,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Cli::parse().scenario {
        Scenario::AgentFootprint {
            checks,
            interval,
            duration,
            agent_bin,
        } => {
            footprint::run(&footprint::FootprintArgs {
                checks,
                interval,
                duration,
                agent_bin,
            })
            .await
        }
        Scenario::Ingest {
            agents,
            records,
            batch,
            connections,
            rate,
            fail_pct,
            store,
            runs,
        } => {
            let load = Load {
                agents,
                connections,
                records_per_agent: records.div_ceil(agents.max(1)),
                batch,
                fail_pct,
                historical: false,
                fail_after: 3,
            };
            ingest::run(&ingest::IngestArgs {
                load,
                rate,
                store,
                runs,
            })
            .await
        }
        Scenario::Agents {
            count,
            connections,
            results,
            store,
        } => {
            let load = Load {
                agents: count,
                connections,
                records_per_agent: results,
                batch: results.max(1),
                fail_pct: 0.0,
                historical: false,
                fail_after: 3,
            };
            fleet::run(&load, store).await
        }
        Scenario::Latency {
            escalations,
            spacing,
            background_rate,
            store,
        } => {
            latency::run(&latency::LatencyArgs {
                escalations,
                spacing,
                background_rate,
                store,
            })
            .await
        }
        Scenario::Store(args) => tokio::task::spawn_blocking(move || store::run(&args))
            .await
            .map_err(anyhow::Error::from)?,
        Scenario::Replay { records, store } => replay::run(records, store).await,
    }
}
