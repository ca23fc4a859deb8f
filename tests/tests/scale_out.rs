//! Two collector processes on one PostgreSQL behind one Mosquitto, splitting the sites'
//! records through a shared subscription. Exactly one decides and notifies; IT's calls to the
//! other reach it; when the deciding one is killed (-9) in the middle of an escalation, the
//! other takes over and IT hears every step once.

use std::time::Duration;

use outpost_shared::{Ack, EscalationList, EscalationState, Status, TopicKind};
use outpost_tests::{
    Broker, BrokerKind, CollectorProcess, FakeAgent, Receiver, TempDb, fake_agent::check,
};

const SITES: usize = 6;

fn config(broker: &Broker, db: &TempDb, hook: &Receiver, name: &str) -> String {
    format!(
        "offline_after = \"1h\"\n\
         [mqtt]\nurl = \"{}\"\nclient_id = \"outpost-collector-{name}\"\nshared_group = \"outpost\"\n\
         [store]\nurl = \"{}\"\n[http]\nlisten = \"{{http}}\"\n\
         [escalation]\noffline_window = \"2s\"\nreminder = \"0s\"\n\
         [[notifier]]\nkind = \"webhook\"\nurl = \"{}\"\n",
        broker.url(),
        db.url(),
        hook.url()
    )
}

fn role(collector: &CollectorProcess) -> String {
    let health = collector.health();
    ["leader", "follower"]
        .into_iter()
        .find(|r| health.contains(&format!("\"role\":\"{r}\"")))
        .unwrap_or("down")
        .to_owned()
}

async fn stored(collector: &CollectorProcess) -> u64 {
    let text = reqwest::get(format!("{}/metrics", collector.url()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix("outpost_collector_records_stored_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// (event, dedup key) of the webhook calls about `site`.
fn calls(hook: &Receiver, site: &str) -> Vec<(String, String)> {
    hook.bodies()
        .iter()
        .filter(|b| b["site"] == site)
        .map(|b| {
            (
                b["event"].as_str().unwrap_or_default().to_owned(),
                b["dedup_key"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn wait(
    what: &str,
    secs: u64,
    mut done: impl AsyncFnMut() -> bool,
    context: impl Fn() -> String,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}\n{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collectors_share_the_load_and_one_takes_over() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if BrokerKind::preferred() != BrokerKind::Mosquitto {
        eprintln!(
            "skipped: shared subscriptions are tested on Mosquitto (apt-get install mosquitto)"
        );
        return;
    }
    let broker = Broker::start();
    let db = tokio::task::spawn_blocking(|| TempDb::create("outpost_scale"))
        .await
        .expect("database");
    let hook = Receiver::start().await;
    let mut a = CollectorProcess::start(&config(&broker, &db, &hook, "a"));
    let b = CollectorProcess::start(&config(&broker, &db, &hook, "b"));
    assert_eq!(role(&a), "leader", "{}", a.log());
    assert_eq!(role(&b), "follower", "{}", b.log());

    // Six sites report; the broker splits their records between the two collectors, and every
    // agent learns that all it sent is safe.
    let mut agents = Vec::new();
    for i in 0..SITES {
        let agent = FakeAgent::connect(broker.port(), &format!("site-{i}"), "pc", 1).await;
        agent.online().await;
        agent
            .birth(vec![check("router", 2, 1, if i == 0 { 3 } else { 0 })])
            .await;
        agents.push(agent);
    }
    // The followers' subscriptions are in place before the first records go out.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for seq in 1..=10 {
        for agent in &agents {
            agent.results("router", seq, &[Status::Ok]).await;
        }
    }
    for agent in &mut agents {
        agent.wait::<Ack>(TopicKind::Ack, |a| a.seq == 10).await;
    }
    let (by_a, by_b) = (stored(&a).await, stored(&b).await);
    assert_eq!(by_a + by_b, 10 * SITES as u64, "each record stored once");
    assert!(
        by_a > 0 && by_b > 0,
        "both collectors store: {by_a} + {by_b}"
    );
    assert!(hook.bodies().is_empty(), "all is well: {:?}", hook.events());

    // Site 1's router fails (no window): IT is called, by the leader only, and a dashboard
    // served by the follower sees it live. IT acknowledges through the follower, which passes
    // the call on; the site sees it.
    let mut stream = reqwest::get(format!("{}/api/v1/stream", b.url()))
        .await
        .expect("the live stream through the follower");
    assert_eq!(stream.status(), 200);
    agents[1]
        .results("router", 11, &[Status::Fail, Status::Fail])
        .await;
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !seen.contains("\"escalated\"") {
        match tokio::time::timeout_at(deadline, stream.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("no escalation on the follower's stream ({other:?}): {seen}"),
        }
    }
    assert!(seen.contains("site-1"), "{seen}");
    drop(stream);
    assert!(
        hook.wait_until(Duration::from_secs(15), |b| b.len() == 1)
            .await,
        "one page for site 1: {:?}\n{}",
        hook.events(),
        a.log()
    );
    let http = reqwest::Client::new();
    let open: serde_json::Value = http
        .get(format!("{}/api/v1/escalations?state=escalated", b.url()))
        .send()
        .await
        .expect("list through the follower")
        .json()
        .await
        .expect("JSON");
    let id = open[0]["id"].as_u64().expect("the escalation's id");
    let acked = http
        .post(format!("{}/api/v1/escalations/{id}/ack", b.url()))
        .json(&serde_json::json!({"by": "Dana (IT)", "note": "on it"}))
        .send()
        .await
        .expect("ack through the follower");
    assert_eq!(acked.status(), 200, "{:?}", acked.text().await);
    agents[1]
        .wait::<EscalationList>(TopicKind::Escalations, |l| {
            l.escalations
                .iter()
                .any(|e| e.state == EscalationState::Acknowledged)
        })
        .await;

    // Site 0's router fails with a 3 s window. The leader dies inside the window; the other
    // collector takes over, calls IT when the window ends and resolves on recovery.
    agents[0]
        .results("router", 11, &[Status::Fail, Status::Fail])
        .await;
    wait(
        "site 0's window to open",
        15,
        async || calls(&hook, "site-0").len() == 1,
        || format!("{:?}", hook.events()),
    )
    .await;
    a.kill();
    wait(
        "the second collector to take over",
        20,
        async || role(&b) == "leader",
        || b.log(),
    )
    .await;
    wait(
        "site 0 to be escalated",
        20,
        async || calls(&hook, "site-0").len() == 2,
        || format!("{:?}\n{}", hook.events(), b.log()),
    )
    .await;
    agents[0].results("router", 13, &[Status::Ok]).await;
    wait(
        "site 0 to be resolved",
        20,
        async || calls(&hook, "site-0").len() == 3,
        || format!("{:?}\nB:\n{}\nA:\n{}", hook.events(), b.log(), a.log()),
    )
    .await;
    agents[0].wait::<Ack>(TopicKind::Ack, |a| a.seq == 13).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let events = |site| -> Vec<String> { calls(&hook, site).into_iter().map(|(e, _)| e).collect() };
    assert_eq!(events("site-0"), ["opened", "escalated", "resolved"]);
    assert_eq!(events("site-1"), ["escalated", "acknowledged"]);
    let keys: std::collections::BTreeSet<String> =
        calls(&hook, "site-0").into_iter().map(|(_, k)| k).collect();
    assert_eq!(keys.len(), 1, "one escalation, one dedup key: {keys:?}");
    assert_eq!(hook.bodies().len(), 5, "nothing else: {:?}", hook.events());
    drop(b);
    drop(a);
    drop(db);
}
