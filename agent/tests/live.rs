//! Live state: notes, heartbeat reports and checklist confirmations reach the outbox and the
//! checks that read them.

use std::{path::Path, sync::Arc, time::Duration};

use outpost_agent::{
    checks::{RunContext, run_guarded},
    config::Config,
    live::{Live, LiveError},
    outbox::OutboxLimits,
    outbox_handle::SharedOutbox,
};
use outpost_shared::{NoteAction, RecordBody, Status};

fn setup(dir: &Path) -> (Config, SharedOutbox, Live) {
    let text = "site = \"s\"\nagent = \"a\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:1\"\n\
        [[check]]\nid = \"job\"\nkind = \"heartbeat\"\ntitle = \"The backup job\"\nperiod = \"1d\"\n\
        [[check]]\nid = \"cages\"\nkind = \"checklist\"\ntitle = \"Robot cages\"\ndue = \"00:00\"\ngrace = \"23h59m\"\n";
    let config = Config::parse(Path::new("a.toml"), text).expect("valid");
    let outbox = SharedOutbox::open(
        &dir.join("outbox"),
        OutboxLimits {
            max_size: 16 << 20,
            max_age: Duration::from_secs(3600),
        },
    )
    .expect("outbox");
    let live = Live::new(config.catalogue(), Some(outbox.clone()));
    (config, outbox, live)
}

#[tokio::test]
async fn notes_and_confirmations_go_to_the_outbox() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_config, outbox, live) = setup(dir.path());
    let seq = live
        .submit_note(
            Some("job"),
            "Sam",
            "Swapped the backup disk.",
            NoteAction::Note,
            None,
        )
        .await
        .expect("note kept");
    let confirmed = live
        .confirm_checklist("cages", "Sam")
        .await
        .expect("confirmed");
    assert_eq!(confirmed, seq + 1);
    let records = outbox.pending(0, 10).await.expect("pending");
    assert_eq!(records.len(), 2);
    let RecordBody::Note(note) = &records[1].body else {
        panic!("a note")
    };
    assert_eq!(note.action, NoteAction::ChecklistDone);
    assert_eq!(
        note.check.as_ref().map(outpost_shared::CheckId::as_str),
        Some("cages")
    );

    assert!(matches!(
        live.submit_note(Some("nope"), "Sam", "x", NoteAction::Note, None)
            .await,
        Err(LiveError::UnknownCheck(_))
    ));
    assert!(matches!(
        live.submit_note(None, " ", "x", NoteAction::Note, None)
            .await,
        Err(LiveError::Invalid(_))
    ));
    assert!(matches!(
        live.submit_note(None, "Sam", "x", NoteAction::PlannedWork, None)
            .await,
        Err(LiveError::Invalid(_))
    ));
    assert!(matches!(
        live.confirm_checklist("job", "Sam").await,
        Err(LiveError::WrongKind { .. })
    ));
    assert!(matches!(
        live.report_heartbeat("cages", Status::Ok, None),
        Err(LiveError::WrongKind { .. })
    ));
}

#[tokio::test]
async fn heartbeat_reports_drive_the_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (config, _outbox, live) = setup(dir.path());
    let ctx = RunContext {
        live: live.clone(),
        timezone: jiff::tz::TimeZone::UTC,
        started_at: live.started_at(),
        state_dir: None,
    };
    let job = Arc::clone(&config.checks[0]);
    let waiting = run_guarded(Arc::clone(&job), ctx.clone()).await;
    assert_eq!(waiting.status, Status::Ok);
    assert!(
        waiting.summary.contains("Waiting for the first report"),
        "{}",
        waiting.summary
    );
    live.report_heartbeat("job", Status::Fail, Some("disk full".into()))
        .expect("report");
    let failed = run_guarded(Arc::clone(&job), ctx.clone()).await;
    assert_eq!(failed.status, Status::Fail);
    assert!(failed.summary.ends_with("disk full"), "{}", failed.summary);
    live.report_heartbeat("job", Status::Ok, None)
        .expect("report");
    assert_eq!(run_guarded(job, ctx.clone()).await.status, Status::Ok);

    // Due at 00:00 with 23h59m grace: always "due, in grace" except in the last minute of
    // the day (UTC), when the deadline has passed.
    if jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .hour()
        == 23
        && jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .minute()
            == 59
    {
        return;
    }
    let cages = Arc::clone(&config.checks[1]);
    let due = run_guarded(Arc::clone(&cages), ctx.clone()).await;
    assert_eq!(due.status, Status::Warn, "{}", due.summary);
    live.confirm_checklist("cages", "Sam")
        .await
        .expect("confirm");
    let done = run_guarded(cages, ctx).await;
    assert_eq!(done.status, Status::Ok, "{}", done.summary);
    assert!(
        done.summary.contains("confirmed by Sam"),
        "{}",
        done.summary
    );
}

#[tokio::test]
async fn results_keep_since_until_the_status_changes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (config, _outbox, live) = setup(dir.path());
    let id = &config.checks[0].common().id;
    let t = |s: i64| jiff::Timestamp::from_second(1_780_000_000 + s).expect("valid");
    let ok = outpost_agent::checks::Outcome::new(Status::Ok, "fine");
    let bad = outpost_agent::checks::Outcome::new(Status::Fail, "broken");
    live.record_result(id, t(0), &ok);
    live.record_result(id, t(10), &ok);
    assert_eq!(live.result(id).map(|r| r.since), Some(t(0)));
    live.record_result(id, t(20), &bad);
    assert_eq!(
        live.result(id).map(|r| (r.since, r.ts)),
        Some((t(20), t(20)))
    );
    let snapshot = serde_json::to_value(live.snapshot()).expect("serializes");
    assert_eq!(snapshot["results"]["job"]["status"], "fail");
}

#[tokio::test]
async fn reports_and_confirmations_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (config, outbox, _) = setup(dir.path());
    let file = dir.path().join("site-memory.json");
    let live = Live::persistent(config.catalogue(), Some(outbox.clone()), file.clone());
    live.report_heartbeat("job", Status::Ok, Some("12 GB copied".into()))
        .expect("report");
    live.confirm_checklist("cages", "Sam")
        .await
        .expect("confirmed");
    let (job, cages) = (
        outpost_shared::CheckId::new("job").expect("id"),
        outpost_shared::CheckId::new("cages").expect("id"),
    );
    let report = live.heartbeat(&job).expect("reported");
    drop(live);

    // The agent restarts: the same file, a fresh live state.
    let again = Live::persistent(config.catalogue(), Some(outbox.clone()), file.clone());
    assert_eq!(again.heartbeat(&job), Some(report));
    let confirmed = again.confirmations(&cages);
    assert_eq!(confirmed.len(), 1);
    assert_eq!(confirmed[0].by, "Sam");

    // A damaged file is reported and ignored: the agent starts with nothing remembered.
    std::fs::write(&file, b"{ not json").expect("damage");
    let fresh = Live::persistent(config.catalogue(), Some(outbox), file);
    assert!(fresh.heartbeat(&job).is_none());
    assert!(fresh.confirmations(&cages).is_empty());
}
