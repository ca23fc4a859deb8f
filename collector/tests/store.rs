//! The store contract, run identically against SQLite (a temp file) and PostgreSQL (a fresh
//! database per test on 127.0.0.1:5432, dropped afterwards).

use std::{collections::BTreeMap, sync::Arc};

use jiff::Timestamp;
use outpost_collector::store::{self, ResultQuery, StatusCounts, Store};
use outpost_shared::{
    AgentId, Batch, Birth, CheckId, CheckSpec, GapRecord, HostFacts, HumanDuration, NoteAction,
    NoteRecord, PresenceState, Record, RecordBody, ResultRecord, SiteId, Status,
};

/// A database for one test, removed on drop.
enum Db {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/test";

impl Db {
    fn sqlite() -> Self {
        Self::Sqlite(tempfile::tempdir().expect("temp dir"))
    }

    fn postgres() -> Self {
        let nanos = Timestamp::now().as_nanosecond();
        let name = format!(
            "outpost_store_{}_{}",
            std::process::id(),
            nanos.rem_euclid(1 << 40)
        );
        let mut admin = ::postgres::Client::connect(PG_ADMIN, ::postgres::NoTls).expect(
            "PostgreSQL on 127.0.0.1:5432 (user postgres, trust) is needed for store tests",
        );
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create test database");
        Self::Postgres(name)
    }

    fn url(&self) -> String {
        match self {
            Self::Sqlite(dir) => format!("sqlite://{}/sub/outpost.db", dir.path().display()),
            Self::Postgres(name) => format!("postgres://postgres@127.0.0.1:5432/{name}"),
        }
    }

