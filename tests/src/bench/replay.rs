//! `replay`: a site back after a long outage sends its buffered records (historical, batches
//! of 500, at most 2,000 beyond the collector's watermark, as the agent's publisher does)
//! while other sites keep sending fresh results. Prints how long the backlog takes to be
//! stored and how late the fresh results are, beside their delay with no replay going on.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use outpost_shared::{Status, TopicKind};
use rumqttc::{AsyncClient, QoS};

use super::{
    central::{Central, StoreKind},
    latency::pct,
    mqtt::{AckWatch, publishers},
    rate,
    sim::SimAgent,
    table::{Table, thousands},
};
use crate::Broker;

/// Records the agent's publisher sends beyond the collector's watermark (its default window).
const WINDOW: u64 = 2000;
/// Records per batch message (the agent's default).
const BATCH: usize = 500;
/// Sites sending fresh results during the replay, one result each per tick.
const LIVE_AGENTS: usize = 20;
const LIVE_TICK: Duration = Duration::from_millis(100);

/// Replays `records` buffered records and prints the figures.
pub async fn run(records: usize, store: StoreKind) -> anyhow::Result<()> {
    let broker = tokio::task::block_in_place(Broker::start);
    let port = broker.port();
    let central = tokio::task::block_in_place(|| Central::start(port, store, ""))?;
    let acks = AckWatch::start(port).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let clients = publishers(port, "bench-replay", 2).await?;
    let (replayer_client, live_client) = (clients[0].clone(), clients[1].clone());

    let mut replayer = SimAgent::new("replay", 0);
    let mut live: Vec<SimAgent> = (0..LIVE_AGENTS).map(|i| SimAgent::new("live", i)).collect();
    for a in std::iter::once(&replayer).chain(&live) {
        replayer_client
            .publish(a.topic(TopicKind::Birth), QoS::AtLeastOnce, true, a.birth())
            .await?;
    }

    // Baseline: fresh results with nothing else going on.
    let quiet = live_traffic(&live_client, &mut live, &acks, Duration::from_secs(3)).await;

    // The replay, with fresh results alongside.
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let live_acks = acks.clone();
    let live_task = tokio::spawn(async move {
        let mut samples = Vec::new();
        while !flag.load(Ordering::Relaxed) {
            samples.extend(live_tick(&live_client, &mut live).await);
            tokio::time::sleep(LIVE_TICK).await;
        }
        settle(&live_acks, samples).await
    });
    let key = replayer.key();
    let mut left = records;
    while left > 0 {
        let n = left.min(BATCH);
        while replayer.next_seq + n as u64 - 1 > acks.acked(&key) + WINDOW {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let batch = replayer.batch(n, 0, true);
        replayer_client
            .publish(
                replayer.topic(TopicKind::Records),
                QoS::AtLeastOnce,
                false,
                batch,
            )
            .await?;
        left -= n;
    }
    let last = acks
        .wait_all(&[(key, replayer.last_seq())], Duration::from_secs(600))
        .await?;
    let backlog = last - started;
    stop.store(true, Ordering::Relaxed);
    let during = live_task.await?;

    let mut t = Table::new(format!(
        "replay: {} historical records (batches of {BATCH}, window {WINDOW}), {LIVE_AGENTS} live sites at {} rec/s, store {store:?}",
        thousands(records as f64),
        LIVE_AGENTS as u64 * 1000 / LIVE_TICK.as_millis() as u64
    ));
    t.row(
        "backlog stored and acked in",
        format!("{:.1} s", backlog.as_secs_f64()),
        format!("{} rec/s", thousands(rate(records as u64, backlog))),
    );
    for (name, delays) in [
        ("no replay (baseline)", &quiet),
        ("during the replay", &during),
    ] {
        t.row(
            format!("fresh result delay p50, {name}"),
            format!("{:.0} ms", pct(delays, 50.0).as_secs_f64() * 1e3),
            format!("{} results, publish to ack", delays.len()),
        );
        t.row(
            format!("fresh result delay p99, {name}"),
            format!("{:.0} ms", pct(delays, 99.0).as_secs_f64() * 1e3),
            "",
        );
    }
    t.print();
    drop(central);
    Ok(())
}

/// Sends fresh results for `length` and returns their publish-to-ack delays, sorted.
async fn live_traffic(
    client: &AsyncClient,
    live: &mut [SimAgent],
    acks: &AckWatch,
    length: Duration,
) -> Vec<Duration> {
    let until = Instant::now() + length;
    let mut samples = Vec::new();
    while Instant::now() < until {
        samples.extend(live_tick(client, live).await);
        tokio::time::sleep(LIVE_TICK).await;
    }
    settle(acks, samples).await
}

/// One fresh result from each live agent: (agent key, seq, published at).
async fn live_tick(client: &AsyncClient, live: &mut [SimAgent]) -> Vec<(String, u64, Instant)> {
    let mut sent = Vec::with_capacity(live.len());
    for a in live {
        let payload = a.results(&[("router", Status::Ok)], false);
        let at = Instant::now();
        if client
            .publish(
                a.topic(TopicKind::Records),
                QoS::AtLeastOnce,
                false,
                payload,
            )
            .await
            .is_ok()
        {
            sent.push((a.key(), a.last_seq(), at));
        }
    }
    sent
}

/// Waits (up to 30 s) for the samples' acks and returns the delays, sorted.
async fn settle(acks: &AckWatch, samples: Vec<(String, u64, Instant)>) -> Vec<Duration> {
    let mut latest: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    for (k, seq, _) in &samples {
        let e = latest.entry(k.clone()).or_default();
        *e = (*e).max(*seq);
    }
    let targets: Vec<(String, u64)> = latest.into_iter().collect();
    let _ = acks.wait_all(&targets, Duration::from_secs(30)).await;
    let mut delays: Vec<Duration> = samples
        .iter()
        .filter_map(|(k, seq, at)| {
            acks.acked_at(k, *seq)
                .map(|t| t.saturating_duration_since(*at))
        })
        .collect();
    delays.sort();
    delays
}
