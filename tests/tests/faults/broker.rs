//! The WAN goes away: the broker is stopped for a long outage, or killed (-9) and restarted
//! under load. Nothing the agent produced may be lost or stored twice.

use std::time::Duration;

use outpost_tests::{AgentProcess, free_port};

use super::support::{
    OutboxView, Store, agent_config, assert_each_once, assert_one_offline_escalation,
    assert_replayed_as_history, hook_events, missing, outbox_view, plant, uptime_checks,
    wait_caught_up, wait_for,
};

const MAX_SIZE: u64 = 256_000_000;

/// Stops the agent and checks the zero-loss invariant: the store holds seqs `1..=M` once each,
/// the watermark is `M`, and the outbox still holds exactly `M+1..=N`.
pub fn reconcile_no_loss(agent: &mut AgentProcess, store: &Store, epoch: u64) -> OutboxView {
    agent.stop();
    let view = outbox_view(&agent.outbox_dir(), MAX_SIZE);
    assert_eq!(view.epoch, epoch, "the agent kept its buffer generation");
    let stored = store.seqs(epoch);
    assert_each_once(&stored);
    let top = stored.last().copied().unwrap_or(0);
    assert_eq!(
        stored,
        (1..=top).collect::<Vec<_>>(),
        "stored seqs are 1..={top} without holes"
    );
    assert_eq!(
        store.watermark(epoch),
        Some(top),
        "the watermark covers the store"
    );
    assert!(
        view.acked_seq <= top,
        "the agent was never acked beyond the store"
    );
    assert_eq!(
        missing(view.last_seq, &stored, &view.pending),
        Vec::<u64>::new(),
        "every seq up to the agent's last {} is stored or still pending",
        view.last_seq
    );
    assert!(
        view.pending_gaps.is_empty() && store.gaps(epoch).is_empty(),
        "no gaps"
    );
    view
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wan_outage_loses_nothing_and_escalates_once() {
    let (mut broker, hook, collector) = plant("offline_after = \"3s\"", "").await;
    let closed = free_port();
    let checks = format!(
        "{}[[check]]\nid = \"erp\"\nkind = \"tcp\"\ntitle = \"ERP link\"\ntarget = \"127.0.0.1:{closed}\"\n\
         interval = \"500ms\"\nfail_after = 2\nlocal_window = \"0s\"\n",
        uptime_checks(3, "500ms")
    );
    let mut agent = AgentProcess::start(&agent_config(&broker, "256MB", &checks));
    let store = Store::open(&collector);
    wait_for(
        "the agent's first records and the erp escalation",
        30,
        || !store.epochs().is_empty() && hook_events(&hook, "erp").len() == 1,
        || format!("{:?}\n{}", hook.events(), agent.log()),
    )
    .await;
    let epoch = *store.epochs().first().expect("one epoch");
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The outage: ~15 s of results made with nowhere to go.
    let outage_start = jiff::Timestamp::now();
    broker.stop();
    tokio::time::sleep(Duration::from_secs(15)).await;
    let outage_end = jiff::Timestamp::now();
    broker.restart();
    wait_caught_up(&store, epoch, outage_end + Duration::from_secs(2), 60).await;
    // Let the return settle (resolve notifications, no late storm).
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Before the agent is stopped (a stopped agent is rightly reported offline again).
    let bodies = hook.bodies();
    let view = reconcile_no_loss(&mut agent, &store, epoch);

    let during = assert_replayed_as_history(
        &store,
        epoch,
        outage_start + Duration::from_secs(1),
        outage_end - Duration::from_secs(6),
        40,
    );
    assert!(
        store
            .results(epoch)
            .iter()
            .filter(|r| r.ts < outage_start - Duration::from_secs(1))
            .all(|r| !r.historical),
        "results sent live are not historical"
    );
    let events_of = |check: &str| -> Vec<(String, String)> {
        bodies
            .iter()
            .filter(|b| b["check"] == check)
            .map(|b| {
                let text = |key: &str| b[key].as_str().unwrap_or_default().to_owned();
                (text("event"), text("dedup_key"))
            })
            .collect()
    };
    assert_one_offline_escalation(&events_of("agent-offline"), "");
    let erp = events_of("erp");
    assert_eq!(
        erp.len(),
        1,
        "the failing check was escalated once, before the outage; no storm on return: {erp:?}"
    );
    let others = bodies
        .iter()
        .filter(|b| b["check"] != "erp" && b["check"] != "agent-offline")
        .count();
    assert_eq!(others, 0, "no other notifications: {bodies:?}");
    eprintln!(
        "wan outage: {} seqs stored, {} pending at stop, {} historical",
        view.acked_seq,
        view.pending.len(),
        during
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_kill_9_under_load_loses_and_duplicates_nothing() {
    let (mut broker, _hook, collector) = plant("offline_after = \"30s\"", "").await;
    let mut agent =
        AgentProcess::start(&agent_config(&broker, "256MB", &uptime_checks(4, "200ms")));
    let store = Store::open(&collector);
    wait_for(
        "the agent's first records",
        30,
        || !store.epochs().is_empty(),
        || agent.log(),
    )
    .await;
    let epoch = *store.epochs().first().expect("one epoch");
    for round in 0..3u64 {
        tokio::time::sleep(Duration::from_millis(1500 + 700 * round)).await;
        broker.kill();
        tokio::time::sleep(Duration::from_millis(800)).await;
        broker.restart();
    }
    wait_caught_up(
        &store,
        epoch,
        jiff::Timestamp::now() + Duration::from_secs(1),
        60,
    )
    .await;
    let view = reconcile_no_loss(&mut agent, &store, epoch);
    assert_eq!(
        store.epochs().len(),
        1,
        "one epoch: the buffer was never reset"
    );
    assert!(
        view.last_seq >= 100,
        "under load: {} records",
        view.last_seq
    );
}
