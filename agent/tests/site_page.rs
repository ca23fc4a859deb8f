//! The site page as a real HTTP server on 127.0.0.1:0, called with reqwest: the page, the
//! status JSON, metrics and every write, with bad input, tokens and HTML injection. Notes are
//! checked in a real outbox in a temp dir.

use std::{path::Path, sync::Arc, time::Duration};

use outpost_agent::{
    checks::{RunContext, run_guarded},
    config::Config,
    live::Live,
    outbox::OutboxLimits,
    outbox_handle::SharedOutbox,
    site_page::{self, Access, PageState},
};
use outpost_shared::{
    AgentId, EscalationKind, EscalationList, EscalationState, EscalationView, NoteAction,
    NoteRecord, RecordBody, SiteId, Status,
};
use reqwest::{StatusCode, redirect::Policy};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// A running page over a live state with a failing tcp check, a working uptime check, a
/// heartbeat and a checklist. Stops on drop.
struct Page {
    url: String,
    live: Live,
    outbox: SharedOutbox,
    client: reqwest::Client,
    cancel: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Page {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Page {
    async fn start(access: Access) -> Self {
        Self::start_remembering(access, None).await
    }

    /// Like [`Page::start`], the page's notes and planned work kept in `memory` (a restart).
    async fn start_remembering(access: Access, memory: Option<&Path>) -> Self {
        outpost_agent::install_tls_provider();
        let dir = tempfile::tempdir().expect("temp dir");
        // A port that was free a moment ago and is closed now: the tcp check fails for real.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let closed_port = closed.local_addr().expect("addr").port();
        drop(closed);
        // Due in two hours: the checklist is "next due" (ok) whenever the test runs.
        let due = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2))
            .to_zoned(jiff::tz::TimeZone::get("Europe/London").expect("tzdb"))
            .strftime("%H:%M")
            .to_string();
        let text = format!(
            "site = \"plant-leeds\"\nagent = \"line3-pc\"\ntimezone = \"Europe/London\"\n\
             [mqtt]\nurl = \"mqtt://127.0.0.1:1\"\n\
             [[check]]\nid = \"router\"\nkind = \"tcp\"\ntitle = \"Main router\"\n\
             target = \"127.0.0.1:{closed_port}\"\nlocal_window = \"15m\"\n\
             runbook = [\"Look at the router's lights: is the power light on?\", \
             \"Switch the router off, wait 30 seconds, switch it on.\"]\n\
             [[check]]\nid = \"host\"\nkind = \"uptime\"\ntitle = \"This computer\"\n\
             [[check]]\nid = \"backup-job\"\nkind = \"heartbeat\"\ntitle = \"Nightly backup\"\nperiod = \"1d\"\n\
             [[check]]\nid = \"cages\"\nkind = \"checklist\"\ntitle = \"Robot cages locked\"\n\
             due = \"{due}\"\n"
        );
        let config = Config::parse(Path::new("agent.toml"), &text).expect("valid config");
        let outbox = SharedOutbox::open(
            &dir.path().join("outbox"),
            OutboxLimits {
                max_size: 16 << 20,
                max_age: Duration::from_secs(3600),
            },
        )
        .expect("outbox");
        let live = Live::new(config.catalogue(), Some(outbox.clone()));
        let ctx = RunContext {
            live: live.clone(),
            timezone: config.timezone.clone(),
            started_at: live.started_at(),
            state_dir: None,
        };
        for check in &config.checks {
            let outcome = run_guarded(Arc::clone(check), ctx.clone()).await;
            live.publish_result(&check.spec().id, jiff::Timestamp::now(), &outcome)
                .await
                .expect("result kept");
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let place = "plant-leeds · line3-pc";
        let state = match memory {
            Some(file) => PageState::persistent(
                live.clone(),
                config.timezone.clone(),
                access,
                place,
                file.to_owned(),
            ),
            None => PageState::new(live.clone(), config.timezone.clone(), access, place),
        };
        let cancel = CancellationToken::new();
        tokio::spawn(site_page::serve(listener, state, cancel.clone()));
        let client = reqwest::Client::builder()
            .redirect(Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        Self {
            url,
            live,
            outbox,
            client,
            cancel,
            _dir: dir,
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("GET answered")
    }

    async fn page(&self) -> String {
        let response = self.get("/").await;
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.expect("page text")
    }

    async fn post_json(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .expect("POST answered");
        let status = response.status();
        (status, response.json().await.expect("a JSON answer"))
    }

    async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.url))
            .form(form)
            .send()
            .await
            .expect("POST answered")
    }

