//! The page's sentences for each escalation state and connection state.

use std::collections::BTreeMap;

use jiff::{Timestamp, tz::TimeZone};
use outpost_shared::{
    AgentId, CheckId, CheckSpec, EscalationKind, EscalationList, EscalationState, EscalationView,
    HumanDuration, SiteId, Status,
};

use super::build;
use crate::{
    live::{Connection, LiveResult, Snapshot},
    outbox::OutboxStats,
    site_page::memory::SiteMemory,
};

fn at(text: &str) -> Timestamp {
    text.parse().expect("test timestamp")
}

fn spec(id: &str) -> CheckSpec {
    CheckSpec {
        id: CheckId::new(id).expect("valid id"),
        kind: "ping".into(),
        title: format!("The {id}"),
        interval: HumanDuration::from_secs(10),
        fail_after: 3,
        recover_after: 2,
        local_window: HumanDuration::from_secs(900),
        escalate_warn: false,
        runbook: vec!["Look at the lights.".into(), "Switch it off and on.".into()],
        depends_on: Vec::new(),
        thresholds: BTreeMap::new(),
    }
}

fn snapshot(status: Status, escalation: Option<EscalationView>) -> Snapshot {
    let since = at("2025-03-03T10:12:00Z");
    let mut results = BTreeMap::new();
    for (id, status) in [("router", status), ("host", Status::Ok)] {
        results.insert(
            CheckId::new(id).expect("valid id"),
            LiveResult {
                ts: since,
                status,
                summary: format!("{id} summary"),
                metrics: BTreeMap::new(),
                since,
            },
        );
    }
    Snapshot {
        started_at: since,
        checks: vec![spec("host"), spec("router")],
        results,
        heartbeats: BTreeMap::new(),
        confirmations: BTreeMap::new(),
        escalations: escalation.map(|e| EscalationList {
            v: 1,
            site: SiteId::new("s").expect("valid id"),
            agent: AgentId::new("a").expect("valid id"),
            updated_at: since,
            planned_work_ended_at: None,
            escalations: vec![e],
        }),
        connection: Some(Connection {
            connected: true,
            since,
            last_error: None,
            collector_online: Some(true),
        }),
    }
}

fn escalation(state: EscalationState) -> EscalationView {
    EscalationView {
        id: 7,
        kind: EscalationKind::Check,
        check: "router".into(),
        state,
        opened_at: at("2025-03-03T10:12:00Z"),
        local_until: Some(at("2025-03-03T10:42:00Z")),
        escalated_at: Some(at("2025-03-03T10:32:00Z")),
        acknowledged_at: Some(at("2025-03-03T10:40:00Z")),
        acknowledged_by: Some("Priya".into()),
        note: Some("Engineer on the way".into()),
        resolved_at: None,
        fixed_by: None,
        summary: String::new(),
    }
}

#[test]
fn demarcation_follows_the_escalation_state() {
    let now = at("2025-03-03T10:30:00Z");
    let cases: &[(Option<EscalationState>, &str)] = &[
        (None, "IT will be called if this is not fixed."),
        (
            Some(EscalationState::Failing),
            "IT will be called if this is not fixed.",
        ),
        (
            Some(EscalationState::Local),
            "You have 12 minutes to try these steps; after that IT is called automatically (at 10:42).",
        ),
        (
            Some(EscalationState::Escalated),
            "IT has been called at 10:32.",
        ),
        (
            Some(EscalationState::Acknowledged),
            "IT is on it: acknowledged by Priya at 10:40.",
        ),
    ];
    for (state, want) in cases {
        let snap = snapshot(Status::Fail, state.map(escalation));
        let view = build(&snap, None, &SiteMemory::default(), &TimeZone::UTC, now);
        assert_eq!(view.headline, "1 problem needs attention");
        let router = &view.checks[0];
        assert_eq!(router.id, "router", "worst first");
        assert_eq!(router.status_words, "Not working");
        assert_eq!(router.since.as_deref(), Some("since 10:12"));
        assert_eq!(router.demarcation.as_deref(), Some(*want), "{state:?}");
        assert_eq!(router.runbook.len(), 2);
        assert!(
            view.checks[1].runbook.is_empty(),
            "no steps for a working check"
        );
    }
    let snap = snapshot(
        Status::Fail,
        Some(escalation(EscalationState::Acknowledged)),
    );
    let view = build(&snap, None, &SiteMemory::default(), &TimeZone::UTC, now);
    assert_eq!(
        view.checks[0].it_note.as_deref(),
        Some("Engineer on the way")
    );
}