    fn open(&self) -> Arc<dyn Store> {
        store::open(&self.url()).expect("store opens")
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Self::Postgres(name) = self
            && let Ok(mut admin) = ::postgres::Client::connect(PG_ADMIN, ::postgres::NoTls)
        {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

fn site() -> SiteId {
    SiteId::new("plant-leeds").expect("valid")
}

fn agent() -> AgentId {
    AgentId::new("line3-pc").expect("valid")
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).expect("valid time")
}

fn result(seq: u64, check: &str, status: Status, secs: i64) -> Record {
    Record {
        seq,
        ts: at(secs),
        body: RecordBody::Result(ResultRecord {
            check: CheckId::new(check).expect("valid"),
            status,
            summary: format!("{check} is {status}"),
            metrics: BTreeMap::from([("rtt_ms".to_owned(), 1.5)]),
            historical: false,
        }),
    }
}

fn gap(seq: u64, from_seq: u64, to_seq: u64) -> Record {
    Record {
        seq,
        ts: at(0),
        body: RecordBody::Gap(GapRecord {
            from_seq,
            to_seq,
            dropped: to_seq - from_seq + 1,
            reason: "size".into(),
        }),
    }
}

fn batch(epoch: u64, records: Vec<Record>) -> Batch {
    Batch {
        v: 1,
        site: site(),
        agent: agent(),
        epoch,
        acked: None,
        records,
    }
}

fn results(seqs: impl IntoIterator<Item = u64>) -> Vec<Record> {
    seqs.into_iter()
        .map(|s| result(s, "router", Status::Ok, s as i64))
        .collect()
}

fn new_seqs(store: &dyn Store, b: Batch) -> (Vec<u64>, u64) {
    let out = store.write_batches(&[b], at(100)).expect("write");
    (out[0].new.iter().map(|r| r.seq).collect(), out[0].watermark)
}

fn idempotent_on_the_record_key(db: &Db) {
    let store = db.open();
    assert_eq!(
        new_seqs(&*store, batch(7, results(1..=5))),
        (vec![1, 2, 3, 4, 5], 5)
    );
    // A QoS 1 duplicate of the whole batch: nothing new.
    let out = store
        .write_batches(&[batch(7, results(1..=5))], at(101))
        .expect("write");
    assert_eq!(
        (out[0].new.len(), out[0].duplicates, out[0].watermark),
        (0, 5, 5)
    );
    // A replay overlapping what is stored, out of order, with an in-batch duplicate.
    let replay = batch(7, results([8, 4, 6, 7, 5, 8]));
    assert_eq!(new_seqs(&*store, replay), (vec![6, 7, 8], 8));
    // The same seqs in another epoch are other records.
    assert_eq!(new_seqs(&*store, batch(9, results(1..=2))), (vec![1, 2], 2));
    // Two batches in one write: the second sees the first's records as stored.
    let out = store
        .write_batches(
            &[batch(7, results(9..=10)), batch(7, results(9..=11))],
            at(102),
        )
        .expect("write");
    assert_eq!(out[0].new.len(), 2);
    assert_eq!(
        out[1].new.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![11]
    );
    let stored = store
        .results(&ResultQuery {
            site: Some(site()),
            ..ResultQuery::default()
        })
        .expect("query");
    assert_eq!(stored.len(), 13, "11 of epoch 7, 2 of epoch 9");
    assert_eq!((stored[0].epoch, stored[0].seq), (7, 11), "newest first");
}

fn watermark_is_contiguous(db: &Db) {
    let store = db.open();
    assert_eq!(new_seqs(&*store, batch(1, results(1..=3))).1, 3);
    assert_eq!(
        new_seqs(&*store, batch(1, results(7..=9))).1,
        3,
        "4..6 missing"
    );
    assert_eq!(new_seqs(&*store, batch(1, results(4..=6))).1, 9);
    // Seqs 10..=12 were dropped by the agent; its gap record (seq 14) covers them.
    assert_eq!(new_seqs(&*store, batch(1, results([13]))).1, 9);
    assert_eq!(new_seqs(&*store, batch(1, vec![gap(14, 10, 12)])).1, 14);
    assert_eq!(
        store.watermark(&site(), &agent(), 1).expect("read"),
        Some(14)
    );
    // A hole survives a restart: what is stored above the watermark is reloaded.
    assert_eq!(new_seqs(&*store, batch(1, results([17, 18]))).1, 14);
    drop(store);
    let store = db.open();
    assert_eq!(new_seqs(&*store, batch(1, results([15]))).1, 15);
    assert_eq!(new_seqs(&*store, batch(1, results([16]))).1, 18);
    // A new epoch starts just below the first seq it shows (earlier ones were acked elsewhere).
    assert_eq!(new_seqs(&*store, batch(2, results(50..=51))).1, 51);
    assert_eq!(new_seqs(&*store, batch(3, vec![gap(9, 3, 8)])).1, 9);
    assert_eq!(store.watermark(&site(), &agent(), 4).expect("read"), None);
}

fn the_agents_acked_watermark_decides_where_a_new_epoch_starts(db: &Db) {
    let store = db.open();
    let acked = |epoch, acked, records| Batch {
        acked: Some(acked),
        ..batch(epoch, records)
    };
    // The first batch of a new agent (1..=50) was lost; the second must not ack past it.
    assert_eq!(new_seqs(&*store, acked(5, 0, results(51..=60))).1, 0);
    assert_eq!(new_seqs(&*store, acked(5, 0, results(1..=50))).1, 60);
    // A store restored from an old backup: the agent holds 100 as acknowledged and will never
    // send 61..=100 again, so the watermark moves up to it instead of waiting forever.
    assert_eq!(new_seqs(&*store, acked(5, 100, results(101..=102))).1, 102);
    // An agent too old to say: just below the first seq it shows.
    assert_eq!(new_seqs(&*store, batch(6, results(40..=41))).1, 41);
    // The stored watermark never moves back, whatever an agent claims.
    assert_eq!(new_seqs(&*store, acked(5, 3, results([102]))).1, 102);
    drop(store);
    let store = db.open();
    assert_eq!(
        store.watermark(&site(), &agent(), 5).expect("read"),
        Some(102)
    );
}

fn migrations_are_idempotent(db: &Db) {
    let store = db.open();
    new_seqs(&*store, batch(1, results(1..=2)));
    drop(store);
    for _ in 0..2 {
        let store = db.open();
        assert_eq!(
            store.watermark(&site(), &agent(), 1).expect("read"),
            Some(2)
        );
        assert_eq!(
            store.results(&ResultQuery::default()).expect("read").len(),
            2
        );
    }
}

fn birth() -> Birth {
    Birth {
        v: 1,
        site: site(),
        agent: agent(),
        version: "0.1.0".into(),
        epoch: u64::MAX - 3,
        boot_time: at(-3600),
        started_at: at(-60),
        host: HostFacts {
            hostname: "line3-pc".into(),
            os: "Debian 12".into(),
            ..HostFacts::default()
        },
        checks: vec![CheckSpec {
            id: CheckId::new("router").expect("valid"),
            kind: "ping".into(),
            title: "Main router".into(),
            interval: HumanDuration::from_secs(10),
            fail_after: 3,
            recover_after: 2,
            local_window: HumanDuration::from_secs(900),
            escalate_warn: false,
            runbook: vec!["Switch it off and on.".into()],
            depends_on: vec![],
            thresholds: BTreeMap::from([("fail_loss_pct".to_owned(), 50.0)]),
        }],
    }
}

fn agents_births_and_presence(db: &Db) {
    let store = db.open();
    assert_eq!(store.agents().expect("read"), vec![]);
    store.save_birth(&birth(), at(5)).expect("birth");
    store
        .save_presence(&site(), &agent(), PresenceState::Online, at(6))
        .expect("presence");
    let other = AgentId::new("office-pc").expect("valid");
    store
        .save_presence(&site(), &other, PresenceState::Offline, at(7))
        .expect("presence");
    let agents = store.agents().expect("read");
    assert_eq!(agents.len(), 2);
    assert_eq!(
        (
            agents[1].agent.as_str(),
            agents[1].online,
            agents[1].birth.is_none()
        ),
        ("office-pc", false, true)
    );
    let detail = store
        .agent(&site(), &agent())
        .expect("read")
        .expect("known");
    assert_eq!(
        detail.birth,
        Some(birth()),
        "u64 epoch and catalogue survive"
    );
    assert_eq!(
        (detail.online, detail.birth_at, detail.last_seen),
        (true, Some(at(5)), Some(at(6)))
    );
    assert_eq!(
        store
            .agent(&site(), &AgentId::new("nobody").expect("valid"))
            .expect("read"),
        None
    );
}

fn note(seq: u64, check: Option<&str>, secs: i64) -> Record {
    Record {
        seq,
        ts: at(secs),
        body: RecordBody::Note(NoteRecord {
            check: check.map(|c| CheckId::new(c).expect("valid")),
            by: "Sam".into(),
            text: format!("note {seq}"),
            action: NoteAction::WorkingOnIt,
            until: None,
        }),
    }
}

fn reads_results_latest_and_notes(db: &Db) {
    let store = db.open();
    let records = vec![
        result(1, "router", Status::Ok, 10),
        result(2, "disk", Status::Warn, 11),
        result(3, "router", Status::Fail, 20),
        note(4, Some("router"), 21),
        note(5, None, 22),
        note(6, Some("disk"), 23),
    ];
    store
        .write_batches(&[batch(1, records)], at(30))
        .expect("write");
    // A historical replay older than the newest router result does not become "latest".
    store
        .write_batches(
            &[batch(1, vec![result(7, "router", Status::Ok, 15)])],
            at(31),
        )
        .expect("write");
    let latest = store.latest_results(Some(&site()), None).expect("read");
    let latest: Vec<_> = latest
        .iter()
        .map(|r| (r.result.check.as_str(), r.result.status, r.seq))
        .collect();
    assert_eq!(
        latest,
        vec![("disk", Status::Warn, 2), ("router", Status::Fail, 3)]
    );
    let router = CheckId::new("router").expect("valid");
    let query = ResultQuery {
        site: Some(site()),
        agent: Some(agent()),
        check: Some(router.clone()),
        since: Some(at(12)),
        limit: 0,
    };
    let seqs: Vec<u64> = store
        .results(&query)
        .expect("read")
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, vec![3, 7]);
    let limited = store
        .results(&ResultQuery {
            limit: 1,
            ..ResultQuery::default()
        })
        .expect("read");
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0].result.metrics.get("rtt_ms"), Some(&1.5));
    let notes = store
        .notes(&site(), &agent(), Some(&router), at(0))
        .expect("read");
    assert_eq!(notes.iter().map(|n| n.seq).collect::<Vec<_>>(), vec![4, 5]);
    assert_eq!(notes[0].note.action, NoteAction::WorkingOnIt);
    let recent = store.notes(&site(), &agent(), None, at(22)).expect("read");
    assert_eq!(recent.iter().map(|n| n.seq).collect::<Vec<_>>(), vec![5, 6]);
}

