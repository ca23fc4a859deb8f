//! The site's WAN line itself goes down. The agent runs inside a network namespace that
//! stands for the plant's LAN and reaches the broker over a veth link, which is pulled on the
//! site's side for a while, as the plant's line would be. The broker and the collector stay up
//! and connected throughout: the collector learns of the outage from the agent's Last Will,
//! and when the line is back, the agent replays everything it made meanwhile.

use std::time::Duration;

use outpost_tests::{AgentProcess, Broker, BrokerKind, CollectorProcess, Receiver};

use super::{
    broker::reconcile_no_loss,
    support::{
        Store, agent_config, assert_one_offline_escalation, assert_replayed_as_history,
        collector_config, hook_events, router, uptime_checks, wait_caught_up, wait_for,
    },
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_wan_line_down_loses_nothing_and_pages_once() {
    let Some(site) = router() else { return };
    if BrokerKind::preferred() != BrokerKind::Mosquitto {
        eprintln!(
            "SKIPPED: the site's broker listener is a Mosquitto one (apt-get install mosquitto)"
        );
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let broker = Broker::start_also_on(site.host_addr());
    let hook = Receiver::start().await;
    let collector = CollectorProcess::start(&collector_config(
        &broker,
        &hook,
        "offline_after = \"1h\"",
        "",
    ));
    // Over the site's link, with a short keep-alive: the broker gives up on the agent (and
    // sends its Last Will) about 3 s into the outage.
    let config = agent_config(&broker, "256MB", &uptime_checks(3, "500ms")).replace(
        &format!("url = \"{}\"", broker.url()),
        &format!(
            "url = \"mqtt://{}:{}\"\nkeep_alive = \"2s\"",
            site.host_addr(),
            broker.port()
        ),
    );
    let mut agent = AgentProcess::start_in(site.namespace(), &config);
    let store = Store::open(&collector);
    wait_for(
        "the agent's first records over the site's line",
        30,
        || !store.epochs().is_empty(),
        || agent.log(),
    )
    .await;
    let epoch = *store.epochs().first().expect("one epoch");
    tokio::time::sleep(Duration::from_secs(2)).await;

    let outage_start = jiff::Timestamp::now();
    site.link_down().expect("the line goes down");
    tokio::time::sleep(Duration::from_secs(15)).await;
    let outage_end = jiff::Timestamp::now();
    site.link_up().expect("the line is back");
    wait_caught_up(&store, epoch, outage_end + Duration::from_secs(2), 90).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let bodies = hook.bodies();
    let view = reconcile_no_loss(&mut agent, &store, epoch);

    // What was made while nothing got through came back marked historical.
    let during = assert_replayed_as_history(
        &store,
        epoch,
        outage_start + Duration::from_secs(4),
        outage_end - Duration::from_secs(6),
        20,
    );
    // One agent-offline escalation, from the Last Will, resolved on return; nothing else.
    assert_one_offline_escalation(&hook_events(&hook, "agent-offline"), &collector.log());
    assert_eq!(bodies.len(), 3, "no per-check storm on return: {bodies:?}");
    eprintln!(
        "wan line down: {} seqs stored, {} historical, {} pending at stop",
        view.acked_seq,
        during,
        view.pending.len()
    );
}
