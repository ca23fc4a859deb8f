//! The per-site limit through a real Mosquitto: a site over its share is dropped and counted
//! as `rate`, while another site's records in the same moment are all stored.

use std::{sync::Arc, time::Duration};

use outpost_collector::{
    ingest::{self, IngestSettings},
    metrics::{Metrics, RejectReason},
    store::{self, ResultQuery},
};
use outpost_tests::Broker;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One batch of `n` results from `site`, seqs from `from`.
fn batch(site: &str, from: u64, n: u64) -> Vec<u8> {
    let records: Vec<String> = (from..from + n)
        .map(|s| {
            format!(
                r#"{{"seq":{s},"ts":"2026-11-29T10:00:00Z","type":"result","check":"router","status":"ok","summary":"fine"}}"#
            )
        })
        .collect();
    format!(
        r#"{{"v":1,"site":"{site}","agent":"pc","epoch":1,"records":[{}]}}"#,
        records.join(",")
    )
    .into_bytes()
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
async fn a_noisy_site_is_limited_and_the_others_are_not() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        store::open(&format!("sqlite://{}/outpost.db", dir.path().display())).expect("store");
    let metrics = Arc::new(Metrics::new());
    let (events_tx, mut events) = mpsc::channel(10_000);
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let shutdown = CancellationToken::new();
    let mut settings = IngestSettings::plain("127.0.0.1", broker.port());
    // One record a second with a burst of 20: the noisy site gets ~20 of its 200 through.
    settings.site_rate = 1;
    settings.site_burst = 20;
    let running = ingest::start(
        &settings,
        store.clone(),
        events_tx,
        metrics.clone(),
        shutdown.clone(),
    );
    eventually("ingest ready", || {
        metrics
            .mqtt_ready
            .load(std::sync::atomic::Ordering::Relaxed)
    })
    .await;

    let (client, mut eventloop) = AsyncClient::new(
        MqttOptions::new("flooder", "127.0.0.1", broker.port()),
        1000,
    );
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    // 200 single-record batches from the noisy site, interleaved with 10 from a quiet one.
    for i in 0..200u64 {
        let topic = "outpost/v1/site/noisy/pc/records";
        client
            .publish(topic, QoS::AtLeastOnce, false, batch("noisy", i + 1, 1))
            .await
            .expect("queue");
        if i % 20 == 0 {
            let topic = "outpost/v1/site/quiet/pc/records";
            client
                .publish(
                    topic,
                    QoS::AtLeastOnce,
                    false,
                    batch("quiet", i / 20 + 1, 1),
                )
                .await
                .expect("queue");
        }
    }
    eventually("every message stored or limited", || {
        metrics.records_stored() + metrics.rejected_count(RejectReason::Rate) == 210
    })
    .await;
    let count = |site: &str| {
        let query = ResultQuery {
            site: Some(site.parse().expect("id")),
            ..ResultQuery::default()
        };
        store.results(&query).expect("query").len() as u64
    };
    let limited = metrics.rejected_count(RejectReason::Rate);
    let noisy = count("noisy");
    // The burst, plus at most a few seconds' worth of rate while the test published.
    assert!((20..=25).contains(&noisy), "noisy site stored {noisy}");
    assert_eq!(
        noisy + limited,
        200,
        "every noisy message stored or counted"
    );
    assert_eq!(count("quiet"), 10, "the quiet site lost nothing");
    assert!(metrics.render().contains(&format!(
        "outpost_collector_messages_rejected_total{{reason=\"rate\"}} {limited}\n"
    )));

    shutdown.cancel();
    running.join().await;
}
