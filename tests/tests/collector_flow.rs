//! The collector binary end to end through a real Mosquitto: an agent's failing check opens an
//! escalation, the site team's window runs out, IT is called, acknowledges through the API,
//! the check recovers, and the webhook hears each step exactly once, across a `kill -9`.

use std::time::Duration;

use outpost_shared::{Ack, EscalationList, EscalationState, Status, TopicKind};
use outpost_tests::{Broker, CollectorProcess, FakeAgent, Receiver, fake_agent::check};

#[tokio::test(flavor = "multi_thread")]
async fn escalation_flow_with_restart_and_webhook() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let broker = Broker::start();
    let hook = Receiver::start().await;
    let config = format!(
        "[mqtt]\nurl = \"{}\"\n[store]\nurl = \"sqlite://{{dir}}/outpost.db\"\n[http]\nlisten = \"{{http}}\"\n\
         [escalation]\nreminder = \"0s\"\n[[notifier]]\nkind = \"webhook\"\nurl = \"{}\"\n",
        broker.url(),
        hook.url()
    );
    let mut collector = CollectorProcess::start(&config);
    let mut agent = FakeAgent::connect(broker.port(), "plant-leeds", "line3-pc", 42).await;
    agent.online().await;
    agent.birth(vec![check("router", 2, 1, 2)]).await;
    agent
        .results("router", 1, &[Status::Fail, Status::Fail])
        .await;

    // The site team's window first (shown to the site), then IT.
    let list: EscalationList = agent
        .wait(TopicKind::Escalations, |l: &EscalationList| {
            l.escalations
                .iter()
                .any(|e| e.state == EscalationState::Local)
        })
        .await;
    assert_eq!(list.escalations.len(), 1);
    let ack: Ack = agent.wait(TopicKind::Ack, |a: &Ack| a.seq == 2).await;
    assert_eq!(ack.epoch, 42);
    assert!(
        hook.wait_until(Duration::from_secs(15), |b| b
            .iter()
            .any(|v| v["event"] == "escalated"))
            .await,
        "IT was called: {:?} {}",
        hook.events(),
        collector.log()
    );

    // kill -9 and restart: nothing is repeated.
    collector.kill();
    collector.restart();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let http = reqwest::Client::new();
    let id = hook.bodies()[0]["escalation"]["id"]
        .as_u64()
        .expect("escalation id");
    let answer = http
        .post(format!("{}/api/v1/escalations/{id}/ack", collector.url()))
        .json(&serde_json::json!({"by": "Priya", "note": "Replacement router on its way"}))
        .send()
        .await
        .expect("API answers");
    assert_eq!(
        answer.status(),
        200,
        "{}",
        answer.text().await.unwrap_or_default()
    );
    let list: EscalationList = agent
        .wait(TopicKind::Escalations, |l: &EscalationList| {
            l.escalations
                .iter()
                .any(|e| e.state == EscalationState::Acknowledged)
        })
        .await;
    assert_eq!(
        list.escalations[0].acknowledged_by.as_deref(),
        Some("Priya")
    );
    assert_eq!(
        list.escalations[0].note.as_deref(),
        Some("Replacement router on its way")
    );

    // A bad request gets a JSON error that says what is wrong.
    let bad = http
        .post(format!("{}/api/v1/escalations/{id}/ack", collector.url()))
        .json(&serde_json::json!({"who": "x"}))
        .send()
        .await
        .expect("API answers");
    assert_eq!(bad.status(), 400);
    let body: serde_json::Value = bad.json().await.expect("JSON error");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("by")),
        "{body}"
    );

    agent.results("router", 3, &[Status::Ok]).await;
    assert!(
        hook.wait_until(Duration::from_secs(15), |b| b
            .iter()
            .any(|v| v["event"] == "resolved"))
            .await,
        "{:?}",
        hook.events()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        hook.events(),
        ["opened", "escalated", "acknowledged", "resolved"],
        "each step exactly once"
    );
    let resolved = hook.bodies().pop().expect("resolved body");
    assert_eq!(resolved["escalation"]["fixed_by"], "it");
    assert_eq!(
        resolved["dedup_key"],
        format!("outpost:plant-leeds:line3-pc:router:{id}")
    );
    assert_eq!(resolved["runbook"][0], "Switch the router off and on.");

    let escalations: serde_json::Value = http
        .get(format!(
            "{}/api/v1/escalations?state=resolved",
            collector.url()
        ))
        .send()
        .await
        .expect("API answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(escalations.as_array().map(Vec::len), Some(1));
    let metrics = http
        .get(format!("{}/metrics", collector.url()))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("outpost_notifications_total"), "{metrics}");
}
