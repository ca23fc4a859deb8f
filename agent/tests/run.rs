//! `outpost-agent run` as a process: it publishes through a real broker, stops cleanly on
//! SIGTERM (saying offline), and its seq goes on rising after a restart.

use std::{
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
};

use outpost_shared::PresenceState;
use outpost_tests::Broker;

mod support;
use support::{Seen, collector, wait_for};

/// The agent process, killed on drop if the test fails before it stopped.
struct Agent(Option<Child>);

impl Agent {
    fn start(config: &std::path::Path) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_outpost-agent"))
            .args(["run", "--log-format", "json", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the agent starts");
        Self(Some(child))
    }

    /// SIGTERM, then the exit code and stderr.
    fn terminate(&mut self) -> (Option<i32>, String) {
        let child = self.0.take().expect("running");
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let output = child.wait_with_output().expect("the agent exits");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_publishes_stops_on_sigterm_and_continues_its_seq() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "site = \"plant-leeds\"\nagent = \"line3-pc\"\n[mqtt]\nurl = \"{}\"\n[outbox]\ndir = \"{}\"\n\
             [[check]]\nid = \"host\"\nkind = \"uptime\"\ntitle = \"This computer\"\ninterval = \"200ms\"\n",
            broker.url(),
            dir.path().join("outbox").display()
        ),
    )
    .expect("write config");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let collector = collector(broker.port(), Arc::clone(&seen));

    let mut agent = Agent::start(&config);
    let acked = || seen.lock().expect("test lock").acked;
    wait_for("5 acknowledged records", 20, || acked() >= 5).await;
    let (code, logs) = agent.terminate();
    assert_eq!(code, Some(0), "{logs}");
    assert!(logs.contains("connected to the broker"), "{logs}");
    wait_for("the retained offline state", 10, || {
        seen.lock().expect("test lock").state == Some(PresenceState::Offline)
    })
    .await;
    let first_run = seen.lock().expect("test lock").seqs.clone();
    let first_last = *first_run.last().expect("records");
    let epoch = seen
        .lock()
        .expect("test lock")
        .birth
        .as_ref()
        .expect("birth")
        .epoch;

    let mut agent = Agent::start(&config);
    wait_for("records of the second run", 20, || {
        acked() >= first_last + 3
    })
    .await;
    let (code, logs) = agent.terminate();
    assert_eq!(code, Some(0), "{logs}");
    let seen = seen.lock().expect("test lock");
    assert_eq!(
        seen.birth.as_ref().map(|b| b.epoch),
        Some(epoch),
        "same outbox, same epoch"
    );
    let all: Vec<u64> = seen.seqs.iter().copied().collect();
    assert_eq!(
        all,
        (1..=all.len() as u64).collect::<Vec<_>>(),
        "seq rises by one across the restart"
    );
    collector.abort();
}
