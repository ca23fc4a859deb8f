//! The agent's host loses power again and again (`kill -9` at random moments, during writes
//! and replays), and finally its outbox's newest file gets a garbage tail.

use std::{io::Write, time::Duration};

use outpost_tests::AgentProcess;

use super::support::{
    Store, agent_config, assert_each_once, missing, outbox_view, plant, uptime_checks,
    wait_caught_up, wait_for,
};

const MAX_SIZE: u64 = 256_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_kill_9_loop_then_corrupt_tail() {
    let (mut broker, _hook, collector) = plant("offline_after = \"30s\"", "").await;
    let mut agent =
        AgentProcess::start(&agent_config(&broker, "256MB", &uptime_checks(4, "100ms")));
    let store = Store::open(&collector);
    wait_for(
        "the agent's first records",
        30,
        || !store.epochs().is_empty(),
        || agent.log(),
    )
    .await;
    let epoch = *store.epochs().first().expect("one epoch");

    // Power cuts at random moments: while checks append and while the publisher replays.
    for _ in 0..5 {
        let pause = 300 + u64::from(std::process::id() % 7) * 50 + rand_ms(1200);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        agent.kill();
        agent.restart();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            agent.exited().is_none(),
            "the agent stays up after a power cut: {}",
            agent.log()
        );
    }
    wait_caught_up(&store, epoch, jiff::Timestamp::now(), 60).await;
    agent.stop();
    let view = outbox_view(&agent.outbox_dir(), MAX_SIZE);
    assert_eq!(view.epoch, epoch, "power cuts do not reset the buffer");
    assert_eq!(store.epochs().len(), 1, "one epoch");
    let stored = store.seqs(epoch);
    assert_each_once(&stored);
    let lost = missing(view.last_seq, &stored, &view.pending);
    let gaps: Vec<_> = store
        .gaps(epoch)
        .into_iter()
        .chain(view.pending_gaps.iter().cloned())
        .collect();
    let explained = |s: &u64| gaps.iter().any(|g| g.from_seq <= *s && *s <= g.to_seq);
    assert!(
        lost.iter().all(explained),
        "every missing seq lies in a gap record: missing {lost:?}, gaps {gaps:?}"
    );
    assert_eq!(
        gaps.iter().map(|g| g.dropped).sum::<u64>(),
        lost.len() as u64,
        "gap counts match the missing seqs: {gaps:?}"
    );

    // A garbage tail on the newest segment while the agent is stopped.
    let newest_segment = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .expect("outbox folder")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "seg"))
            .max()
    };
    let newest = if let Some(segment) = newest_segment(&agent.outbox_dir()) {
        segment
    } else {
        // Everything was acked and compacted away: run a moment without a broker, so
        // records wait in a segment.
        broker.stop();
        agent.restart();
        tokio::time::sleep(Duration::from_secs(2)).await;
        agent.stop();
        broker.restart();
        newest_segment(&agent.outbox_dir()).expect("a segment file")
    };
    std::fs::OpenOptions::new()
        .append(true)
        .open(&newest)
        .and_then(|mut f| f.write_all(b"\x13\x37 not a frame \xff\xfe\x00\x01garbage"))
        .expect("appending garbage");
    agent.restart();
    wait_for(
        "a gap record with reason corrupt at the collector",
        30,
        || store.gaps(epoch).iter().any(|g| g.reason == "corrupt"),
        || agent.log(),
    )
    .await;
    assert!(
        agent.exited().is_none(),
        "the agent runs on: {}",
        agent.log()
    );
    let corrupt: Vec<_> = store
        .gaps(epoch)
        .into_iter()
        .filter(|g| g.reason == "corrupt")
        .collect();
    let before: std::collections::BTreeSet<u64> = gaps
        .iter()
        .filter(|g| g.reason == "corrupt")
        .map(|g| g.seq)
        .collect();
    assert_eq!(
        corrupt.len(),
        before.len() + 1,
        "exactly one new corrupt gap: {corrupt:?}"
    );
    assert_eq!(
        store.epochs().len(),
        1,
        "a damaged tail does not reset the buffer"
    );
}

/// A pseudo-random number of milliseconds below `max` (time-seeded; no dependency).
fn rand_ms(max: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    nanos % max
}
