//! The fault suite's plant: a broker, a collector with a webhook receiver, one agent, and the
//! oracle that reconciles what the agent produced with what the collector stored.

use std::{
    collections::BTreeSet,
    path::Path,
    time::{Duration, Instant},
};

use outpost_agent::outbox::{Outbox, OutboxLimits};
use outpost_tests::{Broker, CollectorProcess, Receiver};

pub const SITE: &str = "plant-leeds";
pub const AGENT: &str = "line3-pc";

/// A collector config on `broker` with a webhook to `hook`; `escalation` is extra lines for
/// the `[escalation]` table, `top` extra top-level lines.
pub fn collector_config(broker: &Broker, hook: &Receiver, top: &str, escalation: &str) -> String {
    format!(
        "{top}\n[mqtt]\nurl = \"{}\"\n[store]\nurl = \"sqlite://{{dir}}/outpost.db\"\n\
         [http]\nlisten = \"{{http}}\"\n[escalation]\noffline_window = \"2s\"\nreminder = \"0s\"\n\
         {escalation}\n[[notifier]]\nkind = \"webhook\"\nurl = \"{}\"\n",
        broker.url(),
        hook.url()
    )
}

/// An agent config on `broker` with an outbox bound of `max_size` and `checks` (TOML
/// `[[check]]` tables).
pub fn agent_config(broker: &Broker, max_size: &str, checks: &str) -> String {
    format!(
        "site = \"{SITE}\"\nagent = \"{AGENT}\"\n[mqtt]\nurl = \"{}\"\n[local]\nlisten = \"{{local}}\"\n\
         [outbox]\ndir = \"{{outbox}}\"\nmax_size = \"{max_size}\"\n{checks}",
        broker.url()
    )
}

#[allow(clippy::format_collect, reason = "a few test config tables")]
/// `count` cheap `uptime` checks (`up0`, `up1`, ...) running every `interval`.
pub fn uptime_checks(count: usize, interval: &str) -> String {
    (0..count)
        .map(|i| {
            format!(
                "[[check]]\nid = \"up{i}\"\nkind = \"uptime\"\ntitle = \"This computer {i}\"\n\
                 interval = \"{interval}\"\n"
            )
        })
        .collect()
}

/// One row of the store as the oracle needs it.
#[derive(Debug, Clone)]
pub struct StoredResult {
    pub ts: jiff::Timestamp,
    pub check: String,
    pub historical: bool,
    pub status: String,
    pub metrics: serde_json::Value,
}

/// A stored `gap` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGap {
    pub seq: u64,
    pub from_seq: u64,
    pub to_seq: u64,
    pub dropped: u64,
    pub reason: String,
}

/// The collector's SQLite store, read beside the running collector.
pub struct Store {
    conn: rusqlite::Connection,
}

impl Store {
    /// Opens the collector's database read-only.
    pub fn open(collector: &CollectorProcess) -> Self {
        let path = collector.dir().join("outpost.db");
        let conn = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .expect("the collector's SQLite store opens read-only");
        conn.busy_timeout(Duration::from_secs(5))
            .expect("setting a busy timeout");
        Self { conn }
    }

    fn query<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Vec<T> {
        let mut stmt = self.conn.prepare(sql).expect("valid oracle SQL");
        stmt.query_map(params, row)
            .expect("oracle query runs")
            .collect::<Result<Vec<T>, _>>()
            .expect("oracle rows decode")
    }

    /// The epochs this agent has records in.
    pub fn epochs(&self) -> BTreeSet<u64> {
        self.query(
            "SELECT epoch FROM results WHERE site = ?1 AND agent = ?2
             UNION SELECT epoch FROM gaps WHERE site = ?1 AND agent = ?2
             UNION SELECT epoch FROM notes WHERE site = ?1 AND agent = ?2",
            [SITE, AGENT],
            |r| r.get::<_, i64>(0),
        )
        .into_iter()
        .map(|e| e as u64)
        .collect()
    }