fn prune_keeps_hourly_counts(db: &Db) {
    let store = db.open();
    let hour = 3600;
    let records = vec![
        result(1, "router", Status::Ok, 10),
        result(2, "router", Status::Fail, 20),
        result(3, "router", Status::Fail, 30),
        result(4, "router", Status::Ok, hour + 10),
        result(5, "router", Status::Unknown, 2 * hour + 10),
    ];
    store
        .write_batches(&[batch(1, records)], at(0))
        .expect("write");
    let before = store.hourly_counts(&site(), at(-10 * hour)).expect("read");
    assert_eq!(store.prune(at(hour + 20)).expect("prune"), 4);
    assert_eq!(
        store.prune(at(hour + 20)).expect("prune"),
        0,
        "nothing left to prune"
    );
    let after = store.hourly_counts(&site(), at(-10 * hour)).expect("read");
    assert_eq!(before, after, "downsampled counts equal the raw ones");
    let counts: Vec<StatusCounts> = after.iter().map(|c| c.3).collect();
    assert_eq!(
        counts[0],
        StatusCounts {
            ok: 1,
            warn: 0,
            fail: 2,
            unknown: 0
        }
    );
    assert_eq!(counts.len(), 3);
    assert_eq!(
        store.results(&ResultQuery::default()).expect("read").len(),
        1
    );
    // Replays of pruned records still leave the watermark alone.
    assert_eq!(
        store.watermark(&site(), &agent(), 1).expect("read"),
        Some(5)
    );
}