#[test]
fn the_window_shows_in_the_site_time_zone() {
    let tz = TimeZone::get("America/Chicago").expect("tzdb");
    let snap = snapshot(Status::Fail, Some(escalation(EscalationState::Escalated)));
    let view = build(
        &snap,
        None,
        &SiteMemory::default(),
        &tz,
        at("2025-03-03T10:30:00Z"),
    );
    assert_eq!(
        view.checks[0].demarcation.as_deref(),
        Some("IT has been called at 04:32.")
    );
}

#[test]
fn connection_line_counts_what_waits() {
    let now = at("2025-03-03T10:30:00Z");
    let mut snap = snapshot(Status::Ok, None);
    let view = build(&snap, None, &SiteMemory::default(), &TimeZone::UTC, now);
    assert_eq!(view.headline, "Everything is working");
    assert_eq!(view.connection, "Connected");
    snap.connection = Some(Connection {
        connected: false,
        since: at("2025-03-03T10:12:00Z"),
        last_error: Some("refused".into()),
        collector_online: None,
    });
    let stats = OutboxStats {
        pending: 37,
        bytes: 4096,
        oldest_pending: None,
        last_seq: 40,
        acked_seq: 3,
        dropped_total: 0,
    };
    let view = build(
        &snap,
        Some(&stats),
        &SiteMemory::default(),
        &TimeZone::UTC,
        now,
    );
    assert!(!view.connected);
    assert_eq!(
        view.connection,
        "Offline since 10:12 — 37 results waiting to be sent"
    );
}

#[test]
fn a_check_behind_a_broken_one_says_which_to_fix_first() {
    let now = at("2025-03-03T10:30:00Z");
    let mut snap = snapshot(Status::Fail, None);
    // "host" depends on the router here, and fails too.
    snap.checks[0].depends_on = vec![CheckId::new("router").expect("valid id")];
    if let Some(host) = snap
        .results
        .get_mut(&CheckId::new("host").expect("valid id"))
    {
        host.status = Status::Fail;
    }
    let view = build(&snap, None, &SiteMemory::default(), &TimeZone::UTC, now);
    let host = view.checks.iter().find(|c| c.id == "host").expect("host");
    assert_eq!(
        host.waiting_for.as_deref(),
        Some("This is probably only broken because The router is not working: fix that first.")
    );
    let router = view
        .checks
        .iter()
        .find(|c| c.id == "router")
        .expect("router");
    assert_eq!(router.waiting_for, None);
}

#[test]
fn a_recovered_check_says_who_fixed_it() {
    let now = at("2025-03-03T11:00:00Z");
    let cases: &[(Option<outpost_shared::FixedBy>, &str)] = &[
        (
            Some(outpost_shared::FixedBy::SiteTeam),
            "Fixed at 10:50 by the site team.",
        ),
        (Some(outpost_shared::FixedBy::It), "Fixed at 10:50 by IT."),
        (None, "Working again since 10:50."),
    ];
    for (by, want) in cases {
        let mut e = escalation(EscalationState::Resolved);
        e.resolved_at = Some(at("2025-03-03T10:50:00Z"));
        e.fixed_by = *by;
        let snap = snapshot(Status::Ok, Some(e));
        let view = build(&snap, None, &SiteMemory::default(), &TimeZone::UTC, now);
        let router = view
            .checks
            .iter()
            .find(|c| c.id == "router")
            .expect("router");
        assert_eq!(router.fixed.as_deref(), Some(*want), "{by:?}");
    }
}

#[test]
fn planned_work_that_it_ended_early_is_over_on_the_page() {
    use outpost_shared::NoteAction;
    let declared = at("2025-03-03T10:00:00Z");
    let mut memory = SiteMemory::default();
    memory.remember(
        None,
        crate::site_page::memory::SiteNote {
            ts: declared,
            by: "Sam".into(),
            text: "router replaced".into(),
            action: NoteAction::PlannedWork,
        },
        Some(at("2025-03-03T12:00:00Z")),
    );
    let now = at("2025-03-03T10:30:00Z");
    let mut snap = snapshot(Status::Fail, Some(escalation(EscalationState::Local)));
    let view = build(&snap, None, &memory, &TimeZone::UTC, now);
    assert!(view.planned_work.is_some(), "declared and going on");
    assert_eq!(
        view.checks[0].demarcation.as_deref(),
        Some("Planned work is going on: IT will not be called for this until it ends.")
    );
    if let Some(list) = snap.escalations.as_mut() {
        list.planned_work_ended_at = Some(at("2025-03-03T10:20:00Z"));
    }
    let view = build(&snap, None, &memory, &TimeZone::UTC, now);
    assert_eq!(view.planned_work, None);
    assert_eq!(
        view.planned_work_ended.as_deref(),
        Some("IT ended the planned work at 10:20: problems are sent to IT again.")
    );
    assert_ne!(
        view.checks[0].demarcation.as_deref(),
        Some("Planned work is going on: IT will not be called for this until it ends.")
    );
}
