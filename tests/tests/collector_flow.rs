//! The collector binary end to end through a real Mosquitto: an agent's failing check opens an
//! escalation, the site team's window runs out, IT is called, acknowledges through the API,
//! the check recovers, and the webhook hears each step exactly once, across a `kill -9`.

use std::time::Duration;

use outpost_shared::{
    Ack, AgentId, AgentTopic, Batch, Birth, CheckId, CheckSpec, EscalationList, EscalationState,
    HostFacts, HumanDuration, Presence, Record, RecordBody, ResultRecord, SiteId, Status,
    TopicKind, decode, encode,
};
use outpost_tests::{Broker, CollectorProcess, Receiver};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

fn site() -> SiteId {
    SiteId::new("plant-leeds").expect("valid")
}
fn agent() -> AgentId {
    AgentId::new("line3-pc").expect("valid")
}
fn topic(kind: TopicKind) -> String {
    AgentTopic::new(&site(), &agent(), kind).to_string()
}

fn birth() -> Birth {
    Birth {
        v: 1,
        site: site(),
        agent: agent(),
        version: "test".into(),
        epoch: 42,
        boot_time: jiff::Timestamp::now(),
        started_at: jiff::Timestamp::now(),
        host: HostFacts {
            hostname: "line3".into(),
            ..HostFacts::default()
        },
        checks: vec![CheckSpec {
            id: CheckId::new("router").expect("valid"),
            kind: "ping".into(),
            title: "Main router".into(),
            interval: HumanDuration::from_secs(1),
            fail_after: 2,
            recover_after: 1,
            local_window: HumanDuration::from_secs(2),
            escalate_warn: false,
            runbook: vec!["Switch the router off and on.".into()],
            depends_on: vec![],
            thresholds: std::collections::BTreeMap::default(),
        }],
    }
}

fn batch(from: u64, statuses: &[Status]) -> Batch {
    Batch {
        v: 1,
        site: site(),
        agent: agent(),
        epoch: 42,
        records: statuses
            .iter()
            .enumerate()
            .map(|(i, status)| Record {
                seq: from + i as u64,
                ts: jiff::Timestamp::now(),
                body: RecordBody::Result(ResultRecord {
                    check: CheckId::new("router").expect("valid"),
                    status: *status,
                    summary: format!("The router is {status}."),
                    metrics: [("loss_pct".to_owned(), 100.0)].into(),
                    historical: false,
                }),
            })
            .collect(),
    }
}

/// A fake agent on the broker: publishes what a real agent would and watches its topics.
async fn agent_client(
    broker: &Broker,
) -> (
    AsyncClient,
    tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
) {
    let mut opts = MqttOptions::new("plant-leeds.line3-pc", "127.0.0.1", broker.port());
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut event_loop) = AsyncClient::new(opts, 64);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match event_loop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = tx.send((p.topic.clone(), p.payload.to_vec()));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    client
        .subscribe(topic(TopicKind::Ack), QoS::AtLeastOnce)
        .await
        .expect("subscribe ack");
    client
        .subscribe(topic(TopicKind::Escalations), QoS::AtLeastOnce)
        .await
        .expect("subscribe escalations");
    (client, rx)
}

async fn publish(client: &AsyncClient, kind: TopicKind, payload: Vec<u8>, retain: bool) {
    client
        .publish(topic(kind), QoS::AtLeastOnce, retain, payload)
        .await
        .expect("queue publish");
}

/// Everything the fake agent received, kept so that waiting for one topic loses no other.
struct Inbox {
    rx: tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    seen: Vec<(String, Vec<u8>)>,
}

impl Inbox {
    /// Waits for a message on `kind` satisfying `pred` (also among those already received).
    async fn wait<T: outpost_shared::message::Message>(
        &mut self,
        kind: TopicKind,
        pred: impl Fn(&T) -> bool,
    ) -> T {
        let want = topic(kind);
        let find = |seen: &[(String, Vec<u8>)]| {
            seen.iter()
                .filter(|(t, _)| *t == want)
                .filter_map(|(_, p)| decode::<T>(p).ok())
                .find(|m| pred(m))
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(found) = find(&self.seen) {
                return found;
            }
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(msg)) => self.seen.push(msg),
                _ => panic!("no matching message on {want} within 20 s"),
            }
        }
    }
}

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
    let (client, rx) = agent_client(&broker).await;
    let mut inbox = Inbox {
        rx,
        seen: Vec::new(),
    };

    publish(&client, TopicKind::State, encode(&Presence::ONLINE), true).await;
    publish(&client, TopicKind::Birth, encode(&birth()), true).await;
    publish(
        &client,
        TopicKind::Records,
        encode(&batch(1, &[Status::Fail, Status::Fail])),
        false,
    )
    .await;

    // The site team's window first (shown to the site), then IT.
    let list: EscalationList = inbox
        .wait(TopicKind::Escalations, |l: &EscalationList| {
            l.escalations
                .iter()
                .any(|e| e.state == EscalationState::Local)
        })
        .await;
    assert_eq!(list.escalations.len(), 1);
    let ack: Ack = inbox.wait(TopicKind::Ack, |a: &Ack| a.seq == 2).await;
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
    let list: EscalationList = inbox
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

    publish(
        &client,
        TopicKind::Records,
        encode(&batch(3, &[Status::Ok])),
        false,
    )
    .await;
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
