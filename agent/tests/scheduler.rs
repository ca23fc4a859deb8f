//! The scheduler: checks run at their interval, never more at once than the bound, and a
//! report asks for a run right away.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use outpost_agent::{
    checks::{Check, CheckCommon, CheckFuture, Outcome, RunContext},
    config::Config,
    live::Live,
    scheduler::Scheduler,
};
use outpost_shared::Status;
use tokio_util::sync::CancellationToken;

/// Counts how many runs overlap.
struct Busy {
    common: CheckCommon,
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    runs: Arc<AtomicUsize>,
}

impl Check for Busy {
    fn common(&self) -> &CheckCommon {
        &self.common
    }
    fn run<'a>(&'a self, _ctx: &'a RunContext) -> CheckFuture<'a> {
        Box::pin(async move {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            // Counted down even if the run is cut off.
            let _running = Running(&self.running);
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.runs.fetch_add(1, Ordering::SeqCst);
            Outcome::new(Status::Ok, "busy")
        })
    }
}

struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn config(checks: &str) -> Config {
    let text =
        format!("site = \"s\"\nagent = \"a\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:1\"\n{checks}");
    Config::parse(Path::new("a.toml"), &text).expect("valid")
}

fn context(live: &Live) -> RunContext {
    RunContext {
        live: live.clone(),
        timezone: jiff::tz::TimeZone::UTC,
        started_at: live.started_at(),
        state_dir: None,
    }
}

#[tokio::test]
async fn at_most_the_bound_run_at_once() {
    let base = config("[[check]]\nid = \"x\"\nkind = \"uptime\"\ninterval = \"1s\"\n");
    let (running, peak, runs) = (
        Arc::default(),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let checks: Vec<Arc<dyn Check>> = (0..20)
        .map(|n| {
            let mut common = base.checks[0].common().clone();
            common.id = format!("busy-{n}").parse().expect("valid id");
            Arc::new(Busy {
                common,
                running: Arc::clone(&running),
                peak: Arc::clone(&peak),
                runs: Arc::clone(&runs),
            }) as Arc<dyn Check>
        })
        .collect();
    let live = Live::new(checks.iter().map(|c| c.spec()).collect(), None);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(Scheduler::new(checks, context(&live), 3).run(cancel.clone()));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("stops promptly")
        .expect("no panic");
    assert!(
        peak.load(Ordering::SeqCst) <= 3,
        "peak {}",
        peak.load(Ordering::SeqCst)
    );
    assert_eq!(peak.load(Ordering::SeqCst), 3, "the bound is used");
    assert!(
        runs.load(Ordering::SeqCst) >= 20,
        "every check ran: {}",
        runs.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn a_heartbeat_report_runs_the_check_at_once() {
    let config = config(
        "[[check]]\nid = \"job\"\nkind = \"heartbeat\"\nperiod = \"1d\"\ninterval = \"1h\"\n",
    );
    let live = Live::new(config.catalogue(), None);
    let cancel = CancellationToken::new();
    let task =
        tokio::spawn(Scheduler::new(config.checks.clone(), context(&live), 8).run(cancel.clone()));
    let id = config.checks[0].common().id.clone();
    // The first run comes within the initial spread (at most 5 s); wait for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while live.result(&id).is_none() {
        assert!(tokio::time::Instant::now() < deadline, "first run");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    live.report_heartbeat("job", Status::Fail, Some("tape missing".into()))
        .expect("report");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while live.result(&id).is_none_or(|r| r.status != Status::Fail) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the report did not trigger a run"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
    task.await.expect("no panic");
}
