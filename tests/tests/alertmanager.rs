//! The Alertmanager path against Debian's real `prometheus-alertmanager`: an escalation fires
//! an alert carrying the dedup key, Alertmanager routes it to a receiver, and the resolve ends it.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use outpost_shared::Status;
use outpost_tests::{
    Broker, CollectorProcess, FakeAgent, Receiver, fake_agent::check, free_port, wait_for_port,
};

const BINARY: &str = "/usr/bin/prometheus-alertmanager";

struct Alertmanager {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    fn start(receiver_url: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = format!(
            "route:\n  receiver: hook\n  group_by: ['dedup_key']\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      - url: {receiver_url}\n        send_resolved: true\n"
        );
        let path = dir.path().join("alertmanager.yml");
        std::fs::write(&path, config).expect("writing alertmanager.yml");
        let port = free_port();
        let child = Command::new(BINARY)
            .arg(format!("--config.file={}", path.display()))
            .arg(format!("--storage.path={}", dir.path().display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting prometheus-alertmanager");
        assert!(
            wait_for_port(port, Duration::from_secs(20)),
            "alertmanager did not listen"
        );
        Self {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_fire_and_resolve_in_alertmanager() {
    if !std::path::Path::new(BINARY).exists() {
        eprintln!("SKIPPED: {BINARY} is not installed (apt-get install prometheus-alertmanager)");
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let broker = Broker::start();
    let hook = Receiver::start().await;
    let am = Alertmanager::start(&hook.url());
    let config = format!(
        "[mqtt]\nurl = \"{}\"\n[store]\nurl = \"sqlite://{{dir}}/outpost.db\"\n[http]\nlisten = \"{{http}}\"\n\
         [[notifier]]\nkind = \"alertmanager\"\nurl = \"http://127.0.0.1:{}\"\n",
        broker.url(),
        am.port
    );
    let collector = CollectorProcess::start(&config);
    let agent = FakeAgent::connect(broker.port(), "plant-york", "gate-pc", 7).await;
    agent.online().await;
    agent.birth(vec![check("router", 1, 1, 0)]).await;
    agent.results("router", 1, &[Status::Fail]).await;

    // Alertmanager holds the alert with our labels and routes it to its receiver.
    let http = reqwest::Client::new();
    let alerts_url = format!("http://127.0.0.1:{}/api/v2/alerts", am.port);
    let mut alerts = serde_json::Value::Null;
    for _ in 0..100 {
        alerts = http
            .get(&alerts_url)
            .send()
            .await
            .expect("alertmanager answers")
            .json()
            .await
            .expect("JSON");
        if alerts.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let alert = &alerts[0];
    assert_eq!(
        alert["labels"]["alertname"],
        "OutpostEscalation",
        "{alerts} {}",
        collector.log()
    );
    assert_eq!(alert["labels"]["site"], "plant-york");
    assert_eq!(
        alert["labels"]["dedup_key"],
        "outpost:plant-york:gate-pc:router:1"
    );
    assert_eq!(alert["status"]["state"], "active");
    let recent = alert["annotations"]["recent"].as_str().unwrap_or_default();
    assert!(
        recent.contains(" fail: "),
        "the failing result is in the alert's recent annotation: {alert}"
    );
    assert!(
        hook.wait_until(Duration::from_secs(20), |b| b
            .iter()
            .any(|v| v["status"] == "firing"))
            .await,
        "alertmanager routed the firing alert"
    );

    // Recovery ends the alert (endsAt), and Alertmanager says so to its receiver.
    agent.results("router", 2, &[Status::Ok]).await;
    assert!(
        hook.wait_until(Duration::from_secs(20), |b| b
            .iter()
            .any(|v| v["status"] == "resolved"))
            .await,
        "alertmanager routed the resolve: {:?}",
        hook.bodies()
    );
    let resolved = hook
        .bodies()
        .into_iter()
        .find(|v| v["status"] == "resolved")
        .expect("resolved");
    assert_eq!(
        resolved["alerts"][0]["labels"]["dedup_key"],
        "outpost:plant-york:gate-pc:router:1"
    );
    let firing = hook
        .bodies()
        .iter()
        .filter(|v| v["status"] == "firing")
        .count();
    assert_eq!(firing, 1, "one firing notification for one escalation");
}
