//! Each check kind against real local targets: TCP listeners, an HTTP server, folders of
//! files with chosen ages, ICMP to loopback. Plus the guard: timeouts and panics.
#![allow(
    clippy::float_cmp,
    reason = "the metrics compared are exact small integers"
)]

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, SystemTime},
};

use outpost_agent::{
    checks::{Check, CheckCommon, CheckFuture, Outcome, RunContext, run_guarded},
    config::Config,
    scheduler::live_without_outbox,
};
use outpost_shared::Status;

/// Builds the one check of a config whose `[[check]]` body is `check`.
fn check(body: &str) -> Arc<dyn Check> {
    let text = format!(
        "site = \"test-site\"\nagent = \"test-agent\"\ntimezone = \"Europe/London\"\n\
         [mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\n[[check]]\n{body}\n"
    );
    let config = Config::parse(Path::new("test.toml"), &text).expect("the test config is valid");
    Arc::clone(&config.checks[0])
}

fn ctx(checks: &[Arc<dyn Check>]) -> RunContext {
    let live = live_without_outbox(checks);
    RunContext {
        started_at: live.started_at(),
        live,
        timezone: jiff::tz::TimeZone::UTC,
        state_dir: None,
    }
}

async fn run(body: &str) -> Outcome {
    let c = check(body);
    let ctx = ctx(std::slice::from_ref(&c));
    run_guarded(c, ctx).await
}

#[tokio::test]
async fn tcp_open_port_is_ok_and_closed_port_fails() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let ok = run(&format!(
        "id = \"plc\"\nkind = \"tcp\"\ntitle = \"The PLC\"\ntarget = \"127.0.0.1:{port}\""
    ))
    .await;
    assert_eq!(ok.status, Status::Ok, "{}", ok.summary);
    assert!(ok.metrics.contains_key("connect_ms"));
    drop(listener);
    let closed = run(&format!(
        "id = \"plc\"\nkind = \"tcp\"\ntitle = \"The PLC\"\ntarget = \"127.0.0.1:{port}\""
    ))
    .await;
    assert_eq!(closed.status, Status::Fail);
    assert!(closed.summary.contains("refused"), "{}", closed.summary);
}

