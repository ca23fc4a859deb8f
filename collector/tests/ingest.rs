//! Ingest through a real Mosquitto: duplicates stored once, bad messages counted by reason and
//! dropped, the retained ack watermark published, the offline state published at shutdown.

use std::{sync::Arc, time::Duration};

use outpost_collector::{
    ingest::{self, IngestEvent, IngestSettings},
    metrics::{Metrics, RejectReason},
    store::{self, ResultQuery},
};
use outpost_shared::{Ack, Presence, PresenceState, decode, topic::COLLECTOR_STATE};
use outpost_tests::{Broker, BrokerKind};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const RECORDS: &str = "outpost/v1/site/plant-leeds/line3-pc/records";
const ACK: &str = "outpost/v1/site/plant-leeds/line3-pc/ack";

fn batch(site: &str, seqs: std::ops::RangeInclusive<u64>) -> Vec<u8> {
    let records: Vec<String> = seqs
        .map(|s| {
            format!(
                r#"{{"seq":{s},"ts":"2026-11-29T10:00:{s:02}Z","type":"result","check":"router","status":"ok","summary":"fine"}}"#
            )
        })
        .collect();
    format!(
        r#"{{"v":1,"site":"{site}","agent":"line3-pc","epoch":7,"records":[{}]}}"#,
        records.join(",")
    )
    .into_bytes()
}

fn client(broker: &Broker, id: &str) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(id, "127.0.0.1", broker.port());
    options.set_max_packet_size(1 << 20, 1 << 20);
    AsyncClient::new(options, 100)
}

