//! The dashboard end to end: a real API + dashboard server on a free port, a real SQLite store
//! and decision log in a temp dir, the decision task fed with engine events, and headless
//! Chromium driving the pages (skipped with a message when Chromium is not installed).
//! Screenshots of every view land in `target/screenshots/`.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{Arc, RwLock},
    time::Duration,
};

use outpost_collector::{
    api::{self, ApiState, Tokens},
    cluster,
    decide::{self, Command, Decider, EscalationSink, StoreContext},
    engine::{Engine, EngineSettings},
    ingest::IngestEvent,
    store::{self, Store},
};
use outpost_shared::{
    AgentId, Batch, Birth, CheckId, CheckSpec, EscalationList, HostFacts, HumanDuration,
    NoteAction, NoteRecord, PresenceState, Record, RecordBody, ResultRecord, SiteId, Status,
    Timestamp,
};
use outpost_tests::browser::Browser;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

const READ: &str = "read-token-7f3a";
const WRITE: &str = "write-token-91c2";

/// Escalation lists go nowhere here (no MQTT in this test).
struct NoSink;

impl EscalationSink for NoSink {
    fn publish(&self, _: EscalationList) {}
}

/// A running API + dashboard with its store and decision task.
struct Collector {
    url: String,
    store: Arc<dyn Store>,
    events: mpsc::Sender<IngestEvent>,
    cancel: CancellationToken,
    seq: BTreeMap<(String, String), u64>,
    _dir: tempfile::TempDir,
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn site_id(s: &str) -> SiteId {
    SiteId::new(s).expect("test ids are valid")
}

fn agent_id(s: &str) -> AgentId {
    AgentId::new(s).expect("test ids are valid")
}

fn check_id(s: &str) -> CheckId {
    CheckId::new(s).expect("test ids are valid")
}

fn spec(id: &str, kind: &str, title: &str, fail_after: u32, window_s: u64) -> CheckSpec {
    CheckSpec {
        id: check_id(id),
        kind: kind.into(),
        title: title.into(),
        interval: HumanDuration::from_secs(10),
        fail_after,
        recover_after: 2,
        local_window: HumanDuration::from_secs(window_s),
        escalate_warn: false,
        runbook: vec![
            "Look at the router's lights: is the power light on?".into(),
            "Switch the router off, wait 30 seconds, switch it on.".into(),
        ],
        depends_on: vec![],
        thresholds: BTreeMap::new(),
    }
}

fn ago(seconds: u64) -> Timestamp {
    outpost_collector::engine::sub(Timestamp::now(), Duration::from_secs(seconds))
}

impl Collector {
    async fn start(tokens: Tokens) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("temp dir");
        let store_url = format!("sqlite://{}", dir.path().join("outpost.db").display());
        let log_url = format!("sqlite://{}", dir.path().join("decisions.db").display());
        let (store, log) = tokio::task::spawn_blocking(move || {
            (
                store::open(&store_url).expect("open the store"),
                decide::open_log(&log_url).expect("open the decision log"),
            )
        })
        .await
        .expect("open task");
        let engine = Arc::new(RwLock::new(Engine::new(EngineSettings::default())));
        let role = Arc::new(cluster::Role::following().expect("HTTP client"));
        let hub = broadcast::channel(256).0;
        let (events_tx, events_rx) = mpsc::channel(64);
        let (commands_tx, commands_rx) = mpsc::channel::<Command>(16);
        let cancel = CancellationToken::new();
        let decider = Decider {
            engine: engine.clone(),
            log: log.clone(),
            sink: Arc::new(NoSink),
            context: Arc::new(StoreContext(store.clone())),
            hub: hub.clone(),
            notifiers: vec![],
            wake: Arc::new(tokio::sync::Notify::new()),
            dashboard_url: None,
            store: store.clone(),
            role: role.clone(),
            advertise: String::new(),
            unsaved: Arc::default(),
        };
        // As the collector does: decide before the API answers (a follower's API says 503).
        decider.lead().await;
        tokio::spawn(decider.run(events_rx, commands_rx, cancel.clone()));
        let state = ApiState {
            engine,
            log,
            store: store.clone(),
            commands: commands_tx,
            hub,
            tokens,
            metrics: Arc::new(String::new),
            mqtt_ready: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            role,
        };
        let app = api::app(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let addr = listener.local_addr().expect("bound address");
        let stop = cancel.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
        });
        Self {
            url: format!("http://{addr}"),
            store,
            events: events_tx,
            cancel,
            seq: BTreeMap::new(),
            _dir: dir,
        }
    }

    /// An agent comes online and announces its checks.
    async fn agent(&self, site: &str, agent: &str, checks: Vec<CheckSpec>) {
        let birth = Birth {
            v: outpost_shared::PROTOCOL_VERSION,
            site: site_id(site),
            agent: agent_id(agent),
            version: "0.1.0".into(),
            epoch: 42,
            boot_time: ago(86_400 * 3),
            started_at: ago(3600),
            host: HostFacts {
                hostname: format!("{agent}.{site}.lan"),
                os: "Debian GNU/Linux 12".into(),
                kernel: "6.1.0-18-amd64".into(),
                arch: "x86_64".into(),
                cpus: 4,
                memory_bytes: 8_000_000_000,
                timezone: "Europe/London".into(),
            },
            checks,
        };
        let store = self.store.clone();
        let b = birth.clone();
        tokio::task::spawn_blocking(move || {
            store.save_birth(&b, Timestamp::now())?;
            store.save_presence(&b.site, &b.agent, PresenceState::Online, Timestamp::now())
        })
        .await
        .expect("store task")
        .expect("store birth and presence");
        self.events
            .send(IngestEvent::Presence {
                site: site_id(site),
                agent: agent_id(agent),
                state: PresenceState::Online,
                at: Timestamp::now(),
            })
            .await
            .expect("decision task runs");
        self.events
            .send(IngestEvent::Birth {
                birth,
                at: Timestamp::now(),
            })
            .await
            .expect("decision task runs");
    }

    /// Stores records as ingest would, then feeds the new results to the engine.
    async fn records(&mut self, site: &str, agent: &str, bodies: Vec<(u64, RecordBody)>) {
        let seq = self.seq.entry((site.into(), agent.into())).or_insert(0);
        let records: Vec<Record> = bodies
            .into_iter()
            .map(|(age, body)| {
                *seq += 1;
                Record {
                    seq: *seq,
                    ts: ago(age),
                    body,
                }
            })
            .collect();
        let batch = Batch {
            v: outpost_shared::PROTOCOL_VERSION,
            site: site_id(site),
            agent: agent_id(agent),
            epoch: 42,
            acked: None,
            records,
        };
        let store = self.store.clone();
        let written = tokio::task::spawn_blocking(move || {
            store.write_batches(std::slice::from_ref(&batch), Timestamp::now())
        })
        .await
        .expect("store task")
        .expect("write batch");
        for w in written {
            self.events
                .send(IngestEvent::Records {
                    site: w.site,
                    agent: w.agent,
                    epoch: w.epoch,
                    records: w.new,
                    at: Timestamp::now(),
                })
                .await
                .expect("decision task runs");
        }
    }
}