    async fn notes(&self) -> Vec<NoteRecord> {
        self.outbox
            .pending(0, 1000)
            .await
            .expect("pending")
            .into_iter()
            .filter_map(|r| match r.body {
                RecordBody::Note(n) => Some(n),
                _ => None,
            })
            .collect()
    }
}

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or("<no error field>")
}

#[tokio::test]
async fn the_page_says_what_is_wrong_and_what_to_do() {
    let page = Page::start(Access::open()).await;
    let response = page.get("/").await;
    let headers = response.headers().clone();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let csp = headers["content-security-policy"].to_str().expect("ascii");
    assert!(
        csp.starts_with("default-src 'self'; style-src 'self' 'unsafe-inline'"),
        "{csp}"
    );
    let html = response.text().await.expect("page");
    assert!(html.contains("1 problem needs attention"), "{html}");
    assert!(html.contains("Main router"));
    assert!(html.contains("Not working"));
    assert!(html.contains("<li>Look at the router&#39;s lights: is the power light on?</li>"));
    assert!(html.contains("IT will be called if this is not fixed."));
    assert!(html.contains("Connection to head office:</strong> Connecting to head office"));
    assert!(html.contains("The job has not reported since the agent started"));
    assert!(html.contains("Not confirmed since the agent started."));
    assert!(html.contains("<meta http-equiv=\"refresh\" content=\"15\">"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external assets"
    );
    for asset in ["/site.js", "/site.css"] {
        let response = page.get(asset).await;
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert_eq!(response.headers()["x-frame-options"], "DENY");
    }

    // The collector's escalation list drives the demarcation sentence.
    let now = jiff::Timestamp::now();
    page.live.set_escalations(EscalationList {
        v: 1,
        site: SiteId::new("plant-leeds").expect("id"),
        agent: AgentId::new("line3-pc").expect("id"),
        updated_at: now,
        planned_work_ended_at: None,
        escalations: vec![EscalationView {
            id: 1,
            kind: EscalationKind::Check,
            check: "router".into(),
            state: EscalationState::Local,
            opened_at: now,
            local_until: Some(now + jiff::SignedDuration::from_secs(12 * 60 - 5)),
            escalated_at: None,
            acknowledged_at: None,
            acknowledged_by: None,
            note: None,
            resolved_at: None,
            fixed_by: None,
            summary: String::new(),
        }],
    });
    let html = page.page().await;
    assert!(
        html.contains(
            "You have 12 minutes to try these steps; after that IT is called automatically"
        ),
        "{html}"
    );
}

#[tokio::test]
async fn notes_from_json_and_forms_reach_the_outbox_and_the_page() {
    let page = Page::start(Access::open()).await;
    let (status, body) = page
        .post_json(
            "/api/v1/checks/router/notes",
            &json!({"by": "Sam", "text": "Restarted the router", "action": "note"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["seq"].as_u64().is_some(), "{body}");

    let response = page
        .post_form(
            "/api/v1/checks/router/notes",
            &[("by", "Ana"), ("action", "working_on_it")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()["location"],
        "/?sent=working_on_it#check-router"
    );

    let notes = page.notes().await;
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[0].by, "Sam");
    assert_eq!(notes[0].text, "Restarted the router");
    assert_eq!(notes[0].action, NoteAction::Note);
    assert_eq!(
        notes[0].check.as_ref().map(outpost_shared::CheckId::as_str),
        Some("router")
    );
    assert_eq!(notes[1].action, NoteAction::WorkingOnIt);

    let html = page
        .get("/?sent=working_on_it")
        .await
        .text()
        .await
        .expect("page");
    assert!(html.contains("Sam: Restarted the router"), "{html}");
    assert!(html.contains("Ana is working on it."));
    assert!(html.contains("IT can see that you are working on it"));
}

/// A restarted agent (a new page over the same memory file) still shows the planned work
/// under way and what the site team already tried.
#[tokio::test]
async fn notes_and_planned_work_are_still_shown_after_a_restart() {
    let kept = tempfile::tempdir().expect("temp dir");
    let file = kept.path().join("site-page.json");
    let until = (jiff::Timestamp::now() + jiff::SignedDuration::from_mins(90)).to_string();
    {
        let page = Page::start_remembering(Access::open(), Some(&file)).await;
        let (status, body) = page
            .post_json(
                "/api/v1/checks/router/notes",
                &json!({"by": "Sam", "text": "Restarted the router", "action": "note"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = page
            .post_json(
                "/api/v1/notes",
                &json!({"by": "Ana", "text": "cabling the new switch", "action": "planned_work", "until": until}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let page = Page::start_remembering(Access::open(), Some(&file)).await;
    let html = page.page().await;
    assert!(html.contains("Sam: Restarted the router"), "{html}");
    assert!(html.contains("Planned work until"), "{html}");
    assert!(
        html.contains("cabling the new switch (declared by Ana)"),
        "{html}"
    );
}

#[tokio::test]
async fn html_in_a_note_is_shown_as_text() {
    let page = Page::start(Access::open()).await;
    let (status, _) = page
        .post_json(
            "/api/v1/checks/router/notes",
            &json!({"by": "<b>Eve</b>", "text": "<script>alert(1)</script><img src=x onerror=alert(2)>"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let html = page.page().await;
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(!html.contains("<img src=x"));
    assert!(!html.contains("<b>Eve"));
    assert!(html.contains("&lt;b&gt;Eve&lt;/b&gt;: &lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[tokio::test]
async fn bad_writes_are_refused_with_a_reason() {
    let page = Page::start(Access::open()).await;
    let long = "x".repeat(1001);
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "/api/v1/checks/router/notes",
            json!({"by": "Sam", "text": long}),
            StatusCode::BAD_REQUEST,
            "at most 1000",
        ),
        (
            "/api/v1/checks/router/notes",
            json!({"by": "S".repeat(81), "text": "x"}),
            StatusCode::BAD_REQUEST,
            "longer than 80",
        ),
        (
            "/api/v1/checks/router/notes",
            json!({"by": " ", "text": "x"}),
            StatusCode::BAD_REQUEST,
            "write your name",
        ),
        (
            "/api/v1/checks/router/notes",
            json!({"by": "Sam", "text": " "}),
            StatusCode::BAD_REQUEST,
            "The note is empty",
        ),
        (
            "/api/v1/checks/nope/notes",
            json!({"by": "Sam", "text": "x"}),
            StatusCode::NOT_FOUND,
            "no check \"nope\"",
        ),
        (
            "/api/v1/checks/router/notes",
            json!({"by": "Sam", "text": "x", "action": "reboot"}),
            StatusCode::BAD_REQUEST,
            "not an action",
        ),
        (
            "/api/v1/checks/router/notes",
            json!({"who": "Sam"}),
            StatusCode::BAD_REQUEST,
            "expected a JSON object like",
        ),
        (
            "/api/v1/checks/router/notes",
            json!(["Sam"]),
            StatusCode::BAD_REQUEST,
            "expected a JSON object like",
        ),
        (
            "/api/v1/checklist/router",
            json!({"by": "Sam"}),
            StatusCode::BAD_REQUEST,
            "is a tcp check; this needs a checklist check",
        ),
        (
            "/api/v1/checklist/cages",
            json!({}),
            StatusCode::BAD_REQUEST,
            "write your name",
        ),
        (
            "/api/v1/heartbeat/router",
            json!({}),
            StatusCode::BAD_REQUEST,
            "needs a heartbeat check",
        ),
        (
            "/api/v1/heartbeat/nope",
            json!({}),
            StatusCode::NOT_FOUND,
            "no check",
        ),
        (
            "/api/v1/heartbeat/backup-job",
            json!({"status": "maybe"}),
            StatusCode::BAD_REQUEST,
            "expected ok or fail",
        ),
    ];
    for (path, body, want, words) in &cases {
        let (status, answer) = page.post_json(path, body).await;
        assert_eq!(status, *want, "{path} {body}: {answer}");
        assert!(error_of(&answer).contains(words), "{path} {body}: {answer}");
    }

    let raw = |body: &'static str, content_type: &'static str| {
        page.client
            .post(format!("{}/api/v1/checks/router/notes", page.url))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let response = raw("{not json", "application/json")
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let answer: Value = response.json().await.expect("json");
    assert!(error_of(&answer).contains("\"by\": \"Sam\""), "{answer}");
    let response = raw("hello", "text/plain").await.expect("answered");
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let huge = format!("{{\"by\": \"Sam\", \"text\": \"{}\"}}", "x".repeat(20_000));
    let response = page
        .client
        .post(format!("{}/api/v1/checks/router/notes", page.url))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let answer: Value = response.json().await.expect("json");
    assert!(error_of(&answer).contains("larger than 16 KB"), "{answer}");

    // A form gets its error as a page a person can read, with the way back.
    let response = page
        .post_form("/api/v1/checks/router/notes", &[("by", ""), ("text", "x")])
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let html = response.text().await.expect("html");
    assert!(html.contains("Please write your name"), "{html}");
    assert!(html.contains("href=\"/\""));

    let response = page.get("/nope").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let answer: Value = response.json().await.expect("json");
    assert!(error_of(&answer).contains("nothing at /nope"));

    assert!(page.notes().await.is_empty(), "nothing refused was kept");
}

#[tokio::test]
async fn planned_work_is_bounded_shown_and_ended() {
    let page = Page::start(Access::open()).await;
    let now = jiff::Timestamp::now();
    let ahead = |mins: i64| (now + jiff::SignedDuration::from_mins(mins)).to_string();
    for (until, words) in [
        (ahead(5 * 60), "more than 4 hours ahead"),
        (ahead(-10), "in the past"),
        ("tomorrow".to_owned(), "is not a time"),
    ] {
        let (status, answer) = page
            .post_json(
                "/api/v1/notes",
                &json!({"by": "Sam", "text": "router replaced", "action": "planned_work", "until": until}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{until}: {answer}");
        assert!(error_of(&answer).contains(words), "{until}: {answer}");
    }
    let until = ahead(90);
    let (status, answer) = page
        .post_json(
            "/api/v1/notes",
            &json!({"by": "Sam", "text": "router replaced", "action": "planned_work", "until": until}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let notes = page.notes().await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].action, NoteAction::PlannedWork);
    assert_eq!(notes[0].check, None);
    assert_eq!(notes[0].until.map(|u| u.to_string()), Some(until));

    let html = page.page().await;
    assert!(html.contains("Planned work until"), "{html}");
    assert!(html.contains("router replaced (declared by Sam)"));
    assert!(html.contains("Planned work is going on: IT will not be called"));
    assert!(html.contains("Planned work is finished"));
    let status: Value = page.get("/api/v1/status").await.json().await.expect("json");
    assert_eq!(
        status["planned_work"][0]["work"]["reason"],
        "router replaced"
    );

    let response = page
        .post_form(
            "/api/v1/notes",
            &[("by", "Sam"), ("action", "planned_work_ended")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let html = page.page().await;
    assert!(!html.contains("Planned work until"), "{html}");
    assert!(html.contains("Declare planned work"));
    assert_eq!(
        page.notes().await.last().map(|n| n.action),
        Some(NoteAction::PlannedWorkEnded)
    );
}

#[tokio::test]
async fn heartbeats_and_checklists_are_accepted() {
    let page = Page::start(Access::open()).await;
    // What a cron job does: `curl -X POST .../api/v1/heartbeat/backup-job`, no body.
    let response = page
        .client
        .post(format!("{}/api/v1/heartbeat/backup-job", page.url))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::OK);
    let id = outpost_shared::CheckId::new("backup-job").expect("id");
    assert_eq!(page.live.heartbeat(&id).map(|h| h.status), Some(Status::Ok));
    let response = page
        .client
        .post(format!(
            "{}/api/v1/heartbeat/backup-job?status=fail&msg=disk%20full",
            page.url
        ))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::OK);
    let report = page.live.heartbeat(&id).expect("a report");
    assert_eq!(report.status, Status::Fail);
    assert_eq!(report.message.as_deref(), Some("disk full"));
    assert!(page.page().await.contains("it failed (disk full)."));

    let (status, answer) = page
        .post_json("/api/v1/checklist/cages", &json!({"by": "Sam"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let response = page
        .post_form("/api/v1/checklist/cages", &[("by", "Ana")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let notes = page.notes().await;
    assert_eq!(notes.len(), 2);
    assert!(notes.iter().all(|n| n.action == NoteAction::ChecklistDone));
    let cages = outpost_shared::CheckId::new("cages").expect("id");
    assert_eq!(page.live.confirmations(&cages).len(), 2);
    assert!(page.page().await.contains("Last confirmed by Ana at"));
}

#[tokio::test]
async fn writes_need_the_token_when_one_is_set_and_reads_stay_open() {
    let page = Page::start(Access::with_token("site-secret-42")).await;
    let html = page.page().await;
    assert!(
        html.contains("Site code"),
        "the forms ask for the site code"
    );
    assert_eq!(page.get("/api/v1/status").await.status(), StatusCode::OK);
    assert_eq!(page.get("/metrics").await.status(), StatusCode::OK);

    let note = json!({"by": "Sam", "text": "x"});
    let (status, answer) = page.post_json("/api/v1/checks/router/notes", &note).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        error_of(&answer).contains("Authorization: Bearer"),
        "{answer}"
    );
    for token in [
        "Bearer wrong-secret-42",
        "Bearer site-secret-4",
        "site-secret-42",
    ] {
        let response = page
            .client
            .post(format!("{}/api/v1/heartbeat/backup-job", page.url))
            .header("authorization", token)
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token}");
    }
    let response = page
        .client
        .post(format!("{}/api/v1/checks/router/notes", page.url))
        .bearer_auth("site-secret-42")
        .json(&note)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::OK);
    let response = page
        .post_form(
            "/api/v1/checklist/cages",
            &[("by", "Sam"), ("token", "site-secret-42")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = page
        .post_form(
            "/api/v1/checklist/cages",
            &[("by", "Sam"), ("token", "nope")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response
            .text()
            .await
            .expect("html")
            .contains("site code is missing or wrong")
    );

    // Another web site cannot make a browser on the plant network post here.
    let response = page
        .client
        .post(format!("{}/api/v1/checks/router/notes", page.url))
        .bearer_auth("site-secret-42")
        .header("origin", "https://evil.example")
        .json(&note)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(page.notes().await.len(), 2);
}

#[tokio::test]
async fn metrics_and_status_json_describe_the_live_state() {
    let page = Page::start(Access::open()).await;
    let response = page.get("/metrics").await;
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.expect("metrics");
    assert!(
        text.contains("outpost_check_status{check=\"router\",kind=\"tcp\"} 2"),
        "{text}"
    );
    assert!(text.contains("outpost_check_status{check=\"host\",kind=\"uptime\"} 0"));
    assert!(text.contains("outpost_check_last_run_timestamp_seconds{check=\"router\"} "));
    assert!(text.contains("outpost_outbox_pending_records 4"), "{text}");
    assert!(text.contains("# TYPE outpost_outbox_bytes gauge"));
    assert!(text.contains("outpost_collector_connected 0"));

    let status: Value = page.get("/api/v1/status").await.json().await.expect("json");
    assert_eq!(status["checks"].as_array().map(Vec::len), Some(4));
    assert_eq!(status["results"]["router"]["status"], "fail");
    assert_eq!(status["outbox"]["pending"], 4);
    assert_eq!(status["view"]["headline"], "1 problem needs attention");

    // The terminal shows the page's own words.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_outpost-agent"))
        .args(["status", "--url", &page.url])
        .output()
        .await
        .expect("status runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("1 problem needs attention\n"), "{text}");
    assert!(text.contains("Main router: Not working (since "), "{text}");
    assert!(text.contains("IT will be called if this is not fixed."));
    assert!(text.contains("      2. Switch the router off, wait 30 seconds, switch it on."));
}

#[test]
fn listening_beyond_loopback_needs_a_token_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = "site = \"s\"\nagent = \"a\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:1\"\n";
    let load = |local: &str| {
        Config::parse(Path::new("a.toml"), &format!("{base}[local]\n{local}"))
            .expect("valid config")
            .local
    };
    let open = load("listen = \"0.0.0.0:9470\"\n");
    let err = Access::from_config(&open).expect_err("refused");
    assert!(err.to_string().contains("set [local] token_file"), "{err}");
    assert!(Access::from_config(&load("listen = \"127.0.0.1:9470\"\n")).is_ok());

    let token = dir.path().join("token");
    std::fs::write(&token, "a-long-site-secret\n").expect("write token");
    let with = load(&format!(
        "listen = \"0.0.0.0:9470\"\ntoken_file = \"{}\"\n",
        token.display()
    ));
    assert!(Access::from_config(&with).expect("accepted").needs_token());
    std::fs::write(&token, "short").expect("write token");
    let err = Access::from_config(&with).expect_err("too short");
    assert!(err.to_string().contains("shorter than 8"), "{err}");

    // The agent refuses to start, saying why.
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "{base}[local]\nlisten = \"0.0.0.0:0\"\n[outbox]\ndir = \"{}\"\n",
            dir.path().join("outbox").display()
        ),
    )
    .expect("write config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_outpost-agent"))
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("set [local] token_file"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_the_page_and_stops_it_on_sigterm() {
    outpost_agent::install_tls_provider();
    let broker = outpost_tests::Broker::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let port = outpost_tests::free_port();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "site = \"plant-leeds\"\nagent = \"line3-pc\"\n[mqtt]\nurl = \"{}\"\n\
             [local]\nlisten = \"127.0.0.1:{port}\"\n[outbox]\ndir = \"{}\"\n\
             [[check]]\nid = \"host\"\nkind = \"uptime\"\ntitle = \"This computer\"\ninterval = \"1s\"\n",
            broker.url(),
            dir.path().join("outbox").display()
        ),
    )
    .expect("write config");
    let mut agent = tokio::process::Command::new(env!("CARGO_BIN_EXE_outpost-agent"))
        .args(["run", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the agent starts");
    let url = format!("http://127.0.0.1:{port}/api/v1/status");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let view = loop {
        if let Ok(response) = reqwest::get(&url).await {
            let status: Value = response.json().await.expect("json");
            if status["view"]["connection"] == "Connected"
                && status["view"]["headline"] == "Everything is working"
            {
                break status["view"].clone();
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agent's page did not say Connected / Everything is working in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(view["checks"][0]["status_words"], "Working");
    let pid = agent.id().expect("running").to_string();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    let exit = tokio::time::timeout(Duration::from_secs(10), agent.wait())
        .await
        .expect("the agent stops within 10 s")
        .expect("exit status");
    assert!(exit.success());
    assert!(reqwest::get(&url).await.is_err(), "the page is closed");
}

#[tokio::test]
async fn protected_reads_ask_the_browser_for_the_site_code() {
    let page = Page::start(Access::with_token("site-secret-42").protecting_reads()).await;
    for path in ["/", "/api/v1/status", "/metrics", "/site.css"] {
        let response = page.get(path).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap_or_default()
            .to_owned();
        assert!(challenge.starts_with("Basic realm="), "{path}: {challenge}");
    }
    let with = |user: &str, password: &str| {
        page.client
            .get(format!("{}/", page.url))
            .basic_auth(user, Some(password))
    };
    assert_eq!(
        with("sam", "wrong-secret")
            .send()
            .await
            .expect("answered")
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let html = with("sam", "site-secret-42")
        .send()
        .await
        .expect("answered");
    assert_eq!(html.status(), StatusCode::OK);
    let status = page
        .client
        .get(format!("{}/api/v1/status", page.url))
        .bearer_auth("site-secret-42")
        .send()
        .await
        .expect("answered");
    assert_eq!(status.status(), StatusCode::OK);
    // The browser sends the code it was asked for with the forms too.
    let response = page
        .client
        .post(format!("{}/api/v1/checks/router/notes", page.url))
        .basic_auth("sam", Some("site-secret-42"))
        .json(&json!({"by": "Sam", "text": "Restarted the router"}))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_open_page_answers_only_its_loopback_names() {
    let page = Page::start(Access::open()).await;
    let note = json!({"by": "Mallory", "text": "rebound"});
    let response = page
        .client
        .post(format!("{}/api/v1/checks/router/notes", page.url))
        .header("host", "evil.example:9470")
        .json(&note)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = page
        .client
        .get(format!("{}/", page.url))
        .header("host", "localhost:9470")
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::OK);
    let notes = page.outbox.pending(0, 100).await.expect("outbox");
    assert!(
        notes
            .iter()
            .all(|r| !matches!(&r.body, RecordBody::Note(n) if n.by == "Mallory")),
        "nothing from the rebound page reached the outbox"
    );
}
