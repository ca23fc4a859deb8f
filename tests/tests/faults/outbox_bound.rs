//! A long outage with a small disk: the outbox reaches its bound, drops the oldest records,
//! keeps the newest result of every check, counts what it dropped in `gap` records, and never
//! uses more disk than allowed.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use outpost_tests::{AgentProcess, agent::dir_bytes};

use super::support::{
    Store, agent_config, assert_each_once, missing, outbox_view, plant, uptime_checks,
    wait_caught_up, wait_for,
};

const MAX_SIZE: u64 = 64 * 1024;
const CHECKS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_bound_drops_oldest_and_counts_gaps() {
    let (mut broker, _hook, collector) = plant("offline_after = \"30s\"", "").await;
    let mut agent = AgentProcess::start(&agent_config(
        &broker,
        "64KiB",
        &uptime_checks(CHECKS, "100ms"),
    ));
    let store = Store::open(&collector);
    wait_for(
        "the agent's first records",
        30,
        || !store.epochs().is_empty(),
        || agent.log(),
    )
    .await;
    let epoch = *store.epochs().first().expect("one epoch");

    // Sample the outbox's disk use all through the outage.
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak, dir) = (stop.clone(), peak.clone(), agent.outbox_dir());
        std::thread::spawn(move || {
            let mut samples = 0u64;
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(dir_bytes(&dir), Ordering::Relaxed);
                samples += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            samples
        })
    };
    broker.stop();
    tokio::time::sleep(Duration::from_secs(10)).await;
    // At the height of the outage: each check's newest result is in the outbox.
    agent.stop();
    let stopped = jiff::Timestamp::now();
    let full = outbox_view(&agent.outbox_dir(), MAX_SIZE);
    for i in 0..CHECKS {
        let check = format!("up{i}");
        let newest = full
            .pending_results
            .iter()
            .filter(|(c, _)| *c == check)
            .map(|(_, ts)| *ts)
            .max();
        assert!(
            newest.is_some_and(|ts| ts > stopped - Duration::from_secs(1)),
            "{check}'s newest result was kept: {newest:?}"
        );
    }
    agent.restart();
    let outage_end = jiff::Timestamp::now();
    broker.restart();
    wait_caught_up(&store, epoch, outage_end + Duration::from_secs(1), 60).await;
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().expect("sampler thread");
    agent.stop();

    let peak = peak.load(Ordering::Relaxed);
    assert!(
        peak <= MAX_SIZE,
        "the outbox used {peak} bytes, more than its bound {MAX_SIZE} ({samples} samples)"
    );
    let view = outbox_view(&agent.outbox_dir(), MAX_SIZE);
    let stored = store.seqs(epoch);
    assert_each_once(&stored);
    let lost = missing(view.last_seq, &stored, &view.pending);
    let mut gaps: BTreeMap<u64, _> = store.gaps(epoch).into_iter().map(|g| (g.seq, g)).collect();
    gaps.extend(view.pending_gaps.into_iter().map(|g| (g.seq, g)));
    assert!(
        !lost.is_empty(),
        "the outage was long enough to reach the bound"
    );
    assert!(
        gaps.values().all(|g| g.reason != "corrupt"),
        "drops are not corruption: {gaps:?}"
    );
    for seq in &lost {
        assert!(
            gaps.values()
                .any(|g| g.from_seq <= *seq && *seq <= g.to_seq),
            "missing seq {seq} lies in a gap: {gaps:?}"
        );
    }
    for g in gaps.values() {
        assert_eq!(
            g.dropped,
            g.to_seq - g.from_seq + 1,
            "a gap counts its range: {g:?}"
        );
        assert!(g.to_seq < g.seq, "a gap reports earlier seqs: {g:?}");
    }
    // A new gap absorbs older, unacknowledged gap records (their ranges and the records
    // themselves); when those were already delivered, the collector holds overlapping gaps, so
    // the exact count is the union of the ranges, not the sum of `dropped`.
    let covered: std::collections::BTreeSet<u64> =
        gaps.values().flat_map(|g| g.from_seq..=g.to_seq).collect();
    let kept: std::collections::BTreeSet<u64> =
        stored.iter().chain(&view.pending).copied().collect();
    assert_eq!(
        covered.difference(&kept).count(),
        lost.len(),
        "the gaps' union explains exactly the missing seqs"
    );
    let sum: u64 = gaps.values().map(|g| g.dropped).sum();
    eprintln!(
        "outbox bound: {} records, {} dropped in {} gaps (sum of dropped {sum}), peak {peak} bytes",
        view.last_seq,
        lost.len(),
        gaps.len()
    );
}