fn result(check: &str, status: Status, summary: &str, metrics: &[(&str, f64)]) -> RecordBody {
    RecordBody::Result(ResultRecord {
        check: check_id(check),
        status,
        summary: summary.into(),
        metrics: metrics.iter().map(|(k, v)| ((*k).into(), *v)).collect(),
        historical: false,
    })
}

/// Two sites: plant-leeds with a failing router (escalated at once) and a backup check with a
/// 15-minute site team window; depot-york all fine.
async fn seeded(tokens: Tokens) -> Collector {
    let mut c = Collector::start(tokens).await;
    c.agent(
        "plant-leeds",
        "line3-pc",
        vec![
            spec("router", "ping", "Main router", 2, 0),
            spec("backup", "backup", "Nightly backup", 1, 900),
        ],
    )
    .await;
    c.agent(
        "depot-york",
        "office-pc",
        vec![spec("router", "ping", "Main router", 2, 0)],
    )
    .await;
    let mut leeds = Vec::new();
    for i in 0..8u32 {
        let rtt = 11.0 + f64::from(i % 3) * 2.5;
        leeds.push((
            300 - u64::from(i) * 30,
            result(
                "router",
                Status::Ok,
                "The router answers.",
                &[("rtt_avg_ms", rtt), ("loss_pct", 0.0)],
            ),
        ));
    }
    leeds.push((
        40,
        result(
            "backup",
            Status::Ok,
            "Last night's backup is there.",
            &[("age_h", 7.0)],
        ),
    ));
    leeds.push((
        35,
        RecordBody::Note(NoteRecord {
            check: Some(check_id("router")),
            by: "Sam (site)".into(),
            text: "Router lights are off, checking the power strip".into(),
            action: NoteAction::WorkingOnIt,
            until: None,
        }),
    ));
    for age in [30, 20, 10] {
        leeds.push((
            age,
            result(
                "router",
                Status::Fail,
                "The router does not answer: 100% of pings lost.",
                &[("loss_pct", 100.0)],
            ),
        ));
    }
    c.records("plant-leeds", "line3-pc", leeds).await;
    let york = (0..3)
        .map(|i| {
            (
                60 - i * 20,
                result(
                    "router",
                    Status::Ok,
                    "The router answers.",
                    &[("rtt_avg_ms", 8.0)],
                ),
            )
        })
        .collect();
    c.records("depot-york", "office-pc", york).await;
    c
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client builds")
}

