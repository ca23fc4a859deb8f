//! Malformed and hostile input on the broker: over a thousand bad payloads generated here. The
//! collector keeps running, stores none of them, and counts each by reason in `/metrics`.

use std::time::Duration;

use outpost_tests::{Broker, CollectorProcess, Receiver};
use rumqttc::{AsyncClient, MqttOptions, QoS};

use super::support::{Store, collector_config, metrics, sample, wait_for};

const BAD_SITE: &str = "plant-hostile";
const BAD_TOPIC: &str = "outpost/v1/site/plant-hostile/pc/records";

/// A valid batch of `n` records for `site`/`agent`.
fn batch(site: &str, agent: &str, v: u32, n: u64) -> String {
    let records: Vec<String> = (1..=n)
        .map(|seq| {
            format!(
                r#"{{"seq":{seq},"ts":"2026-01-01T00:00:0{}Z","type":"result","check":"router","status":"ok","summary":"The router answers.","metrics":{{"loss_pct":0}}}}"#,
                seq % 10
            )
        })
        .collect();
    format!(
        r#"{{"v":{v},"site":"{site}","agent":"{agent}","epoch":7,"records":[{}]}}"#,
        records.join(",")
    )
}

/// One corpus entry: topic, payload, and the reason it must be counted under (`None`: the
/// collector is not subscribed to that topic and never sees it).
type Entry = (String, Vec<u8>, Option<&'static str>);

/// Not JSON (truncated, not UTF-8): the contract says `json`, the collector files some under
/// `field` (see `truncated_and_non_utf8_payloads_count_as_json`).
const NOT_JSON: &str = "json|field";
/// Deeply nested JSON: refused as `json` or `field`, the parser's depth limit decides.
const DEEP: &str = "deep";

fn corpus() -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    let topic = || BAD_TOPIC.to_owned();
    let good = batch(BAD_SITE, "pc", 1, 3);
    // Not JSON at all, at the document root.
    for i in 0..100u32 {
        let payload = match i % 4 {
            0 => Vec::new(),
            1 => format!("hello {i}").into_bytes(),
            2 => vec![0xff, 0xfe, (i % 256) as u8, 0x00],
            _ => format!("{{{i}").into_bytes(),
        };
        out.push((topic(), payload, Some("json")));
    }
    // Truncated valid batches.
    let len = good.len();
    for i in 0..300 {
        let cut = 1 + (i * (len - 2)) / 300;
        out.push((topic(), good.as_bytes()[..cut].to_vec(), Some(NOT_JSON)));
    }
    // Wrong types.
    let wrong = [
        good.replace("\"epoch\":7", "\"epoch\":\"seven\""),
        good.replace("\"seq\":1,", "\"seq\":\"1\","),
        good.replace("\"status\":\"ok\"", "\"status\":5"),
        good.replace("\"status\":\"ok\"", "\"status\":\"fine\""),
        good.replace("\"loss_pct\":0", "\"loss_pct\":\"zero\""),
        good.replace("\"ts\":\"2026-01-01T00:00:01Z\"", "\"ts\":12"),
    ];
    for i in 0..150 {
        out.push((
            topic(),
            wrong[i % wrong.len()].clone().into_bytes(),
            Some("field"),
        ));
    }
    // Huge strings (~2 MB): over the default 1 MiB limit.
    for i in 0..3 {
        let huge = good.replace("The router answers.", &"x".repeat(2_000_000 + i));
        out.push((topic(), huge.into_bytes(), Some("oversize")));
    }
    // Deep nesting: whole payloads of nested arrays and objects, and a metric that is one.
    for i in 0..50 {
        let nest = 1_000 + i * 1_000;
        let payload = match i % 3 {
            0 => format!("{}{}", "[".repeat(nest), "]".repeat(nest)),
            1 => format!("{}1{}", "{\"a\":".repeat(nest), "}".repeat(nest)),
            _ => good.replace(
                "\"loss_pct\":0",
                &format!("\"loss_pct\":{}1{}", "[".repeat(nest), "]".repeat(nest)),
            ),
        };
        out.push((topic(), payload.into_bytes(), Some(DEEP)));
    }
    // Invalid UTF-8 inside strings.
    for i in 0..150u8 {
        let mut payload = good.clone().into_bytes();
        let at = good.find("answers").expect("the summary is in the batch");
        payload[at + usize::from(i % 5)] = 0x80 | (i % 64);
        out.push((topic(), payload, Some(NOT_JSON)));
    }
    // The payload names another site or agent than its topic.
    for i in 0..100 {
        let payload = if i % 2 == 0 {
            batch("plant-york", "pc", 1, 1)
        } else {
            batch(BAD_SITE, "other-pc", 1, 1)
        };
        out.push((topic(), payload.into_bytes(), Some("mismatch")));
    }
    // Another protocol version.
    for i in 0..100u32 {
        let v = [0, 2, 3, 99, 255][i as usize % 5];
        out.push((
            topic(),
            batch(BAD_SITE, "pc", v, 1).into_bytes(),
            Some("version"),
        ));
    }
    // Garbage topics the collector's filters match.
    let long = "a".repeat(70);
    let bad_topics = [
        "outpost/v1/site/BAD/pc/records".to_owned(),
        "outpost/v1/site/plant_x/pc/records".to_owned(),
        "outpost/v1/site//pc/records".to_owned(),
        format!("outpost/v1/site/{long}/pc/state"),
        "outpost/v1/site/-x/pc/birth".to_owned(),
    ];
    for i in 0..100 {
        let t = bad_topics[i % bad_topics.len()].clone();
        out.push((t, good.clone().into_bytes(), Some("topic")));
    }
    // Garbage topics it does not subscribe to: never received, never counted.
    let unseen = [
        "outpost/v1/site/a/b/c/records",
        "outpost/v1/site/plant-hostile/pc/ack",
        "outpost/v1/site/plant-hostile/pc/unknown",
        "outpost/v2/site/plant-hostile/pc/records",
    ];
    for i in 0..50 {
        out.push((
            unseen[i % unseen.len()].to_owned(),
            good.clone().into_bytes(),
            None,
        ));
    }
    out
}

