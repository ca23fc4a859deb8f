//! The publisher through a real broker: results flow, the broker goes away while checks keep
//! producing, comes back, and a collector acking on the `ack` topic receives every seq.

use std::{
    collections::BTreeSet,
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use outpost_agent::{
    checks::RunContext,
    config::Config,
    live::Live,
    outbox::OutboxLimits,
    outbox_handle::SharedOutbox,
    publisher::{Publisher, Tuning},
    scheduler::Scheduler,
};
use outpost_shared::PresenceState;
use outpost_tests::Broker;

mod support;
use support::{Seen, collector, wait_for};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_arrives_once_across_a_broker_outage() {
    outpost_agent::install_tls_provider();
    let mut broker = Broker::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let text = format!(
        "site = \"plant-leeds\"\nagent = \"line3-pc\"\n[mqtt]\nurl = \"{}\"\n[outbox]\ndir = \"{}\"\n\
         [[check]]\nid = \"host\"\nkind = \"uptime\"\ntitle = \"This computer\"\ninterval = \"100ms\"\n\
         [[check]]\nid = \"load\"\nkind = \"resources\"\ninterval = \"150ms\"\nwarn_disk_pct = 100\nfail_disk_pct = 100\n",
        broker.url(),
        dir.path().join("outbox").display()
    );
    let config = Arc::new(Config::parse(Path::new("agent.toml"), &text).expect("valid config"));
    let outbox = SharedOutbox::open(
        &config.outbox.dir,
        OutboxLimits {
            max_size: 64 << 20,
            max_age: Duration::from_secs(86_400),
        },
    )
    .expect("outbox opens");
    let live = Live::new(config.catalogue(), Some(outbox.clone()));
    let ctx = RunContext {
        live: live.clone(),
        timezone: jiff::tz::TimeZone::UTC,
        started_at: live.started_at(),
        state_dir: Some(dir.path().to_path_buf()),
    };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let collector = collector(broker.port(), Arc::clone(&seen));

    let cancel = CancellationToken::new();
    let tuning = Tuning {
        stall_after: Duration::from_secs(2),
        backoff_max: Duration::from_millis(500),
        keep_alive: Duration::from_secs(5),
        historical_after: Duration::from_millis(200),
        ..Tuning::default()
    };
    let checks_stop = CancellationToken::new();
    let scheduler =
        tokio::spawn(Scheduler::new(config.checks.clone(), ctx, 8).run(checks_stop.clone()));
    let publisher = tokio::spawn(
        Publisher::new(Arc::clone(&config), outbox.clone(), live.clone(), tuning)
            .run(cancel.clone()),
    );

    let count = || seen.lock().expect("test lock").seqs.len();
    wait_for("the first 10 records", 20, || count() >= 10).await;
    {
        let seen = seen.lock().expect("test lock");
        let birth = seen.birth.as_ref().expect("birth received");
        assert_eq!(birth.epoch, outbox.epoch());
        assert_eq!(birth.checks.len(), 2);
        assert_eq!(seen.state, Some(PresenceState::Online));
    }

    broker.stop();
    let before = outbox.stats().last_seq;
    wait_for("the agent to notice the outage", 10, || {
        live.connection().is_some_and(|c| !c.connected)
    })
    .await;
    wait_for("records made during the outage", 10, || {
        outbox.stats().last_seq >= before + 10
    })
    .await;
    broker.restart();
    wait_for("the reconnect", 20, || {
        live.connection().is_some_and(|c| c.connected)
    })
    .await;

    tokio::time::sleep(Duration::from_millis(300)).await;
    checks_stop.cancel();
    scheduler.await.expect("scheduler ends");
    let last = outbox.stats().last_seq;
    wait_for("the collector's ack to cover everything", 30, || {
        outbox.stats().acked_seq == last
    })
    .await;
    assert_eq!(outbox.stats().pending, 0);

    cancel.cancel();
    publisher
        .await
        .expect("publisher task")
        .expect("publisher ran");
    wait_for("the retained offline state", 10, || {
        seen.lock().expect("test lock").state == Some(PresenceState::Offline)
    })
    .await;
    let seen = seen.lock().expect("test lock");
    let expected: BTreeSet<u64> = (1..=last).collect();
    assert_eq!(
        seen.seqs, expected,
        "every seq exactly once in the collector's store"
    );
    assert!(
        seen.deliveries >= last,
        "{} deliveries for {last} records",
        seen.deliveries
    );
    assert!(
        !seen.historical.is_empty(),
        "records from the outage are marked historical"
    );
    assert!(
        seen.historical.iter().all(|s| *s > before / 2),
        "historical ones come from the backlog"
    );
    collector.abort();
}

/// An agent with no checks on `broker` (records come from notes), its outbox in a temp dir.
fn agent_without_checks(broker: &Broker) -> (tempfile::TempDir, Arc<Config>, SharedOutbox, Live) {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = format!(
        "site = \"plant-leeds\"\nagent = \"line3-pc\"\n[mqtt]\nurl = \"{}\"\n[outbox]\ndir = \"{}\"\n",
        broker.url(),
        dir.path().join("outbox").display()
    );
    let config = Arc::new(Config::parse(Path::new("agent.toml"), &text).expect("valid config"));
    let outbox = SharedOutbox::open(
        &config.outbox.dir,
        OutboxLimits {
            max_size: 16 << 20,
            max_age: Duration::from_secs(3600),
        },
    )
    .expect("outbox opens");
    let live = Live::new(config.catalogue(), Some(outbox.clone()));
    (dir, config, outbox, live)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_batch_is_resent_when_the_watermark_stalls() {
    let broker = Broker::start();
    let (_dir, config, outbox, live) = agent_without_checks(&broker);
    let seen = Arc::new(Mutex::new(Seen {
        lose_batches: 1,
        ..Seen::default()
    }));
    let collector = collector(broker.port(), Arc::clone(&seen));
    for n in 0..20 {
        live.submit_note(
            None,
            "Sam",
            &format!("note {n}"),
            outpost_shared::NoteAction::Note,
            None,
        )
        .await
        .expect("note kept");
    }
    let cancel = CancellationToken::new();
    let tuning = Tuning {
        stall_after: Duration::from_millis(500),
        ..Tuning::default()
    };
    let publisher =
        tokio::spawn(Publisher::new(config, outbox.clone(), live, tuning).run(cancel.clone()));
    wait_for("the resend to fill the gap", 20, || {
        outbox.stats().acked_seq == 20
    })
    .await;
    cancel.cancel();
    publisher
        .await
        .expect("publisher task")
        .expect("publisher ran");
    let seen = seen.lock().expect("test lock");
    assert_eq!(seen.seqs, (1..=20).collect::<BTreeSet<u64>>());
    collector.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_records_do_not_wait_behind_a_replay() {
    let broker = Broker::start();
    let (_dir, config, outbox, live) = agent_without_checks(&broker);
    // A backlog from a long outage, and a collector that works through it slowly (no acks).
    for n in 0..300 {
        live.submit_note(
            None,
            "Sam",
            &format!("old {n}"),
            outpost_shared::NoteAction::Note,
            None,
        )
        .await
        .expect("note kept");
    }
    let seen = Arc::new(Mutex::new(Seen {
        hold_acks: true,
        ..Seen::default()
    }));
    let collector = collector(broker.port(), Arc::clone(&seen));
    let cancel = CancellationToken::new();
    let tuning = Tuning {
        batch_max: 20,
        window: 100,
        stall_after: Duration::from_secs(60),
        ..Tuning::default()
    };
    let publisher = tokio::spawn(
        Publisher::new(config, outbox.clone(), live.clone(), tuning).run(cancel.clone()),
    );
    let count = || seen.lock().expect("test lock").seqs.len();
    wait_for("the window of the backlog", 20, || count() >= 100).await;
    // Something happens now: it goes out at once, though the backlog waits for acks.
    live.submit_note(
        None,
        "Sam",
        "the router is back",
        outpost_shared::NoteAction::Note,
        None,
    )
    .await
    .expect("note kept");
    wait_for("the fresh record", 20, || {
        seen.lock().expect("test lock").seqs.contains(&301)
    })
    .await;
    {
        let seen = seen.lock().expect("test lock");
        assert_eq!(
            seen.seqs,
            (1..=100).chain([301]).collect::<BTreeSet<u64>>(),
            "the backlog stays inside its window; the fresh record jumps it"
        );
    }
    cancel.cancel();
    let _ = publisher.await;
    collector.abort();
}