async fn get_json(url: &str, token: &str) -> serde_json::Value {
    let response = client()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.json().await.expect("JSON answer")
}

/// The id of the open escalation of `check` at plant-leeds, once the engine opened it.
async fn open_escalation(c: &Collector, check: &str) -> u64 {
    for _ in 0..100 {
        let list = get_json(&format!("{}/api/v1/escalations?state=open", c.url), READ).await;
        if let Some(e) = list
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["check"] == check && e["site"] == "plant-leeds")
        {
            return e["id"].as_u64().expect("ids are numbers");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no open escalation for {check} appeared");
}

fn screenshot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/screenshots")
        .join(format!("{name}.png"))
}

fn tokens() -> Tokens {
    Tokens {
        read: Some(READ.into()),
        write: Some(WRITE.into()),
    }
}

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_real_browser() -> anyhow::Result<()> {
    let mut c = seeded(tokens()).await;
    let router_id = open_escalation(&c, "router").await;
    let Some(mut b) = Browser::launch().await? else {
        return Ok(());
    };

    // No cookie: the login form. A wrong token stays there, with a message.
    b.navigate(&format!("{}/", c.url)).await?;
    b.wait_for("location.pathname === '/login'", WAIT).await?;
    b.screenshot(&screenshot("login")).await?;
    b.type_text("#token", "not-the-token").await?;
    b.click("button[type=submit]").await?;
    b.wait_for("document.body.innerText.includes('not valid')", WAIT)
        .await?;
    b.type_text("#token", WRITE).await?;
    b.click("button[type=submit]").await?;

    // The fleet view: plant-leeds first, failing, its router escalated to IT, in words.
    b.wait_for(
        "document.querySelector('#fleet tbody tr[data-site=\"plant-leeds\"]')",
        WAIT,
    )
    .await?;
    b.wait_for(
        "window.outpostStream && window.outpostStream.readyState === 1",
        WAIT,
    )
    .await?;
    let first = b
        .evaluate("document.querySelector('#fleet tbody tr').dataset.site")
        .await?;
    assert_eq!(first, "plant-leeds");
    let row = b
        .evaluate("document.querySelector('tr[data-site=\"plant-leeds\"]').innerText")
        .await?;
    let row = row.as_str().unwrap_or_default();
    assert!(row.contains("Failing"), "{row}");
    assert!(
        row.contains("Main router"),
        "the check's title, not its id: {row}"
    );
    assert!(row.contains("Escalated to IT"), "{row}");
    assert!(row.contains("1 of 1 online"), "{row}");
    b.screenshot(&screenshot("fleet")).await?;

    // The filter narrows by name without a request.
    b.type_text("#filter-site", "york").await?;
    b.wait_for("document.querySelectorAll('#fleet tbody tr').length === 1 && document.querySelector('#fleet tbody tr').dataset.site === 'depot-york'", WAIT).await?;
    b.type_text("#filter-site", "").await?;
    b.wait_for(
        "document.querySelectorAll('#fleet tbody tr').length === 2",
        WAIT,
    )
    .await?;

    // Live: the backup fails while the page is open; its escalation appears without a reload.
    b.evaluate("window.notReloaded = 'still here'").await?;
    c.records(
        "plant-leeds",
        "line3-pc",
        vec![(
            1,
            result(
                "backup",
                Status::Fail,
                "No backup file newer than 26 hours.",
                &[("age_h", 31.0)],
            ),
        )],
    )
    .await;
    b.wait_for(
        "document.querySelector('tr[data-site=\"plant-leeds\"]').innerText.includes('Site team window')",
        WAIT,
    )
    .await?;
    assert_eq!(
        b.evaluate("window.notReloaded").await?,
        "still here",
        "the page reloaded instead of updating live"
    );
    b.screenshot(&screenshot("fleet-live")).await?;

    // The escalation view: what failed, the chart, the runbook, the site team's note.
    b.click(&format!("a[href=\"#/escalations/{router_id}\"]"))
        .await?;
    b.wait_for("document.querySelector('#escalation-title')", WAIT)
        .await?;
    b.wait_for("document.querySelector('#recent-chart circle')", WAIT)
        .await?;
    let text = b.text().await?;
    for expected in [
        "Main router",
        "Escalated to IT",
        "100% of pings lost",
        "Switch the router off, wait 30 seconds",
        "Sam (site)",
        "Router lights are off",
        &format!("outpost:plant-leeds:line3-pc:router:{router_id}"),
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    b.screenshot(&screenshot("escalation")).await?;

    // Acknowledge with a note through the form; the state changes in place. A live update
    // arriving while IT types waits: the note keeps its focus and its text.
    b.type_text("#ack-by", "Dana (IT)").await?;
    b.type_text("#ack-note", "ISP ticket 4711 opened").await?;
    let events = b.evaluate("window.outpostEvents || 0").await?;
    c.records(
        "plant-leeds",
        "line3-pc",
        vec![(
            0,
            result(
                "router",
                Status::Fail,
                "The router does not answer: 100% of pings lost.",
                &[("loss_pct", 100.0)],
            ),
        )],
    )
    .await;
    b.wait_for(&format!("(window.outpostEvents || 0) > {events}"), WAIT)
        .await?;
    tokio::time::sleep(Duration::from_millis(600)).await; // past the 250 ms burst delay
    assert_eq!(
        b.evaluate("document.activeElement && document.activeElement.id")
            .await?,
        "ack-note",
        "a live update took the focus away"
    );
    assert_eq!(
        b.evaluate("document.querySelector('#ack-note').value")
            .await?,
        "ISP ticket 4711 opened"
    );
    b.click("#ack-submit").await?;
    b.wait_for(
        "document.querySelector('#escalation-title [data-state]').dataset.state === 'acknowledged'",
        WAIT,
    )
    .await?;
    let text = b.text().await?;
    assert!(text.contains("Dana (IT)"), "{text}");
    assert!(text.contains("ISP ticket 4711 opened"), "{text}");
    let stored = get_json(&format!("{}/api/v1/escalations/{router_id}", c.url), READ).await;
    assert_eq!(stored["state"], "acknowledged");
    assert_eq!(stored["acknowledged_by"], "Dana (IT)");
    assert_eq!(stored["note"], "ISP ticket 4711 opened");
    b.screenshot(&screenshot("escalation-acknowledged")).await?;

    // The site view: host facts and a 24-hour strip per check.
    b.evaluate("location.hash = '#/sites/plant-leeds'").await?;
    b.wait_for("document.querySelector('#site-checks .strip')", WAIT)
        .await?;
    let text = b.text().await?;
    for expected in [
        "line3-pc.plant-leeds.lan",
        "Debian GNU/Linux 12",
        "Europe/London",
        "Nightly backup",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let strips = b
        .evaluate("document.querySelectorAll('#site-checks .strip').length")
        .await?;
    assert_eq!(strips, 2);
    let cells = b
        .evaluate("document.querySelector('#site-checks .strip').children.length")
        .await?;
    assert_eq!(cells, 24);
    b.screenshot(&screenshot("site")).await?;

    // The report: the same numbers as the JSON, plant-leeds ranked first.
    let report = get_json(&format!("{}/api/v1/report?since=7d", c.url), READ).await;
    let incidents = report["fleet"]["incidents"].as_u64().unwrap_or_default();
    assert_eq!(incidents, 2, "{report}");
    b.evaluate("location.hash = '#/report'").await?;
    b.wait_for(
        "document.querySelector('#report-table tbody tr[data-site]')",
        WAIT,
    )
    .await?;
    let shown = b
        .evaluate("document.querySelector('#card-incidents .v').textContent")
        .await?;
    assert_eq!(shown, incidents.to_string());
    let ranked = b
        .evaluate("document.querySelector('#report-table tbody tr').dataset.site")
        .await?;
    assert_eq!(ranked, "plant-leeds");
    let csv = b
        .evaluate("document.querySelector('#csv').getAttribute('href')")
        .await?;
    assert_eq!(csv, "/api/v1/report.csv?since=7d");
    b.screenshot(&screenshot("report")).await?;

    // Logging out brings back the login form.
    b.evaluate("document.querySelector('form.logout').submit()")
        .await?;
    b.wait_for("location.pathname === '/login'", WAIT).await?;
    b.navigate(&format!("{}/", c.url)).await?;
    b.wait_for("location.pathname === '/login'", WAIT).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_login_and_report_over_http() {
    let c = seeded(tokens()).await;
    open_escalation(&c, "router").await;
    let http = client();
    let url = |p: &str| format!("{}{p}", c.url);

    // Without a token the page sends people to the login form; the API answers 401 in JSON.
    let page = http.get(url("/")).send().await.expect("GET /");
    assert_eq!(page.status(), 303);
    assert_eq!(page.headers()["location"], "/login");
    let api = http
        .get(url("/api/v1/sites"))
        .bearer_auth("wrong")
        .send()
        .await
        .expect("GET sites");
    assert_eq!(api.status(), 401);
    let body: serde_json::Value = api.json().await.expect("JSON error");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("read token"))
    );

    // A wrong token gets the form again with 401; a right one a session cookie and `/`.
    let wrong = http
        .post(url("/login"))
        .form(&[("token", "nope")])
        .send()
        .await
        .expect("POST /login");
    assert_eq!(wrong.status(), 401);
    assert!(wrong.text().await.expect("body").contains("not valid"));
    let right = http
        .post(url("/login"))
        .form(&[("token", READ)])
        .send()
        .await
        .expect("POST /login");
    assert_eq!(right.status(), 303);
    assert_eq!(right.headers()["location"], "/");
    let cookie = right.headers()["set-cookie"]
        .to_str()
        .expect("ASCII cookie")
        .to_owned();
    assert!(
        cookie.starts_with(&format!("outpost_token={READ};")),
        "{cookie}"
    );
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = format!("outpost_token={READ}");

    // The page: no inline script, the CSP on it, assets embedded and typed.
    let page = http
        .get(url("/"))
        .header("cookie", &session)
        .send()
        .await
        .expect("GET /");
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    let html = page.text().await.expect("body");
    assert!(html.contains(r#"<script type="module" src="/app.js"></script>"#));
    assert_eq!(html.matches("<script").count(), 1, "no inline script");
    for (path, needle) in [
        ("/app.js", "EventSource('/api/v1/stream')"),
        ("/js/fleet.js", "export function mountFleet"),
        ("/js/chart.js", "export function chart"),
        ("/style.css", "--fail"),
    ] {
        let asset = http.get(url(path)).send().await.expect("asset");
        assert_eq!(asset.status(), 200, "{path}");
        let kind = asset.headers()["content-type"]
            .to_str()
            .expect("ASCII")
            .to_owned();
        assert!(kind.starts_with("text/"), "{path}: {kind}");
        assert!(asset.text().await.expect("body").contains(needle), "{path}");
    }
    let missing = http.get(url("/js/nope.js")).send().await.expect("asset");
    assert_eq!(missing.status(), 404);
    let link = http.get(url("/escalations/7")).send().await.expect("link");
    assert_eq!(link.headers()["location"], "/#/escalations/7");

    // The report, as JSON and CSV, with the session cookie.
    let report: serde_json::Value = http
        .get(url("/api/v1/report?since=7d"))
        .header("cookie", &session)
        .send()
        .await
        .expect("report")
        .json()
        .await
        .expect("report JSON");
    assert_eq!(report["fleet"]["sites"], 2, "{report}");
    assert_eq!(report["fleet"]["incidents"], 1, "{report}");
    assert_eq!(report["sites"].as_array().map(Vec::len), Some(2));
    let csv = http
        .get(url("/api/v1/report.csv?since=7d"))
        .header("cookie", &session)
        .send()
        .await
        .expect("report.csv");
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/csv"))
    );
    let text = csv.text().await.expect("CSV body");
    assert!(text.lines().count() >= 3, "{text}");
    assert!(
        text.contains("plant-leeds") && text.contains("depot-york"),
        "{text}"
    );

    // The read token cannot act; logging out clears the cookie.
    let ack = http
        .post(url("/api/v1/escalations/1/ack"))
        .header("cookie", &session)
        .json(&serde_json::json!({"by": "Eve", "note": "x"}))
        .send()
        .await
        .expect("ack");
    assert_eq!(ack.status(), 401);
    let out = http.post(url("/logout")).send().await.expect("logout");
    assert_eq!(out.headers()["location"], "/login");
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .is_ok_and(|c| c.contains("Max-Age=0"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_sites_render_at_once() -> anyhow::Result<()> {
    let c = Collector::start(Tokens::default()).await;
    let store = c.store.clone();
    tokio::task::spawn_blocking(move || {
        for i in 0..500 {
            let site = site_id(&format!("site-{i:03}"));
            let birth = Birth {
                v: outpost_shared::PROTOCOL_VERSION,
                site: site.clone(),
                agent: agent_id("pc"),
                version: "0.1.0".into(),
                epoch: 1,
                boot_time: Timestamp::now(),
                started_at: Timestamp::now(),
                host: HostFacts {
                    hostname: "pc".into(),
                    os: String::new(),
                    kernel: String::new(),
                    arch: String::new(),
                    cpus: 1,
                    memory_bytes: 0,
                    timezone: String::new(),
                },
                checks: vec![spec("router", "ping", "Main router", 2, 0)],
            };
            store.save_birth(&birth, Timestamp::now())?;
            store.save_presence(&site, &birth.agent, PresenceState::Online, Timestamp::now())?;
        }
        Ok::<_, store::StoreError>(())
    })
    .await??;
    let Some(mut b) = Browser::launch().await? else {
        return Ok(());
    };
    // With no tokens configured the login form is not needed.
    b.navigate(&format!("{}/login", c.url)).await?;
    b.wait_for(
        "document.querySelectorAll('#fleet tbody tr').length === 500",
        WAIT,
    )
    .await?;
    let ms = b.evaluate("window.outpostRenderMs").await?;
    println!("rendering 500 sites took {ms} ms");
    b.type_text("#filter-site", "site-49").await?;
    b.wait_for(
        "document.querySelectorAll('#fleet tbody tr').length === 10",
        WAIT,
    )
    .await?;
    b.screenshot(&screenshot("fleet-500")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_resolves_by_hand_and_its_name_is_kept() {
    let c = seeded(tokens()).await;
    let id = open_escalation(&c, "router").await;
    let url = format!("{}/api/v1/escalations/{id}/resolve", c.url);
    let post = |body: serde_json::Value| client().post(&url).bearer_auth(WRITE).json(&body).send();

    let too_long = post(serde_json::json!({"by": "x".repeat(101)}))
        .await
        .expect("request");
    assert_eq!(too_long.status(), 400);
    let text = too_long.text().await.expect("body");
    assert!(text.contains("`by`") && text.contains("100"), "{text}");

    let done = post(serde_json::json!({"by": "  Sam (IT)  "}))
        .await
        .expect("request");
    assert!(done.status().is_success(), "{}", done.status());
    let out: serde_json::Value = done.json().await.expect("JSON");
    assert_eq!(out["state"], "resolved");
    assert_eq!(out["resolved_by"], "Sam (IT)");
    assert_eq!(out["fixed_by"], "it");

    let again = post(serde_json::json!({})).await.expect("request");
    assert_eq!(again.status(), 409, "already resolved");
    let detail = get_json(&format!("{}/api/v1/escalations/{id}", c.url), READ).await;
    assert_eq!(detail["resolved_by"], "Sam (IT)", "kept: {detail}");

    // A site whose agent was born but never sent a result is not shown as fine.
    c.agent(
        "quarry-hull",
        "gate-pc",
        vec![spec("router", "ping", "Main router", 2, 0)],
    )
    .await;
    let sites = get_json(&format!("{}/api/v1/sites", c.url), READ).await;
    let worst = |name: &str| {
        sites
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["site"] == name)
            .map(|s| s["worst"].clone())
    };
    assert_eq!(worst("quarry-hull"), Some(serde_json::json!("unknown")));
    assert_ne!(worst("depot-york"), Some(serde_json::json!("unknown")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_error_is_json_and_says_what_is_wrong() {
    let c = seeded(tokens()).await;
    let http = client();
    // (method, path, status, words in the error)
    let cases = [
        ("GET", "/api/v1/escalations/abc", 400, "abc"),
        (
            "GET",
            "/api/v1/no-such-thing",
            404,
            "no API endpoint /api/v1/no-such-thing",
        ),
        ("GET", "/api/v1/results?limit=many", 400, "limit"),
        ("DELETE", "/api/v1/sites", 405, "method not allowed"),
    ];
    for (method, path, status, words) in cases {
        let response = http
            .request(
                method.parse().expect("a method"),
                format!("{}{path}", c.url),
            )
            .bearer_auth(WRITE)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), status, "{method} {path}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .to_owned();
        assert!(
            content_type.starts_with("application/json"),
            "{method} {path}: {content_type}"
        );
        let body: serde_json::Value = response.json().await.expect("a JSON body");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(words), "{method} {path}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_collector_answers_only_its_loopback_names() {
    let c = seeded(Tokens::default()).await;
    let http = client();
    let ask = |host: &'static str| {
        http.get(format!("{}/api/v1/sites", c.url))
            .header("host", host)
            .send()
    };
    assert_eq!(ask("localhost:9480").await.expect("answered").status(), 200);
    // A page whose own name now resolves to 127.0.0.1 (DNS rebinding) gets nothing.
    let refused = ask("evil.example:9480").await.expect("answered");
    assert_eq!(refused.status(), 403);
    let body: serde_json::Value = refused.json().await.expect("JSON");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("127.0.0.1")),
        "{body}"
    );
    // With tokens, any name may be used: the tokens protect it.
    let guarded = seeded(tokens()).await;
    let answer = http
        .get(format!("{}/api/v1/sites", guarded.url))
        .header("host", "collector.example.com")
        .bearer_auth(READ)
        .send()
        .await
        .expect("answered");
    assert_eq!(answer.status(), 200);
}