    /// Every stored seq of `epoch` across results, notes and gaps, sorted, repeats kept.
    pub fn seqs(&self, epoch: u64) -> Vec<u64> {
        let mut seqs: Vec<u64> = self
            .query(
                "SELECT seq FROM results WHERE site = ?1 AND agent = ?2 AND epoch = ?3
                 UNION ALL SELECT seq FROM gaps WHERE site = ?1 AND agent = ?2 AND epoch = ?3
                 UNION ALL SELECT seq FROM notes WHERE site = ?1 AND agent = ?2 AND epoch = ?3",
                rusqlite::params![SITE, AGENT, epoch as i64],
                |r| r.get::<_, i64>(0),
            )
            .into_iter()
            .map(|s| s as u64)
            .collect();
        seqs.sort_unstable();
        seqs
    }

    /// Stored results of `epoch` in seq order.
    pub fn results(&self, epoch: u64) -> Vec<StoredResult> {
        self.query(
            "SELECT ts_us, check_id, historical, status, metrics FROM results
             WHERE site = ?1 AND agent = ?2 AND epoch = ?3 ORDER BY seq",
            rusqlite::params![SITE, AGENT, epoch as i64],
            |r| {
                Ok(StoredResult {
                    ts: jiff::Timestamp::from_microsecond(r.get(0)?)
                        .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
                    check: r.get(1)?,
                    historical: r.get(2)?,
                    status: r.get(3)?,
                    metrics: serde_json::from_str(&r.get::<_, String>(4)?)
                        .unwrap_or(serde_json::Value::Null),
                })
            },
        )
    }

    /// Stored gap records of `epoch` in seq order.
    pub fn gaps(&self, epoch: u64) -> Vec<StoredGap> {
        self.query(
            "SELECT seq, from_seq, to_seq, dropped, reason FROM gaps
             WHERE site = ?1 AND agent = ?2 AND epoch = ?3 ORDER BY seq",
            rusqlite::params![SITE, AGENT, epoch as i64],
            |r| {
                Ok(StoredGap {
                    seq: r.get::<_, i64>(0)? as u64,
                    from_seq: r.get::<_, i64>(1)? as u64,
                    to_seq: r.get::<_, i64>(2)? as u64,
                    dropped: r.get::<_, i64>(3)? as u64,
                    reason: r.get(4)?,
                })
            },
        )
    }

    /// The collector's committed watermark for `epoch`.
    pub fn watermark(&self, epoch: u64) -> Option<u64> {
        self.query(
            "SELECT seq FROM watermarks WHERE site = ?1 AND agent = ?2 AND epoch = ?3",
            rusqlite::params![SITE, AGENT, epoch as i64],
            |r| r.get::<_, i64>(0),
        )
        .first()
        .map(|s| *s as u64)
    }

    /// Rows of every record table for any site (hostile-input test: must stay empty).
    pub fn total_rows(&self) -> u64 {
        self.query(
            "SELECT (SELECT COUNT(*) FROM results) + (SELECT COUNT(*) FROM gaps)
                  + (SELECT COUNT(*) FROM notes)",
            [],
            |r| r.get::<_, i64>(0),
        )
        .first()
        .map_or(0, |n| *n as u64)
    }
}

/// What the agent's outbox holds, read while the agent is stopped.
#[derive(Debug)]
pub struct OutboxView {
    pub epoch: u64,
    pub last_seq: u64,
    pub acked_seq: u64,
    /// Seqs still waiting for the collector.
    pub pending: Vec<u64>,
    /// Gap records among the pending ones.
    pub pending_gaps: Vec<StoredGap>,
    /// (check, time) of the pending results.
    pub pending_results: Vec<(String, jiff::Timestamp)>,
}

/// Opens the stopped agent's outbox (with the bound it ran with) and reads its figures.
pub fn outbox_view(dir: &Path, max_size: u64) -> OutboxView {
    let limits = OutboxLimits {
        max_size,
        max_age: Duration::from_secs(7 * 86_400),
    };
    let outbox = Outbox::open(dir, limits).expect("the stopped agent's outbox opens");
    let stats = outbox.stats();
    let pending = outbox
        .pending(stats.acked_seq, 1_000_000)
        .expect("pending records read");
    let pending_gaps = pending
        .iter()
        .filter_map(|r| match &r.body {
            outpost_shared::RecordBody::Gap(g) => Some(StoredGap {
                seq: r.seq,
                from_seq: g.from_seq,
                to_seq: g.to_seq,
                dropped: g.dropped,
                reason: g.reason.clone(),
            }),
            _ => None,
        })
        .collect();
    let pending_results = pending
        .iter()
        .filter_map(|r| r.as_result().map(|res| (res.check.to_string(), r.ts)))
        .collect();
    OutboxView {
        pending_results,
        epoch: outbox.epoch(),
        last_seq: stats.last_seq,
        acked_seq: stats.acked_seq,
        pending: pending.iter().map(|r| r.seq).collect(),
        pending_gaps,
    }
}