/// Batches larger than one multi-row statement, mixed with notes and gaps, partly stored.
fn large_batches_cross_statement_chunks(db: &Db) {
    let store = db.open();
    let checks = [
        "router", "switch", "nas", "disk", "memory", "load", "backup",
    ];
    let record = |seq: u64| match seq {
        50 => note(seq, Some("router"), seq as i64),
        120 => gap(seq, 200, 210),
        _ => result(
            seq,
            checks[seq as usize % checks.len()],
            Status::Ok,
            seq as i64,
        ),
    };
    // 1..=40 first, then 1..=150 (40 duplicates, 110 new: 64 + 32 + 8 + 4 + 2 rows of results).
    let first: Vec<Record> = (1..=40).map(record).collect();
    store
        .write_batches(&[batch(3, first)], at(200))
        .expect("write");
    let all: Vec<Record> = (1..=150).map(record).collect();
    let out = store
        .write_batches(&[batch(3, all)], at(201))
        .expect("write");
    let new: Vec<u64> = out[0].new.iter().map(|r| r.seq).collect();
    assert_eq!(
        new,
        (41..=150).collect::<Vec<_>>(),
        "new ones, in seq order"
    );
    assert_eq!(out[0].duplicates, 40);
    assert_eq!(
        out[0].watermark, 150,
        "the gap covers 200..=210, not 151..199"
    );
    let stored = store
        .results(&ResultQuery {
            site: Some(site()),
            ..ResultQuery::default()
        })
        .expect("read");
    assert_eq!(stored.len(), 148, "150 records less one note and one gap");
    // Each check's latest result is its highest seq.
    let latest = store.latest_results(Some(&site()), None).expect("read");
    assert_eq!(latest.len(), checks.len());
    for r in &latest {
        let check = r.result.check.as_str();
        let highest = (1..=150u64)
            .filter(|&s| s != 50 && s != 120 && checks[s as usize % checks.len()] == check)
            .max();
        assert_eq!(Some(r.seq), highest, "{check}");
    }
}

/// A live fleet's write: one record per message, several agents and epochs interleaved in
/// one transaction, with a QoS 1 redelivery and a seq that arrives early. Each batch is told
/// what was new in it, every epoch's watermark is persisted, and each check's latest result
/// is its newest by the agent's time.
fn many_small_batches_in_one_write(db: &Db) {
    let store = db.open();
    let one = |agent: &str, epoch: u64, seq: u64, check: &str, secs: i64| Batch {
        agent: AgentId::new(agent).expect("valid"),
        ..batch(epoch, vec![result(seq, check, Status::Ok, secs)])
    };
    let check = |seq: u64| {
        if seq.is_multiple_of(2) {
            "router"
        } else {
            "backup"
        }
    };
    let agents = ["line1-pc", "line2-pc", "line3-pc"];
    let mut write = Vec::new();
    for seq in 1..=6u64 {
        for a in agents {
            write.push(one(a, 1, seq, check(seq), seq as i64));
        }
    }
    write.push(one("line1-pc", 1, 3, "backup", 3)); // a redelivery
    write.push(one("line2-pc", 2, 1, "router", 1)); // restarted: a new epoch, an older time
    write.push(one("line3-pc", 1, 8, "router", 8)); // before 7
    let out = store.write_batches(&write, at(300)).expect("write");
    assert_eq!(out.len(), write.len(), "one answer per batch, in order");
    for (i, w) in out.iter().enumerate().take(18) {
        assert_eq!((w.new.len(), w.duplicates), (1, 0), "batch {i}");
    }
    assert_eq!(
        (out[18].new.len(), out[18].duplicates),
        (0, 1),
        "the redelivery"
    );
    assert_eq!(out[19].new.len(), 1);
    assert_eq!(
        (out[20].new.len(), out[20].watermark),
        (1, 6),
        "8 waits for 7"
    );
    let mark = |a: &str, epoch| {
        store
            .watermark(&site(), &AgentId::new(a).expect("valid"), epoch)
            .expect("read")
    };
    assert_eq!(
        [
            mark("line1-pc", 1),
            mark("line2-pc", 1),
            mark("line2-pc", 2)
        ],
        [Some(6), Some(6), Some(1)]
    );
    assert_eq!(mark("line3-pc", 1), Some(6));
    let late = store
        .write_batches(&[one("line3-pc", 1, 7, "backup", 7)], at(301))
        .expect("write");
    assert_eq!((late[0].new.len(), late[0].watermark), (1, 8));
    assert_eq!(mark("line3-pc", 1), Some(8));

    let latest: BTreeMap<(String, String), (u64, u64)> = store
        .latest_results(Some(&site()), None)
        .expect("read")
        .into_iter()
        .map(|r| {
            let key = (r.agent.to_string(), r.result.check.to_string());
            (key, (r.epoch, r.seq))
        })
        .collect();
    let expected = |a: &str, c: &str, epoch_seq| ((a.to_owned(), c.to_owned()), epoch_seq);
    assert_eq!(
        latest,
        BTreeMap::from([
            expected("line1-pc", "backup", (1, 5)),
            expected("line1-pc", "router", (1, 6)),
            expected("line2-pc", "backup", (1, 5)),
            expected("line2-pc", "router", (1, 6)), // not epoch 2's older result
            expected("line3-pc", "backup", (1, 7)),
            expected("line3-pc", "router", (1, 8)),
        ])
    );
    let agents_seen: Vec<_> = store
        .agents()
        .expect("read")
        .into_iter()
        .map(|a| (a.agent.to_string(), a.last_seen))
        .collect();
    assert_eq!(
        agents_seen,
        vec![
            ("line1-pc".to_owned(), Some(at(300))),
            ("line2-pc".to_owned(), Some(at(300))),
            ("line3-pc".to_owned(), Some(at(301))),
        ]
    );
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(&super::Db::sqlite()) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name(&super::Db::postgres()) } )*
        }
    };
}

