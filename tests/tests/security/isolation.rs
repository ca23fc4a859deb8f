//! What one site can do to another: write or read its topics, claim its name.

use std::time::Duration;

use outpost_tests::{
    Broker, CollectorProcess,
    tls::{self, Identity},
};
use rumqttc::{AsyncClient, MqttOptions, QoS};

use super::support::{
    batch, drive, plant, records_topic, rejected, results, site_client, wait_stored,
};

#[tokio::test(flavor = "multi_thread")]
async fn a_site_cannot_write_or_read_another_sites_topics() {
    let Some((broker, _hook, collector)) = plant("").await else {
        return;
    };
    // Site B sends 3 results of its own; they are stored and acked (retained).
    let b = site_client(&broker, "site-b", "site-b.pc").await;
    b.publish(
        records_topic("site-b", "pc"),
        QoS::AtLeastOnce,
        false,
        batch("site-b", "pc", 1, 3),
    )
    .await
    .expect("queue");
    wait_stored(&collector, "site-b", "pc", 3, 20).await;

    // Site A listens to everything it can, and to its own ack.
    let opts = tls::options(
        &broker,
        broker.port(),
        "site-a.spy",
        &Identity::of(&broker, "site-a"),
    );
    let (a, eventloop) = tls::connect(opts).await.expect("site A connects");
    let heard = drive(eventloop);
    for filter in [
        "#",
        "outpost/v1/site/site-b/#",
        "outpost/v1/site/+/+/records",
        "outpost/v1/site/site-a/+/ack",
    ] {
        a.subscribe(filter, QoS::AtLeastOnce).await.expect("queue");
    }
    // Site A writes on site B's topics, as site B (a forged batch and a forged birth)...
    a.publish(
        records_topic("site-b", "pc"),
        QoS::AtLeastOnce,
        false,
        batch("site-b", "pc", 100, 5),
    )
    .await
    .expect("queue");
    a.publish(
        records_topic("site-b", "intruder"),
        QoS::AtLeastOnce,
        false,
        batch("site-b", "intruder", 1, 5),
    )
    .await
    .expect("queue");
    // ... then one batch on its own topic: once that is stored, the forged ones had their chance.
    a.publish(
        records_topic("site-a", "marker"),
        QoS::AtLeastOnce,
        false,
        batch("site-a", "marker", 1, 1),
    )
    .await
    .expect("queue");
    wait_stored(&collector, "site-a", "marker", 1, 20).await;
    // B publishes once more, so a working `#` subscription would have something of B's to see.
    b.publish(
        records_topic("site-b", "pc"),
        QoS::AtLeastOnce,
        false,
        batch("site-b", "pc", 4, 1),
    )
    .await
    .expect("queue");
    wait_stored(&collector, "site-b", "pc", 4, 20).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let stored_b = results(&collector, "site-b").await;
    let mut seqs: Vec<u64> = stored_b.iter().filter_map(|r| r["seq"].as_u64()).collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        vec![1, 2, 3, 4],
        "only site B's own records: {stored_b:?}"
    );
    assert!(stored_b.iter().all(|r| r["agent"] == "pc"));
    let heard = heard
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    assert!(
        heard
            .iter()
            .any(|t| t == "outpost/v1/site/site-a/marker/ack"),
        "site A reads its own ack: {heard:?}"
    );
    assert!(
        heard.iter().all(|t| !t.contains("site-b")),
        "site A read site B's traffic: {heard:?}"
    );
}

/// Publishes, on site A's own topic, batches claiming another site and another agent, then a
/// marker; checks the collector counted them as `mismatch` and stored none of them.
async fn claims_are_rejected(
    client: &AsyncClient,
    collector: &CollectorProcess,
    site: &str,
    other: &str,
) {
    let before = rejected(collector, "mismatch").await;
    let own = records_topic(site, "pc");
    client
        .publish(&own, QoS::AtLeastOnce, false, batch(other, "pc", 1, 5))
        .await
        .expect("queue");
    client
        .publish(&own, QoS::AtLeastOnce, false, batch(site, "not-pc", 1, 5))
        .await
        .expect("queue");
    client
        .publish(
            records_topic(site, "marker"),
            QoS::AtLeastOnce,
            false,
            batch(site, "marker", 1, 1),
        )
        .await
        .expect("queue");
    wait_stored(collector, site, "marker", 1, 20).await;
    assert_eq!(rejected(collector, "mismatch").await, before + 2);
    assert!(
        results(collector, other).await.is_empty(),
        "nothing stored for {other}"
    );
    let own_rows = results(collector, site).await;
    assert!(
        own_rows.iter().all(|r| r["agent"] == "marker"),
        "only the marker: {own_rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_claiming_another_site_is_rejected_over_tls() {
    let Some((broker, _hook, collector)) = plant("").await else {
        return;
    };
    let a = site_client(&broker, "site-a", "site-a.pc").await;
    claims_are_rejected(&a, &collector, "site-a", "site-b").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_claiming_another_site_is_rejected_on_a_plain_broker() {
    // Without ACLs (a dev broker) the collector's own check is the only guard.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let broker = Broker::start();
    let config = format!(
        "[mqtt]\nurl = \"{}\"\n[store]\nurl = \"sqlite://{{dir}}/outpost.db\"\n[http]\nlisten = \"{{http}}\"\n",
        broker.url()
    );
    let collector = CollectorProcess::start(&config);
    let (client, eventloop) = AsyncClient::new(
        MqttOptions::new("plant-a.pc", "127.0.0.1", broker.port()),
        100,
    );
    drive(eventloop);
    claims_are_rejected(&client, &collector, "plant-a", "plant-b").await;
}