fn publisher(broker: &Broker) -> AsyncClient {
    let mut opts = MqttOptions::new("hostile-publisher", "127.0.0.1", broker.port());
    opts.set_keep_alive(Duration::from_secs(10));
    opts.set_max_packet_size(8 << 20, 8 << 20);
    let (client, mut events) = AsyncClient::new(opts, 64);
    tokio::spawn(async move {
        loop {
            if events.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    client
}

async fn healthy(collector: &CollectorProcess) -> bool {
    reqwest::get(format!("{}/healthz", collector.url()))
        .await
        .is_ok_and(|r| r.status().is_success())
}

const REJECTED: &str = "outpost_collector_messages_rejected_total";

async fn rejected(collector: &CollectorProcess, reason: &str) -> u64 {
    sample(
        &metrics(collector).await,
        &format!("{REJECTED}{{reason=\"{reason}\"}}"),
    )
    .unwrap_or(0)
}

/// Publishes `entries` and waits until the collector has received every one it subscribes to.
async fn flood(collector: &CollectorProcess, client: &AsyncClient, entries: &[Entry]) {
    for (topic, payload, _) in entries {
        client
            .publish(topic.as_str(), QoS::AtLeastOnce, false, payload.clone())
            .await
            .expect("queue a publish");
    }
    let expected = entries.iter().filter(|e| e.2.is_some()).count() as u64;
    let received = "outpost_collector_messages_received_total";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = sample(&metrics(collector).await, received).unwrap_or(0);
        if got >= expected {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the collector received {got} of {expected}: {}",
            collector.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn setup() -> (Broker, Receiver, CollectorProcess) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let broker = Broker::start();
    let hook = Receiver::start().await;
    let collector = CollectorProcess::start(&collector_config(&broker, &hook, "", ""));
    (broker, hook, collector)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_counted_and_never_stored() {
    let (broker, _hook, collector) = setup().await;
    let client = publisher(&broker);
    let entries = corpus();
    assert!(entries.len() >= 1000, "corpus of {}", entries.len());
    flood(&collector, &client, &entries).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    assert!(
        healthy(&collector).await,
        "the collector still answers /healthz"
    );
    let text = metrics(&collector).await;
    let count = |reason: &str| entries.iter().filter(|e| e.2 == Some(reason)).count() as u64;
    let got = |reason: &str| sample(&text, &format!("{REJECTED}{{reason=\"{reason}\"}}"));
    for reason in ["oversize", "version", "mismatch", "topic"] {
        assert_eq!(
            got(reason),
            Some(count(reason)),
            "rejected as {reason}\n{text}"
        );
    }
    // Every malformed payload is counted once, as json or field.
    let malformed = count("json") + count("field") + count(NOT_JSON) + count(DEEP);
    assert_eq!(
        got("json").unwrap_or(0) + got("field").unwrap_or(0),
        malformed,
        "{text}"
    );
    assert!(got("field").unwrap_or(0) >= count("field"), "{text}");
    let store = Store::open(&collector);
    assert_eq!(store.total_rows(), 0, "nothing bad was stored");

    // A valid batch afterwards is stored.
    client
        .publish(
            "outpost/v1/site/plant-leeds/line3-pc/records",
            QoS::AtLeastOnce,
            false,
            batch("plant-leeds", "line3-pc", 1, 2).into_bytes(),
        )
        .await
        .expect("queue the valid batch");
    wait_for(
        "the valid batch in the store",
        20,
        || store.total_rows() == 2,
        || collector.log(),
    )
    .await;
    assert!(healthy(&collector).await, "still healthy");
    let total: u64 = ["json", "field", "version", "topic", "mismatch", "oversize"]
        .iter()
        .map(|r| got(r).unwrap_or(0))
        .sum();
    assert_eq!(
        total,
        entries.iter().filter(|e| e.2.is_some()).count() as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_and_non_utf8_payloads_count_as_json() {
    let (broker, _hook, collector) = setup().await;
    let client = publisher(&broker);
    let entries: Vec<Entry> = corpus()
        .into_iter()
        .filter(|e| e.2 == Some(NOT_JSON) || e.2 == Some("json"))
        .collect();
    flood(&collector, &client, &entries).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        rejected(&collector, "field").await,
        0,
        "not a shape problem"
    );
    assert_eq!(rejected(&collector, "json").await, entries.len() as u64);
}