async fn web_server() -> u16 {
    use axum::{Router, http::StatusCode, response::Redirect, routing::get};
    let app = Router::new()
        .route("/", get(|| async { "Printer ready" }))
        .route(
            "/broken",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "oops") }),
        )
        .route("/loop", get(|| async { Redirect::temporary("/loop") }))
        .route("/moved", get(|| async { Redirect::temporary("/") }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

#[tokio::test]
async fn http_status_body_redirects_and_timeouts() {
    let port = web_server().await;
    let base = format!("http://127.0.0.1:{port}");
    let http = |path: &str, extra: &str| {
        format!(
            "id = \"printer\"\nkind = \"http\"\ntitle = \"The printer page\"\nurl = \"{base}{path}\"\ntimeout = \"1s\"\ninterval = \"5s\"\n{extra}"
        )
    };
    let cases = [
        (http("/", ""), Status::Ok, "answers normally"),
        (
            http("/", "expect_body = \"ready\""),
            Status::Ok,
            "answers normally",
        ),
        (
            http("/", "expect_body = \"jammed\""),
            Status::Fail,
            "does not show \"jammed\"",
        ),
        (http("/moved", ""), Status::Ok, "answers normally"),
        (http("/broken", ""), Status::Fail, "HTTP 500"),
        (
            http("/broken", "expect_status = 500"),
            Status::Ok,
            "answers normally",
        ),
        (http("/loop", ""), Status::Fail, "more than 5 redirects"),
        (http("/slow", ""), Status::Fail, "did not answer in time"),
    ];
    for (body, want, text) in cases {
        let got = run(&body).await;
        assert_eq!(got.status, want, "{body}: {}", got.summary);
        assert!(got.summary.contains(text), "{body}: {}", got.summary);
    }
    let refused = run(&format!(
        "id = \"x\"\nkind = \"http\"\nurl = \"http://127.0.0.1:{}/\"",
        outpost_tests::free_port()
    ))
    .await;
    assert_eq!(refused.status, Status::Fail);
    assert!(refused.summary.contains("refused"), "{}", refused.summary);
}

fn write_file(dir: &Path, name: &str, size: usize, age: Duration) {
    let path = dir.join(name);
    std::fs::write(&path, vec![7u8; size]).expect("write");
    let file = std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("open");
    file.set_modified(SystemTime::now() - age)
        .expect("set mtime");
}

#[tokio::test]
async fn backup_age_size_count_and_missing_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    let hours = |h: u64| Duration::from_secs(h * 3600);
    let body = |extra: &str| {
        format!(
            "id = \"backup\"\nkind = \"backup\"\ntitle = \"Nightly backup\"\npath = \"{}\"\npattern = \"*.tar.gz\"\nmax_age = \"24h\"\n{extra}",
            dir.path().display()
        )
    };
    let none = run(&body("")).await;
    assert_eq!(none.status, Status::Fail);
    assert!(none.summary.contains("No backup file"), "{}", none.summary);

    write_file(dir.path(), "old.tar.gz", 2000, hours(50));
    write_file(dir.path(), "notes.txt", 10, hours(1));
    let stale = run(&body("")).await;
    assert_eq!(stale.status, Status::Fail);
    assert!(
        stale
            .summary
            .contains("finished 50 hours ago; it should run at least every 24 hours"),
        "{}",
        stale.summary
    );

    write_file(dir.path(), "new.tar.gz", 500, hours(2));
    let fresh = run(&body("")).await;
    assert_eq!(fresh.status, Status::Ok, "{}", fresh.summary);
    assert_eq!(fresh.metrics["count"], 2.0);
    assert_eq!(fresh.metrics["size_bytes"], 500.0);
    let age = fresh.metrics["age_s"];
    assert!((7190.0..7300.0).contains(&age), "{age}");

    let small = run(&body("min_size = \"1KB\"")).await;
    assert_eq!(small.status, Status::Fail);
    assert!(small.summary.contains("is only 500B"), "{}", small.summary);
    let few = run(&body("min_count = 3")).await;
    assert_eq!(few.status, Status::Fail);

    let missing = run(&format!(
        "id = \"b\"\nkind = \"backup\"\npath = \"{}/gone\"\nmax_age = \"1d\"",
        dir.path().display()
    ))
    .await;
    assert_eq!(missing.status, Status::Fail);
    assert!(
        missing.summary.contains("is missing"),
        "{}",
        missing.summary
    );
}

#[tokio::test]
async fn ping_loopback_v4_and_v6() {
    for target in ["127.0.0.1", "::1"] {
        let got = run(&format!("id = \"router\"\nkind = \"ping\"\ntitle = \"The router\"\ntarget = \"{target}\"\ncount = 3")).await;
        if got.summary.contains("CAP_NET_RAW") {
            // Not root here: the check must say exactly what to do.
            assert_eq!(got.status, Status::Unknown);
            continue;
        }
        if target == "::1" && got.status != Status::Ok && !Path::new("/proc/net/if_inet6").exists()
        {
            eprintln!("no IPv6 on this machine; skipping ::1");
            continue;
        }
        assert_eq!(got.status, Status::Ok, "{target}: {}", got.summary);
        assert_eq!(got.metrics["sent"], 3.0);
        assert_eq!(got.metrics["received"], 3.0);
        assert_eq!(got.metrics["loss_pct"], 0.0);
        assert!(got.metrics.contains_key("jitter_ms"));
        assert!(
            got.summary.contains("answered all 3 pings"),
            "{}",
            got.summary
        );
    }
    // A failing ping over a dead link needs a network namespace: the fault suite covers it.
}

#[tokio::test]
async fn uptime_and_resources_report_the_host() {
    let up = run("id = \"host\"\nkind = \"uptime\"\ntitle = \"This computer\"").await;
    assert_eq!(up.status, Status::Ok, "{}", up.summary);
    assert!(up.metrics["uptime_s"] > 0.0);
    let res = run("id = \"res\"\nkind = \"resources\"\ntitle = \"This computer\"\ndisk_path = [\"/\"]\nwarn_disk_pct = 100\nfail_disk_pct = 100\nwarn_load_per_cpu = 1000\nwarn_memory_pct = 100").await;
    assert_eq!(res.status, Status::Ok, "{}", res.summary);
    assert!(res.metrics.contains_key("disk_pct:/"));
    assert!(res.metrics.contains_key("memory_pct"));
    let full = run("id = \"res\"\nkind = \"resources\"\ntitle = \"This computer\"\nwarn_disk_pct = 0\nfail_disk_pct = 0.0001").await;
    assert_eq!(full.status, Status::Fail, "{}", full.summary);
    assert!(full.summary.contains("full"), "{}", full.summary);
}

/// A check that misbehaves on purpose.
struct Misbehaving {
    common: CheckCommon,
    panic: bool,
}

impl Check for Misbehaving {
    fn common(&self) -> &CheckCommon {
        &self.common
    }
    fn run<'a>(&'a self, _ctx: &'a RunContext) -> CheckFuture<'a> {
        Box::pin(async move {
            assert!(!self.panic, "boom");
            tokio::time::sleep(Duration::from_secs(60)).await;
            Outcome::new(Status::Ok, "never")
        })
    }
}

#[tokio::test]
async fn slow_and_panicking_checks_are_contained() {
    let base = check("id = \"slow\"\nkind = \"uptime\"\ntimeout = \"200ms\"\ninterval = \"1s\"");
    let mut common = base.common().clone();
    let slow: Arc<dyn Check> = Arc::new(Misbehaving {
        common: common.clone(),
        panic: false,
    });
    common.id = "crashy".parse().expect("valid id");
    let crashy: Arc<dyn Check> = Arc::new(Misbehaving {
        common,
        panic: true,
    });
    let ctx = ctx(&[Arc::clone(&slow), Arc::clone(&crashy)]);
    let started = std::time::Instant::now();
    let got = run_guarded(slow, ctx.clone()).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(got.status, Status::Unknown);
    assert_eq!(
        got.summary,
        "The check took longer than 200ms and was stopped."
    );
    let got = run_guarded(crashy, ctx).await;
    assert_eq!(got.status, Status::Unknown);
    assert!(
        got.summary.contains("crashed") && got.summary.contains("boom"),
        "{}",
        got.summary
    );
}
