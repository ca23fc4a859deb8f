//! The collector's host crashes (`kill -9`) while escalations are being opened, escalated and
//! resolved: IT hears every step of every escalation, each under one dedup key. A repeat of a
//! step (the same key and event, a retry after the crash) is allowed: at most one per kill.

use std::{collections::BTreeSet, time::Duration};

use outpost_tests::{AgentProcess, free_port};
use tokio::task::JoinHandle;

use super::support::{Store, agent_config, hook_events, plant, wait_for};

const CHECKS: usize = 4;

/// A TCP service the agent's tcp check reaches (listening when this returns); aborting the
/// task closes it and makes the check fail.
fn serve(port: u16) -> JoinHandle<()> {
    let listener = loop {
        // The port was ours a moment ago; a just-closed listener may need a moment.
        match std::net::TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => break l,
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    tokio::spawn(async move {
        loop {
            // Accept and hang up: the check only needs the connection.
            let _ = listener.accept().await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::format_collect, reason = "a few test config tables")]
async fn collector_kill_9_with_escalations_in_flight() {
    let (broker, hook, mut collector) = plant("offline_after = \"20s\"", "").await;
    let ports: Vec<u16> = (0..CHECKS).map(|_| free_port()).collect();
    let mut services: Vec<JoinHandle<()>> = ports.iter().map(|p| serve(*p)).collect();
    let checks: String = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            format!(
                "[[check]]\nid = \"line{i}\"\nkind = \"tcp\"\ntitle = \"Line {i} controller\"\n\
                 target = \"127.0.0.1:{port}\"\ninterval = \"1s\"\ntimeout = \"1s\"\nfail_after = 2\n\
                 recover_after = 2\nlocal_window = \"1s\"\n"
            )
        })
        .collect();
    let agent = AgentProcess::start(&agent_config(&broker, "256MB", &checks));
    let store = Store::open(&collector);
    wait_for(
        "the agent's first records",
        30,
        || !store.epochs().is_empty(),
        || agent.log(),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        hook.bodies().is_empty(),
        "all is well at first: {:?}",
        hook.bodies()
    );

    // The lines fail; the collector dies while their escalations open.
    for s in &services {
        s.abort();
    }
    tokio::time::sleep(Duration::from_millis(900)).await;
    collector.kill();
    tokio::time::sleep(Duration::from_millis(800)).await;
    collector.restart();
    let has = |check: &str, event: &str| hook_events(&hook, check).iter().any(|(e, _)| e == event);
    wait_for(
        "every line escalated",
        30,
        || (0..CHECKS).all(|i| has(&format!("line{i}"), "escalated")),
        || format!("{:?}\n{}", hook.events(), collector.log()),
    )
    .await;

    // The lines recover; the collector dies while resolving.
    services = ports.iter().map(|p| serve(*p)).collect();
    tokio::time::sleep(Duration::from_millis(900)).await;
    collector.kill();
    tokio::time::sleep(Duration::from_millis(800)).await;
    collector.restart();
    wait_for(
        "every line resolved",
        30,
        || (0..CHECKS).all(|i| has(&format!("line{i}"), "resolved")),
        || format!("{:?}\n{}", hook.events(), collector.log()),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut retries = 0;
    for i in 0..CHECKS {
        let check = format!("line{i}");
        let events = hook_events(&hook, &check);
        let keys: BTreeSet<&str> = events.iter().map(|(_, k)| k.as_str()).collect();
        assert_eq!(
            keys.len(),
            1,
            "{check}: one escalation, one dedup key: {events:?}"
        );
        let mut firsts: Vec<&str> = Vec::new();
        for (event, _) in &events {
            if !firsts.contains(&event.as_str()) {
                firsts.push(event);
            }
        }
        assert_eq!(
            firsts,
            ["opened", "escalated", "resolved"],
            "{check}: every step once at least, in order: {events:?}"
        );
        retries += events.len() - firsts.len();
    }
    let others = hook
        .bodies()
        .iter()
        .filter(|b| !b["check"].as_str().is_some_and(|c| c.starts_with("line")))
        .count();
    assert_eq!(others, 0, "no other notifications: {:?}", hook.events());
    eprintln!("collector crash: {retries} notification(s) repeated after a crash (same key)");
    // Delivery marks each notification sent before the next goes out: a kill can cut off at
    // most the one on its way, so two kills repeat at most two.
    assert!(
        retries <= 2,
        "{retries} repeats after 2 kills: {:?}",
        hook.events()
    );
    for s in services {
        s.abort();
    }
}