on_both_backends!(
    idempotent_on_the_record_key,
    watermark_is_contiguous,
    the_agents_acked_watermark_decides_where_a_new_epoch_starts,
    migrations_are_idempotent,
    agents_births_and_presence,
    reads_results_latest_and_notes,
    prune_keeps_hourly_counts,
    large_batches_cross_statement_chunks,
    many_small_batches_in_one_write,
);

/// Two collectors on one PostgreSQL store records of the same agent, as a shared
/// subscription hands them out: each sees what the other stored, the watermark only moves
/// over what is really stored, and it never moves back.
#[test]
fn two_collectors_share_one_agents_watermark() {
    let db = Db::postgres();
    let (a, b) = (db.open(), db.open());
    assert_eq!(new_seqs(&*a, batch(1, results(1..=10))).1, 10);
    assert_eq!(
        new_seqs(&*b, batch(1, results(11..=20))).1,
        20,
        "b reads a's work"
    );
    assert_eq!(
        new_seqs(&*a, batch(1, results(31..=40))).1,
        20,
        "a's cache is dropped: b wrote last; 21..=30 are missing"
    );
    assert_eq!(
        new_seqs(&*b, batch(1, results(21..=30))).1,
        40,
        "b learns of 31..=40"
    );
    assert_eq!(new_seqs(&*a, batch(1, results(41..=41))).1, 41);
    // A duplicate of old records through the other collector: nothing new, no step back.
    let (new, mark) = new_seqs(&*b, batch(1, results(5..=6)));
    assert_eq!((new.len(), mark), (0, 41));
    assert_eq!(a.watermark(&site(), &agent(), 1).expect("read"), Some(41));
}

/// The SQLite store copies its WAL into the database file on a thread of its own, soon after
/// writes, long before SQLite's own autocheckpoint (10,000 pages) would in the writer's
/// commit; the store keeps everything while and after it does.
#[test]
fn sqlite_checkpoints_in_the_background() {
    let db = Db::sqlite();
    let store = db.open();
    let Db::Sqlite(dir) = &db else {
        unreachable!("a SQLite test")
    };
    let file = dir.path().join("sub/outpost.db");
    let size = || std::fs::metadata(&file).map_or(0, |m| m.len());
    let empty = size();
    for epoch in 1..=20 {
        store
            .write_batches(&[batch(epoch, results(1..=100))], at(epoch as i64))
            .expect("write");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while size() <= empty && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        size() > empty,
        "the database file still has only its schema ({empty} bytes): nothing was checkpointed"
    );
    let stored = store
        .results(&ResultQuery {
            limit: 10_000,
            ..ResultQuery::default()
        })
        .expect("read");
    assert_eq!(stored.len(), 2_000);
}