/// Polls `eventloop` until a publish on `topic` satisfies `accept`, or 10 s pass.
async fn wait_for(eventloop: &mut EventLoop, topic: &str, accept: impl Fn(&[u8]) -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let event = tokio::select! {
            () = tokio::time::sleep_until(deadline) => return false,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic == topic && accept(&p.payload) => {
                return true;
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn eventually(what: &str, check: impl Fn() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_once_acks_and_counts_bad_messages_on_mosquitto() {
    stores_once_acks_and_counts_bad_messages(Broker::start()).await;
}

/// rumqttd drops a client whose PUBACKs come out of order: refused messages are acknowledged
/// in their turn, behind the batches still being stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_once_acks_and_counts_bad_messages_on_the_embedded_broker() {
    stores_once_acks_and_counts_bad_messages(Broker::start_kind(BrokerKind::Embedded)).await;
}

async fn stores_once_acks_and_counts_bad_messages(broker: Broker) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/outpost.db", dir.path().display());
    let store = store::open(&url).expect("store");
    let metrics = Arc::new(Metrics::new());
    let (events_tx, mut events) = mpsc::channel(100);
    let shutdown = CancellationToken::new();
    let mut settings = IngestSettings::plain("127.0.0.1", broker.port());
    settings.max_payload = 4096;
    let running = ingest::start(
        &settings,
        store.clone(),
        events_tx,
        metrics.clone(),
        shutdown.clone(),
    );

    // The collector announces itself (retained) once connected and subscribed.
    let (watcher, mut watcher_loop) = client(&broker, "watcher");
    watcher
        .subscribe(COLLECTOR_STATE, QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let online = |p: &[u8]| decode::<Presence>(p).is_ok_and(|p| p.state == PresenceState::Online);
    assert!(
        wait_for(&mut watcher_loop, COLLECTOR_STATE, online).await,
        "collector online"
    );

    let (agent, mut agent_loop) = client(&broker, "plant-leeds.line3-pc");
    agent
        .subscribe(ACK, QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let payloads: Vec<(&str, Vec<u8>)> = vec![
        (RECORDS, batch("plant-leeds", 1..=3)),
        (RECORDS, batch("plant-leeds", 1..=3)), // a QoS 1 duplicate / replay
        (RECORDS, batch("plant-york", 10..=11)), // another site's ids on this topic
        (RECORDS, b"\x00\xffgarbage".to_vec()),
        (
            RECORDS,
            batch("plant-leeds", 1..=3)
                .into_iter()
                .chain(vec![b' '; 5000])
                .collect(),
        ),
        (
            RECORDS,
            String::from_utf8(batch("plant-leeds", 4..=4))
                .expect("utf8")
                .replace("\"v\":1", "\"v\":9")
                .into_bytes(),
        ),
        (
            "outpost/v1/site/plant-leeds/line3-pc/state",
            br#"{"v":1,"state":"online"}"#.to_vec(),
        ),
        (RECORDS, batch("plant-leeds", 3..=5)), // overlaps what is stored
    ];
    for (topic, payload) in payloads {
        agent
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .expect("publish");
    }
    let acked_5 = |p: &[u8]| {
        decode::<Ack>(p).is_ok_and(|a| {
            a == Ack {
                v: 1,
                epoch: 7,
                seq: 5,
            }
        })
    };
    assert!(
        wait_for(&mut agent_loop, ACK, acked_5).await,
        "retained ack 7/5"
    );

    eventually("every message handled", || metrics.messages() == 8).await;
    let stored = store.results(&ResultQuery::default()).expect("query");
    let mut seqs: Vec<u64> = stored.iter().map(|r| r.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    eventually("counters", || metrics.records_stored() == 5).await;
    assert_eq!(
        metrics.duplicates(),
        4,
        "3 of the duplicate batch, 1 of the overlap"
    );
    let rejected: Vec<u64> = RejectReason::ALL
        .iter()
        .map(|r| metrics.rejected_count(*r))
        .collect();
    // json, field, version, topic, mismatch, oversize, rate
    assert_eq!(rejected, vec![1, 0, 1, 0, 1, 1, 0]);
    assert_eq!(
        store
            .watermark(
                &"plant-leeds".parse().expect("id"),
                &"line3-pc".parse().expect("id"),
                7
            )
            .expect("read"),
        Some(5)
    );

    // The engine saw each new record exactly once, in order, and the presence.
    let mut new = Vec::new();
    let mut online_seen = false;
    while let Ok(event) = events.try_recv() {
        match event {
            IngestEvent::Records { epoch, records, .. } => {
                assert_eq!(epoch, 7);
                new.extend(records.iter().map(|r| r.seq));
            }
            IngestEvent::Presence { state, .. } => online_seen = state == PresenceState::Online,
            IngestEvent::Birth { .. } => {}
        }
    }
    assert_eq!(new, vec![1, 2, 3, 4, 5]);
    assert!(online_seen);
    assert_eq!(
        metrics.mqtt_connections(),
        1,
        "the broker never dropped the collector"
    );

    // A graceful stop says goodbye: the retained state turns offline.
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), running.join())
        .await
        .expect("ingest stops in time");
    let offline = |p: &[u8]| decode::<Presence>(p).is_ok_and(|p| p.state == PresenceState::Offline);
    assert!(
        wait_for(&mut watcher_loop, COLLECTOR_STATE, offline).await,
        "collector offline"
    );
}

/// Starts ingest (its events drained) and waits until it is connected.
async fn start_connected(
    settings: &IngestSettings,
    store: Arc<dyn store::Store>,
) -> (Arc<Metrics>, CancellationToken, ingest::Ingest) {
    let metrics = Arc::new(Metrics::new());
    let shutdown = CancellationToken::new();
    let (events_tx, mut events) = mpsc::channel(1000);
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let running = ingest::start(
        settings,
        store,
        events_tx,
        metrics.clone(),
        shutdown.clone(),
    );
    eventually("the collector connected", || {
        metrics.mqtt_connections() == 1
    })
    .await;
    (metrics, shutdown, running)
}

/// A live fleet sends one record per message. A burst of them from many agents is stored
/// and every message acknowledged to the broker: after a reconnect of the collector's
/// persistent session the broker has nothing to deliver again. (With rumqttc's default of
/// 100 of its own publishes in flight, the ack watermarks of many agents blocked the client's
/// queue and most PUBACKs were dropped.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_one_record_messages_is_acknowledged_in_full() {
    const AGENTS: u64 = 400;
    const EACH: u64 = 100;
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/outpost.db", dir.path().display());
    let store = store::open(&url).expect("store");
    let settings = IngestSettings::plain("127.0.0.1", broker.port());
    let (metrics, shutdown, running) = start_connected(&settings, store.clone()).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // subscribed

    let mut options = MqttOptions::new("fleet", "127.0.0.1", broker.port());
    options.set_inflight(1000);
    let (fleet, mut fleet_loop) = AsyncClient::new(options, 20_000);
    let pump = tokio::spawn(async move { while fleet_loop.poll().await.is_ok() {} });
    for seq in 1..=EACH {
        for agent in 0..AGENTS {
            let payload = format!(
                r#"{{"v":1,"site":"plant-leeds","agent":"pc-{agent}","epoch":7,"records":[{{"seq":{seq},"ts":"2026-11-29T10:00:00Z","type":"result","check":"router","status":"ok","summary":"fine"}}]}}"#
            );
            fleet
                .publish(
                    format!("outpost/v1/site/plant-leeds/pc-{agent}/records"),
                    QoS::AtLeastOnce,
                    false,
                    payload,
                )
                .await
                .expect("publish");
        }
    }
    let total = AGENTS * EACH;
    eventually("the burst stored", || metrics.records_stored() == total).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), running.join())
        .await
        .expect("ingest stops in time");

    // The same persistent session again: anything not acknowledged is delivered again now.
    let (again, shutdown, running) = start_connected(&settings, store).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        (again.messages(), again.duplicates()),
        (0, 0),
        "messages delivered again after the reconnect, duplicates among them"
    );
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), running.join()).await;
    pump.abort();
}
