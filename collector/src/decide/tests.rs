//! The decision log on real SQLite and PostgreSQL, and the decision task end to end with a
//! real webhook receiver, across a restart.

use std::{
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use outpost_shared::{
    AgentId, CheckId, CheckSpec, EscalationList, EscalationState, HumanDuration, ResultRecord,
    SiteId, Status,
};

use super::*;
use crate::{
    engine::{EngineSettings, Event},
    notify::{NotifierKind, NotifierTarget, Sender},
};

fn site() -> SiteId {
    SiteId::new("plant-leeds").expect("valid")
}
fn agent() -> AgentId {
    AgentId::new("line3-pc").expect("valid")
}

/// The agent says it is online and announces its checks.
fn comes_online() -> Vec<Event> {
    vec![
        Event::Presence {
            site: site(),
            agent: agent(),
            online: true,
            at: Timestamp::now(),
        },
        birth(),
    ]
}

fn birth() -> Event {
    Event::Birth {
        site: site(),
        agent: agent(),
        checks: vec![CheckSpec {
            id: CheckId::new("router").expect("valid"),
            kind: "ping".into(),
            title: "Main router".into(),
            interval: HumanDuration::from_secs(1),
            fail_after: 2,
            recover_after: 1,
            local_window: HumanDuration::from_secs(0),
            escalate_warn: false,
            runbook: vec!["Switch it off and on.".into()],
            depends_on: vec![],
            thresholds: std::collections::BTreeMap::default(),
        }],
        at: Timestamp::now(),
    }
}

fn result(seq: u64, status: Status) -> Event {
    Event::Result {
        site: site(),
        agent: agent(),
        seq,
        ts: Timestamp::now(),
        result: ResultRecord {
            check: CheckId::new("router").expect("valid"),
            status,
            summary: format!("router {status}"),
            metrics: std::collections::BTreeMap::default(),
            historical: false,
        },
        at: Timestamp::now(),
    }
}

#[derive(Default)]
struct Lists(Mutex<Vec<EscalationList>>);

impl EscalationSink for Lists {
    fn publish(&self, list: EscalationList) {
        self.0.lock().expect("test lock").push(list);
    }
}

async fn receiver() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    use axum::{Json, Router, http::StatusCode, routing::post};
    let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let sink = got.clone();
    let app = Router::new().route(
        "/hook",
        post(move |Json(v): Json<serde_json::Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().expect("test lock").push(v);
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), got)
}

async fn decider(
    log: Arc<dyn DecisionLog>,
    store: Arc<dyn Store>,
    url: &str,
    lists: Arc<Lists>,
) -> Decider {
    let reader = log.clone();
    let engine = tokio::task::spawn_blocking(move || {
        assert_eq!(reader.lead("").expect("lead"), Leadership::Leading);
        restore_engine(reader.as_ref(), EngineSettings::default(), Timestamp::now())
    })
    .await
    .expect("task")
    .expect("restore");
    Decider {
        engine: Arc::new(RwLock::new(engine)),
        log,
        sink: lists,
        context: Arc::new(NoContext),
        hub: tokio::sync::broadcast::channel(16).0,
        notifiers: vec![NotifierTarget {
            kind: NotifierKind::Webhook,
            url: url.to_owned(),
            routing_key: None,
        }],
        wake: Arc::new(tokio::sync::Notify::new()),
        dashboard_url: None,
        store,
        role: leading(),
        advertise: String::new(),
        unsaved: Arc::default(),
    }
}

/// A role that decides (as a lone collector does).
fn leading() -> Arc<crate::cluster::Role> {
    let role = crate::cluster::Role::following().expect("HTTP client");
    role.set(&Leadership::Leading);
    Arc::new(role)
}

