//! Shared by the security tests: the TLS plant, payloads, and reading the collector's API.

use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use outpost_tests::{
    CollectorProcess, Receiver,
    tls::{self, COLLECTOR_USER, Identity, TlsBroker},
};
use rumqttc::{AsyncClient, Event, EventLoop, Packet};

/// A record batch of `n` results of check `router`, seqs from `from`, as `site`/`agent` say.
pub fn batch(site: &str, agent: &str, from: u64, n: u64) -> Vec<u8> {
    let records: Vec<String> = (from..from + n)
        .map(|seq| {
            format!(
                r#"{{"seq":{seq},"ts":"2026-11-29T10:00:00Z","type":"result","check":"router","status":"ok","summary":"The router answers."}}"#
            )
        })
        .collect();
    format!(
        r#"{{"v":1,"site":"{site}","agent":"{agent}","epoch":1,"records":[{}]}}"#,
        records.join(",")
    )
    .into_bytes()
}

pub fn records_topic(site: &str, agent: &str) -> String {
    format!("outpost/v1/site/{site}/{agent}/records")
}

/// A copy of `secret` readable by everyone, to see the warning at start.
pub fn world_readable_copy(secret: &Path, to: PathBuf) -> PathBuf {
    std::fs::copy(secret, &to).expect("copying a secret");
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    to
}

/// The TLS broker, a webhook receiver and the real collector on mqtts:// with its certificate
/// and a world-readable copy of its password file. `ingest` is extra `[ingest]` lines.
pub async fn plant(ingest: &str) -> Option<(TlsBroker, Receiver, CollectorProcess)> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let broker = TlsBroker::start()?;
    let hook = Receiver::start().await;
    let (_, password) = broker.credential_files(COLLECTOR_USER);
    let open_copy = world_readable_copy(&password, broker.dir().join("collector-password-0644"));
    let mqtt = broker.mqtt_table(COLLECTOR_USER).replace(
        &password.display().to_string(),
        &open_copy.display().to_string(),
    );
    let config = format!(
        "{mqtt}[store]\nurl = \"sqlite://{{dir}}/outpost.db\"\n[http]\nlisten = \"{{http}}\"\n\
         [ingest]\n{ingest}\n[escalation]\nreminder = \"0s\"\n\
         [[notifier]]\nkind = \"webhook\"\nurl = \"{}\"\n",
        hook.url()
    );
    let collector = CollectorProcess::start(&config);
    Some((broker, hook, collector))
}

/// `GET /api/v1/results?site=SITE` (every agent).
pub async fn results(collector: &CollectorProcess, site: &str) -> Vec<serde_json::Value> {
    reqwest::get(format!(
        "{}/api/v1/results?site={site}&limit=10000",
        collector.url()
    ))
    .await
    .expect("the collector answers")
    .json()
    .await
    .expect("results are JSON")
}

/// Waits (up to `secs`) until `site`/`agent` has at least `n` stored results.
pub async fn wait_stored(
    collector: &CollectorProcess,
    site: &str,
    agent: &str,
    n: usize,
    secs: u64,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let got = results(collector, site)
            .await
            .iter()
            .filter(|r| r["agent"] == agent)
            .count();
        if got >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{site}/{agent}: {got} of {n} results stored within {secs} s\n{}",
            collector.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The collector's count of messages rejected for `reason`.
pub async fn rejected(collector: &CollectorProcess, reason: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", collector.url()))
        .await
        .expect("the collector answers /metrics")
        .text()
        .await
        .expect("metrics text");
    let name = format!("outpost_collector_messages_rejected_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
}

/// Keeps `eventloop` polled; every publish it receives goes to the returned list.
pub fn drive(mut eventloop: EventLoop) -> Arc<std::sync::Mutex<Vec<String>>> {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => sink
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(p.topic.clone()),
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    seen
}

pub async fn site_client(broker: &TlsBroker, site: &str, id: &str) -> AsyncClient {
    let opts = tls::options(broker, broker.port(), id, &Identity::of(broker, site));
    let (client, eventloop) = tls::connect(opts)
        .await
        .unwrap_or_else(|e| panic!("{site} connects: {e}\n{}", broker.log()));
    drive(eventloop);
    client
}

/// An agent config for `site` on the TLS broker, with a world-readable password file copy.
pub fn agent_config(broker: &TlsBroker, site: &str, agent: &str, checks: &str) -> String {
    let (_, password) = broker.credential_files(site);
    let open_copy = world_readable_copy(&password, broker.dir().join(format!("{site}-pw-0644")));
    let mqtt = broker.mqtt_table(site).replace(
        &password.display().to_string(),
        &open_copy.display().to_string(),
    );
    format!(
        "site = \"{site}\"\nagent = \"{agent}\"\n{mqtt}[local]\nlisten = \"{{local}}\"\n\
         [outbox]\ndir = \"{{outbox}}\"\n{checks}"
    )
}