/// Polls `done` every 100 ms until it holds; panics with `what` and `context()` after `secs`.
pub async fn wait_for(
    what: &str,
    secs: u64,
    mut done: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}\n{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the store holds a result made after `after` and the watermark covers every
/// stored seq: the agent is live again and nothing is in flight.
pub async fn wait_caught_up(store: &Store, epoch: u64, after: jiff::Timestamp, secs: u64) {
    wait_for(
        "the collector to catch up with the agent",
        secs,
        || {
            let seqs = store.seqs(epoch);
            let live = store.results(epoch).iter().any(|r| r.ts > after);
            live && seqs.last().copied() == store.watermark(epoch)
        },
        || {
            format!(
                "watermark {:?}, stored {} seqs up to {:?}",
                store.watermark(epoch),
                store.seqs(epoch).len(),
                store.seqs(epoch).last()
            )
        },
    )
    .await;
}

/// Seqs in `1..=last` that are neither stored nor pending.
pub fn missing(last: u64, stored: &[u64], pending: &[u64]) -> Vec<u64> {
    let have: BTreeSet<u64> = stored.iter().chain(pending).copied().collect();
    (1..=last).filter(|s| !have.contains(s)).collect()
}

/// Asserts the seqs are strictly increasing (each stored once).
pub fn assert_each_once(seqs: &[u64]) {
    let dups: Vec<u64> = seqs
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    assert!(dups.is_empty(), "seqs stored more than once: {dups:?}");
}

/// Webhook bodies about `check`, as (event, dedup key).
pub fn hook_events(hook: &Receiver, check: &str) -> Vec<(String, String)> {
    hook.bodies()
        .iter()
        .filter(|b| b["check"] == check)
        .map(|b| {
            (
                b["event"].as_str().unwrap_or_default().to_owned(),
                b["dedup_key"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The collector's `/metrics` text.
pub async fn metrics(collector: &CollectorProcess) -> String {
    reqwest::get(format!("{}/metrics", collector.url()))
        .await
        .expect("the collector answers /metrics")
        .text()
        .await
        .expect("metrics text")
}

/// The value of one sample line `name` (with labels) in a Prometheus text.
pub fn sample(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A new plant: broker, webhook receiver and collector (started).
pub async fn plant(top: &str, escalation: &str) -> (Broker, Receiver, CollectorProcess) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let broker = Broker::start();
    let hook = Receiver::start().await;
    let collector = CollectorProcess::start(&collector_config(&broker, &hook, top, escalation));
    (broker, hook, collector)
}

/// A namespace host on its own veth link (a site router, or the site's LAN with the agent in
/// it), or `None` (with a message) where namespaces cannot be made.
pub fn router() -> Option<outpost_tests::netns::Router> {
    if let Some(why) = outpost_tests::netns::unavailable() {
        eprintln!("SKIPPED: {why}");
        return None;
    }
    Some(
        outpost_tests::netns::Router::create()
            .unwrap_or_else(|e| panic!("building the namespace: {e}")),
    )
}

/// The results made between `from` and `to` (the part of an outage when nothing got
/// through): at least `min` of them, every one stored as historical. Returns how many.
pub fn assert_replayed_as_history(
    store: &Store,
    epoch: u64,
    from: jiff::Timestamp,
    to: jiff::Timestamp,
    min: usize,
) -> usize {
    let results = store.results(epoch);
    let during: Vec<_> = results
        .iter()
        .filter(|r| r.ts > from && r.ts < to)
        .collect();
    assert!(
        during.len() >= min,
        "results made during the outage: {}",
        during.len()
    );
    assert!(
        during.iter().all(|r| r.historical),
        "results made during the outage are marked historical"
    );
    during.len()
}

/// One agent-offline escalation, resolved on return: opened, escalated, resolved, one key.
pub fn assert_one_offline_escalation(events: &[(String, String)], context: &str) {
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        names,
        ["opened", "escalated", "resolved"],
        "one agent-offline escalation: {events:?}\n{context}"
    );
    assert!(
        events.iter().all(|(_, k)| *k == events[0].1),
        "one dedup key"
    );
}