async fn wait_for(got: &Arc<Mutex<Vec<serde_json::Value>>>, n: usize) {
    for _ in 0..100 {
        if got.lock().expect("test lock").len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn lifecycle_across_restart(
    log_a: Arc<dyn DecisionLog>,
    reopen: impl Fn() -> Arc<dyn DecisionLog>,
) {
    let (url, got) = receiver().await;
    let lists = Arc::new(Lists::default());
    let dir = tempfile::tempdir().expect("temp dir");
    let store = crate::store::open(&format!(
        "sqlite://{}",
        dir.path().join("store.db").display()
    ))
    .expect("a telemetry store");
    let d = decider(log_a.clone(), store.clone(), &url, lists.clone()).await;
    d.step(comes_online()).await;
    d.step(vec![result(1, Status::Fail), result(2, Status::Fail)])
        .await;
    let stats = Arc::new(DeliveryStats::default());
    let cancel = CancellationToken::new();
    let sender = Sender::new(Duration::from_secs(5)).expect("client");
    let task = tokio::spawn(deliver(
        log_a.clone(),
        sender.clone(),
        d.wake.clone(),
        stats.clone(),
        d.role.clone(),
        cancel.clone(),
    ));
    wait_for(&got, 1).await;
    cancel.cancel();
    let _ = task.await;
    assert_eq!(got.lock().expect("test lock").len(), 1);
    assert_eq!(got.lock().expect("test lock")[0]["event"], "escalated");
    assert_eq!(
        got.lock().expect("test lock")[0]["dedup_key"],
        "outpost:plant-leeds:line3-pc:router:1"
    );
    let published = lists
        .0
        .lock()
        .expect("test lock")
        .last()
        .cloned()
        .expect("a list was published");
    assert_eq!(published.escalations[0].state, EscalationState::Escalated);
    // The first collector is gone (with its hold on the decision log).
    drop(d);
    drop(log_a);

    // Restart: the escalation is still open, nothing is re-sent, recovery resolves it once.
    let log_b = reopen();
    let d = decider(log_b.clone(), store, &url, lists).await;
    assert_eq!(d.read().escalations().filter(|e| e.is_open()).count(), 1);
    d.step(vec![result(3, Status::Ok)]).await;
    let cancel = CancellationToken::new();
    let task = tokio::spawn(deliver(
        log_b.clone(),
        sender,
        d.wake.clone(),
        stats,
        d.role.clone(),
        cancel.clone(),
    ));
    wait_for(&got, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    cancel.cancel();
    let _ = task.await;
    let events: Vec<_> = got
        .lock()
        .expect("test lock")
        .iter()
        .map(|v| v["event"].clone())
        .collect();
    assert_eq!(events, ["escalated", "resolved"]);
    let reader = log_b.clone();
    let (backlog, history, esc) = tokio::task::spawn_blocking(move || {
        (
            reader.backlog(),
            reader.notifications_of(1),
            reader.escalation(1),
        )
    })
    .await
    .expect("task");
    assert_eq!(backlog.expect("backlog"), 0);
    let history = history.expect("history");
    assert_eq!(history.len(), 2);
    assert!(history.iter().all(|h| h.sent_at.is_some()));
    let esc = esc.expect("read").expect("stored");
    assert_eq!(esc.fixed_by, Some(outpost_shared::FixedBy::It));
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_lifecycle_across_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("outpost.db");
    let url = format!("sqlite://{}", path.display());
    let first = open_log(&url).expect("open");
    lifecycle_across_restart(first, || open_log(&url).expect("reopen")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_lifecycle_across_restart() {
    let db = tokio::task::spawn_blocking(|| outpost_tests::TempDb::create("outpost_decide"))
        .await
        .expect("setup");
    let url = db.url();
    let u = url.clone();
    let first = tokio::task::spawn_blocking(move || open_log(&u).expect("connect"))
        .await
        .expect("task");
    let reopen = move || {
        let u = url.clone();
        std::thread::spawn(move || open_log(&u).expect("reconnect"))
            .join()
            .expect("thread")
    };
    lifecycle_across_restart(first, reopen).await;
    drop(db);
}

fn queued(escalation_id: u64, event: NotifyEvent, notifier: &str) -> NewNotification {
    NewNotification {
        escalation_id,
        event,
        notifier: notifier.into(),
        dedup_key: format!("outpost:plant-leeds:line3-pc:router:{escalation_id}"),
        url: "http://127.0.0.1:9/hook".into(),
        body: serde_json::json!({ "event": event.as_str() }),
    }
}

/// A notification that keeps failing holds the later ones of its escalation at the same
/// notifier, and nothing else: a resolve never reaches PagerDuty before its trigger.
fn later_events_wait_for_earlier_ones(log: &dyn DecisionLog) {
    use NotifyEvent::{Escalated, Resolved};
    assert_eq!(log.lead("").expect("lead"), Leadership::Leading);
    let now = Timestamp::now();
    log.save(&Step {
        agents: vec![],
        checks: vec![],
        escalations: vec![],
        maintenance: vec![],
        next_id: 10,
        notifications: vec![
            queued(1, NotifyEvent::Escalated, "pagerduty#0"),
            queued(1, NotifyEvent::Escalated, "webhook#1"),
            queued(1, NotifyEvent::Resolved, "pagerduty#0"),
            queued(1, NotifyEvent::Resolved, "webhook#1"),
            queued(2, NotifyEvent::Escalated, "pagerduty#0"),
        ],
        at: now,
    })
    .expect("save");
    let due = |at| -> Vec<(u64, NotifyEvent, String)> {
        log.due(at, 100)
            .expect("due")
            .into_iter()
            .map(|q| {
                let n = q.notification;
                (n.escalation_id, n.event, n.notifier)
            })
            .collect()
    };
    let ids = |at| -> Vec<i64> {
        log.due(at, 100)
            .expect("due")
            .iter()
            .map(|q| q.id)
            .collect()
    };
    assert_eq!(
        due(now),
        [
            (1, Escalated, "pagerduty#0".to_owned()),
            (1, Escalated, "webhook#1".to_owned()),
            (2, Escalated, "pagerduty#0".to_owned()),
        ]
    );
    let first = ids(now);
    // PagerDuty refuses the page for a while; the webhook gets both of its events in turn.
    let later = crate::engine::add(now, Duration::from_secs(60));
    log.failed(first[0], "503", later).expect("failed");
    log.delivered(first[1], now).expect("delivered");
    assert_eq!(
        due(now),
        [
            (1, Resolved, "webhook#1".to_owned()),
            (2, Escalated, "pagerduty#0".to_owned()),
        ],
        "the resolve waits behind PagerDuty's failed page"
    );
    assert_eq!(due(later)[0], (1, Escalated, "pagerduty#0".to_owned()));
    log.delivered(first[0], later).expect("delivered");
    assert!(due(later).contains(&(1, Resolved, "pagerduty#0".to_owned())));
}

#[test]
fn sqlite_later_events_wait_for_earlier_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("outpost.db").display());
    later_events_wait_for_earlier_ones(&*open_log(&url).expect("open"));
}

#[test]
fn postgres_later_events_wait_for_earlier_ones() {
    let db = outpost_tests::TempDb::create("outpost_order");
    let log = open_log(&db.url()).expect("connect");
    later_events_wait_for_earlier_ones(&*log);
    drop(log);
    drop(db);
}

/// Two collectors on one PostgreSQL: one decides, the other is refused every save and learns
/// where the leader answers; when the leader's session ends, the other takes over.
#[test]
fn postgres_one_collector_decides_at_a_time() {
    let db = outpost_tests::TempDb::create("outpost_lead");
    let a = open_log(&db.url()).expect("connect a");
    let b = open_log(&db.url()).expect("connect b");
    assert_eq!(a.lead("http://a:9480").expect("a"), Leadership::Leading);
    assert_eq!(
        b.lead("http://b:9480").expect("b"),
        Leadership::Following {
            leader: Some("http://a:9480".into())
        }
    );
    assert_eq!(
        a.lead("http://a:9480").expect("a again"),
        Leadership::Leading
    );
    let step = Step {
        agents: vec![],
        checks: vec![],
        escalations: vec![],
        maintenance: vec![],
        next_id: 7,
        notifications: vec![queued(1, NotifyEvent::Escalated, "webhook#0")],
        at: Timestamp::now(),
    };
    assert!(matches!(b.save(&step), Err(LogError::NotLeader)));
    a.save(&step).expect("the leader saves");
    drop(a); // its process died: the server ends the session and its lock
    let mut took_over = false;
    for _ in 0..50 {
        if b.lead("http://b:9480").expect("b") == Leadership::Leading {
            took_over = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(took_over, "the follower takes over");
    b.save(&step).expect("the new leader saves");
    assert_eq!(b.backlog().expect("backlog"), 2, "one per save, none lost");
    drop(b);
    drop(db);
}

/// A decision log whose first saves fail (the database restarts).
struct Flaky {
    inner: Arc<dyn DecisionLog>,
    failures: std::sync::atomic::AtomicU32,
}

impl DecisionLog for Flaky {
    fn lead(&self, advertise: &str) -> Result<Leadership, LogError> {
        self.inner.lead(advertise)
    }
    fn load(&self, since: Timestamp) -> Result<Snapshot, LogError> {
        self.inner.load(since)
    }
    fn save(&self, step: &Step) -> Result<(), LogError> {
        let left = self.failures.load(std::sync::atomic::Ordering::SeqCst);
        if left > 0 {
            self.failures
                .store(left - 1, std::sync::atomic::Ordering::SeqCst);
            return Err(LogError::Url("the database is restarting".into()));
        }
        self.inner.save(step)
    }
    fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<QueuedNotification>, LogError> {
        self.inner.due(now, limit)
    }
    fn delivered(&self, id: i64, at: Timestamp) -> Result<(), LogError> {
        self.inner.delivered(id, at)
    }
    fn failed(&self, id: i64, error: &str, retry_at: Timestamp) -> Result<(), LogError> {
        self.inner.failed(id, error, retry_at)
    }
    fn backlog(&self) -> Result<u64, LogError> {
        self.inner.backlog()
    }
    fn escalations_since(&self, since: Timestamp) -> Result<Vec<Escalation>, LogError> {
        self.inner.escalations_since(since)
    }
    fn escalation(&self, id: u64) -> Result<Option<Escalation>, LogError> {
        self.inner.escalation(id)
    }
    fn notifications_of(&self, id: u64) -> Result<Vec<NotificationLogEntry>, LogError> {
        self.inner.notifications_of(id)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_step_that_could_not_be_saved_goes_out_with_the_next() {
    let dir = tempfile::tempdir().expect("temp dir");
    let inner =
        open_log(&format!("sqlite://{}", dir.path().join("log.db").display())).expect("open");
    let log: Arc<dyn DecisionLog> = Arc::new(Flaky {
        inner: inner.clone(),
        failures: std::sync::atomic::AtomicU32::new(2),
    });
    let store = crate::store::open(&format!(
        "sqlite://{}",
        dir.path().join("store.db").display()
    ))
    .expect("store");
    let d = decider(log, store, "http://127.0.0.1:9/hook", Arc::default()).await;
    d.step(comes_online()).await; // save 1 fails
    d.step(vec![result(1, Status::Fail), result(2, Status::Fail)])
        .await; // save 2 fails: IT's page waits in memory
    let reader = inner.clone();
    let queued = move || reader.backlog().expect("backlog");
    assert_eq!(
        tokio::task::spawn_blocking(queued.clone())
            .await
            .expect("task"),
        0
    );
    d.step(vec![Event::Tick {
        now: Timestamp::now(),
    }])
    .await; // nothing new, but what waits is saved
    assert_eq!(
        tokio::task::spawn_blocking(queued).await.expect("task"),
        1,
        "the page of the escalation opened while the database was away"
    );
    let reader = inner.clone();
    let snapshot = tokio::task::spawn_blocking(move || reader.load(Timestamp::now()))
        .await
        .expect("task")
        .expect("load");
    assert_eq!(
        snapshot.agents.len(),
        1,
        "the agent from the first failed save"
    );
    assert_eq!(snapshot.escalations.len(), 1);
}

/// A collector whose PostgreSQL session ends (the database restarted, the network cut it
/// off) while another has taken the lock stands down: it stops deciding, empties its engine
/// and queues what it stores for the new leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_leader_that_lost_its_session_stands_down() {
    let db = tokio::task::spawn_blocking(|| outpost_tests::TempDb::create("outpost_down"))
        .await
        .expect("setup");
    let url = db.url();
    let u = url.clone();
    let log = tokio::task::spawn_blocking(move || open_log(&u).expect("connect"))
        .await
        .expect("task");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = crate::store::open(&format!(
        "sqlite://{}",
        dir.path().join("store.db").display()
    ))
    .expect("store");
    let d = Arc::new(decider(log, store, "http://127.0.0.1:9/hook", Arc::default()).await);
    d.step(vec![birth()]).await;
    assert!(d.role.leading());
    // The server ends every session of the database; another collector takes the lock.
    let (u, name) = (
        url.clone(),
        url.rsplit('/').next().unwrap_or_default().to_owned(),
    );
    let other = tokio::task::spawn_blocking(move || {
        let mut admin =
            ::postgres::Client::connect(&outpost_tests::pg::server(), ::postgres::NoTls)
                .expect("admin");
        // The first collector's own leadership loop may reconnect and take the lock back
        // between the cut and the other's bid (CI lost that race once): cut again and bid
        // again until the other holds it.
        let mut last = None;
        for _ in 0..50 {
            admin
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                    &[&name],
                )
                .expect("terminate");
            let other = open_log(&u).expect("connect");
            match other.lead("http://b:9480").expect("lead") {
                Leadership::Leading => return other,
                following @ Leadership::Following { .. } => last = Some(following),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the other collector never took the lock: {last:?}");
    })
    .await
    .expect("task");
    let leader = d.clone();
    tokio::time::timeout(
        Duration::from_secs(20),
        tokio::spawn(async move { leader.lead().await }),
    )
    .await
    .expect("standing down does not hang")
    .expect("task");
    assert!(!d.role.leading(), "it stood down");
    assert_eq!(d.read().agents().count(), 0, "its engine was emptied");
    let d = Arc::try_unwrap(d).ok().expect("one owner");
    drop(d);
    drop(other);
    drop(db);
}

/// Collectors before this one kept the decision log inside the SQLite store's file: the
/// first start with its own file copies it over, once, and nothing is lost.
#[tokio::test(flavor = "multi_thread")]
async fn a_log_kept_in_the_store_file_is_adopted_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("outpost.db");
    let url = format!("sqlite://{}", path.display());
    let store = crate::store::open(&url).expect("store");
    let earlier: Arc<dyn DecisionLog> =
        Arc::new(SqliteLog::open(&path).expect("a log inside the store's file"));
    let d = decider(
        earlier.clone(),
        store,
        "http://127.0.0.1:9/hook",
        Arc::default(),
    )
    .await;
    d.step(comes_online()).await;
    d.step(vec![result(1, Status::Fail), result(2, Status::Fail)])
        .await;
    drop(d);
    let summary = |s: Snapshot| {
        let ids: Vec<u64> = s.escalations.iter().map(|e| e.id).collect();
        (ids, s.checks.len(), s.agents.len(), s.next_id)
    };
    let before = summary(earlier.load(Timestamp::UNIX_EPOCH).expect("load"));
    assert_eq!(before.0.len(), 1, "the failing check escalated: {before:?}");
    drop(earlier);

    let log = open_log(&url).expect("open beside the store");
    assert!(dir.path().join("outpost-decisions.db").exists());
    assert_eq!(
        summary(log.load(Timestamp::UNIX_EPOCH).expect("load")),
        before
    );
    assert_eq!(
        log.notifications_of(before.0[0]).expect("read").len(),
        1,
        "the queued notification came along"
    );
    drop(log);
    let again = open_log(&url).expect("reopen");
    assert_eq!(
        summary(again.load(Timestamp::UNIX_EPOCH).expect("load")),
        before,
        "copied once, not again"
    );
}

#[test]
fn the_log_file_sits_beside_the_store() {
    let cases = [
        (
            "/var/lib/outpost/outpost.db",
            "/var/lib/outpost/outpost-decisions.db",
        ),
        ("./data/store", "./data/store-decisions"),
        ("a.sqlite3", "a-decisions.sqlite3"),
    ];
    for (store, log) in cases {
        assert_eq!(
            super::sqlite::beside(std::path::Path::new(store)),
            std::path::PathBuf::from(log)
        );
    }
}
