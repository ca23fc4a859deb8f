//! Engine rules, driven with injected time and no I/O.

use std::time::Duration;

use outpost_shared::{
    AgentId, CheckId, CheckSpec, EscalationKind, EscalationState, FixedBy, HumanDuration,
    ResultRecord, SiteId, Status, Timestamp,
};
use proptest::prelude::*;

use super::*;

fn site() -> SiteId {
    SiteId::new("plant-leeds").expect("valid")
}
fn agent() -> AgentId {
    AgentId::new("line3-pc").expect("valid")
}
fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).expect("in range")
}

fn spec(id: &str, fail_after: u32, window: u64, depends: &[&str]) -> CheckSpec {
    CheckSpec {
        id: CheckId::new(id).expect("valid"),
        kind: "ping".into(),
        title: id.into(),
        interval: HumanDuration::from_secs(10),
        fail_after,
        recover_after: 2,
        local_window: HumanDuration::from_secs(window),
        escalate_warn: false,
        runbook: vec![],
        depends_on: depends
            .iter()
            .map(|d| CheckId::new(*d).expect("valid"))
            .collect(),
        thresholds: std::collections::BTreeMap::default(),
    }
}

struct Rig {
    engine: Engine,
    sent: Vec<(u64, NotifyEvent)>,
    seq: u64,
}

impl Rig {
    fn new(checks: Vec<CheckSpec>) -> Self {
        let settings = EngineSettings {
            reminder: Some(Duration::from_secs(600)),
            flap_limit: 6,
            flap_window: Duration::from_secs(600),
            offline_window: Duration::from_secs(60),
            offline_after: Some(Duration::from_secs(1_000_000)),
            ..EngineSettings::default()
        };
        let mut rig = Self {
            engine: Engine::new(settings),
            sent: Vec::new(),
            seq: 0,
        };
        rig.apply(Event::Presence {
            site: site(),
            agent: agent(),
            online: true,
            at: t(0),
        });
        rig.apply(Event::Birth {
            site: site(),
            agent: agent(),
            checks,
            at: t(0),
        });
        rig
    }

    fn apply(&mut self, event: Event) -> Changes {
        let changes = self.engine.apply(event).expect("event applies");
        self.sent.extend(changes.notify.iter().copied());
        changes
    }

    fn result_h(&mut self, check: &str, status: Status, secs: i64, historical: bool) {
        self.seq += 1;
        let result = ResultRecord {
            check: CheckId::new(check).expect("valid"),
            status,
            summary: format!("{check} is {status}"),
            metrics: std::collections::BTreeMap::default(),
            historical,
        };
        self.apply(Event::Result {
            site: site(),
            agent: agent(),
            seq: self.seq,
            ts: t(secs),
            result,
            at: t(secs),
        });
    }

    fn result(&mut self, check: &str, status: Status, secs: i64) {
        self.result_h(check, status, secs, false);
    }

    /// IT sets a site-wide window `starts..ends` at `at`; returns its id.
    fn maintenance(&mut self, starts: i64, ends: i64, reason: &str, at: i64) -> u64 {
        let id = self.engine.allocate_id();
        self.apply(Event::SetMaintenance {
            window: Maintenance {
                id,
                site: site(),
                agent: None,
                check: None,
                starts_at: t(starts),
                ends_at: t(ends),
                reason: reason.into(),
                by: "IT".into(),
            },
            at: t(at),
        });
        id
    }

    fn tick(&mut self, secs: i64) {
        self.apply(Event::Tick { now: t(secs) });
    }

    fn of(&self, check: &str) -> Vec<&Escalation> {
        let mut list: Vec<_> = self
            .engine
            .escalations()
            .filter(|e| e.check == check)
            .collect();
        list.sort_by_key(|e| e.id);
        list
    }

    fn events(&self) -> Vec<NotifyEvent> {
        self.sent.iter().map(|(_, e)| *e).collect()
    }
}

use NotifyEvent::{Acknowledged, Escalated, Opened, Reminder, Resolved};
use Status::{Fail, Ok as Good, Unknown, Warn};

#[test]
fn fail_after_and_recover_after() {
    // (statuses, escalations opened, open at the end)
    let cases: &[(&[Status], usize, bool)] = &[
        (&[Fail, Fail], 0, false),
        (&[Fail, Fail, Fail], 1, true),
        (&[Fail, Unknown, Fail], 1, true),
        (&[Fail, Fail, Good, Fail], 0, false),
        (&[Fail, Fail, Fail, Good], 1, true),
        (&[Fail, Fail, Fail, Good, Good], 1, false),
        (&[Fail, Fail, Fail, Good, Fail, Good, Good], 1, false),
        (&[Warn, Warn, Warn, Warn], 0, false),
        (&[Fail, Fail, Fail, Good, Good, Fail, Fail, Fail], 2, true),
    ];
    for (statuses, opened, open_at_end) in cases {
        let mut rig = Rig::new(vec![spec("router", 3, 0, &[])]);
        for (i, s) in statuses.iter().enumerate() {
            rig.result("router", *s, 10 * i as i64);
        }
        let list = rig.of("router");
        assert_eq!(list.len(), *opened, "{statuses:?}");
        assert_eq!(
            list.last().is_some_and(|e| e.is_open()),
            *open_at_end,
            "{statuses:?}"
        );
    }
}

#[test]
fn local_window_then_it_then_resolved_by_it() {
    let mut rig = Rig::new(vec![spec("router", 3, 900, &[])]);
    for i in 0..3 {
        rig.result("router", Fail, i * 10);
    }
    let esc = rig.of("router")[0].clone();
    assert_eq!(esc.state, EscalationState::Local);
    assert_eq!(esc.opened_at, t(20));
    assert_eq!(esc.local_until, Some(t(920)));
    assert_eq!(rig.events(), [Opened]);
    rig.tick(919);
    assert_eq!(rig.events(), [Opened], "the window is not over yet");
    rig.tick(920);
    assert_eq!(rig.of("router")[0].state, EscalationState::Escalated);
    rig.result("router", Good, 930);
    rig.result("router", Good, 940);
    let esc = rig.of("router")[0];
    assert_eq!(esc.state, EscalationState::Resolved);
    assert_eq!(esc.fixed_by, Some(FixedBy::It));
    assert_eq!(rig.events(), [Opened, Escalated, Resolved]);
}

#[test]
fn fixed_by_the_site_team_inside_the_window() {
    let mut rig = Rig::new(vec![spec("router", 3, 900, &[])]);
    for i in 0..3 {
        rig.result("router", Fail, i * 10);
    }
    rig.result("router", Good, 300);
    rig.result("router", Good, 310);
    rig.tick(2000);
    let esc = rig.of("router")[0];
    assert_eq!(esc.fixed_by, Some(FixedBy::SiteTeam));
    assert_eq!(esc.resolved_at, Some(t(310)));
    assert_eq!(rig.events(), [Opened], "IT is never called");
}

#[test]
fn zero_window_calls_it_at_once() {
    let mut rig = Rig::new(vec![spec("router", 1, 0, &[])]);
    rig.result("router", Fail, 5);
    assert_eq!(rig.of("router")[0].state, EscalationState::Escalated);
    assert_eq!(rig.events(), [Escalated]);
}

#[test]
fn a_failing_router_holds_the_checks_behind_it() {
    let mut rig = Rig::new(vec![
        spec("router", 3, 0, &[]),
        spec("nas", 3, 0, &["router"]),
    ]);
    for i in 0..3 {
        rig.result("router", Fail, i * 10);
        rig.result("nas", Fail, i * 10 + 1);
    }
    assert_eq!(rig.of("router")[0].state, EscalationState::Escalated);
    let nas = rig.of("nas")[0];
    assert_eq!(nas.state, EscalationState::Failing);
    assert_eq!(nas.held, Some(Hold::Dependency("router".into())));
    // Both recover: only the router's escalation is resolved loudly.
    for i in 3..5 {
        rig.result("nas", Good, i * 10);
        rig.result("router", Good, i * 10 + 1);
    }
    assert!(rig.of("nas")[0].resolved_at.is_some());
    assert_eq!(rig.of("nas")[0].fixed_by, None);
    assert_eq!(
        rig.events(),
        [Escalated, Resolved],
        "one root cause, one escalation"
    );
}

#[test]
fn a_dependent_still_failing_after_the_router_recovers_goes_ahead() {
    let mut rig = Rig::new(vec![
        spec("router", 1, 0, &[]),
        spec("nas", 1, 0, &["router"]),
    ]);
    rig.result("router", Fail, 0);
    rig.result("nas", Fail, 1);
    rig.result("router", Good, 10);
    rig.result("router", Good, 20);
    assert_eq!(rig.of("nas")[0].state, EscalationState::Escalated);
    assert_eq!(rig.events(), [Escalated, Resolved, Escalated]);
}

#[test]
fn agent_offline_opens_one_escalation_and_holds_checks() {
    let mut rig = Rig::new(vec![spec("router", 1, 0, &[])]);
    rig.apply(Event::Presence {
        site: site(),
        agent: agent(),
        online: false,
        at: t(100),
    });
    rig.apply(Event::Presence {
        site: site(),
        agent: agent(),
        online: false,
        at: t(101),
    });
    assert!(rig.of(AGENT_OFFLINE).is_empty(), "the grace is not over");
    rig.tick(105);
    let offline = rig.of(AGENT_OFFLINE);
    assert_eq!(
        offline.len(),
        1,
        "a repeated Last Will does not open a second one"
    );
    assert_eq!(offline[0].opened_at, t(100), "counted from the first Will");
    assert_eq!(offline[0].kind, EscalationKind::AgentOffline);
    assert_eq!(offline[0].state, EscalationState::Local);
    rig.tick(160);
    assert_eq!(rig.of(AGENT_OFFLINE)[0].state, EscalationState::Escalated);
    // A failing result from the outage, replayed, is recorded, not paged.
    rig.result_h("router", Fail, 120, true);
    assert!(rig.of("router")[0].historical);
    rig.apply(Event::Presence {
        site: site(),
        agent: agent(),
        online: true,
        at: t(200),
    });
    assert_eq!(rig.of(AGENT_OFFLINE)[0].fixed_by, Some(FixedBy::It));
    // Still failing after return: now it goes ahead.
    rig.result("router", Fail, 210);
    assert_eq!(rig.of("router")[0].state, EscalationState::Escalated);
    assert_eq!(rig.events(), [Opened, Escalated, Resolved, Escalated]);
}

#[test]
fn an_agent_going_offline_holds_the_window_already_running() {
    let mut rig = Rig::new(vec![spec("router", 1, 300, &[])]);
    rig.result("router", Fail, 0);
    assert_eq!(rig.of("router")[0].state, EscalationState::Local);
    rig.apply(Event::Presence {
        site: site(),
        agent: agent(),
        online: false,
        at: t(100),
    });
    rig.tick(110);
    assert_eq!(rig.of("router")[0].held, Some(Hold::AgentOffline));
    rig.tick(400);
    assert_eq!(
        rig.of("router")[0].state,
        EscalationState::Local,
        "the window does not run out while the agent-offline escalation speaks for it"
    );
    // Back online: the site team gets its whole window again, without a second "opened".
    rig.apply(Event::Presence {
        site: site(),
        agent: agent(),
        online: true,
        at: t(500),
    });
    let router = rig.of("router")[0];
    assert_eq!(
        (router.held.clone(), router.local_until),
        (None, Some(t(800)))
    );
    rig.tick(799);
    assert_eq!(rig.of("router")[0].state, EscalationState::Local);
    rig.tick(800);
    assert_eq!(rig.of("router")[0].state, EscalationState::Escalated);
    // Router opened; offline opened, escalated (its own 60 s window), resolved; router escalated.
    assert_eq!(
        rig.events(),
        [Opened, Opened, Escalated, Resolved, Escalated]
    );
}

#[test]
fn a_fresh_result_brings_an_agent_back_that_was_taken_for_offline() {
    let mut rig = Rig::new(vec![spec("router", 3, 0, &[])]);
    rig.engine.settings.offline_after = None;
    rig.result("router", Good, 0);
    rig.tick(30);
    assert_eq!(rig.of(AGENT_OFFLINE).len(), 1, "silent for 3 intervals");
    // Its results come in again (they were late), but no `online` state is re-sent.
    rig.result("router", Good, 35);
    let offline = rig.of(AGENT_OFFLINE)[0];
    assert_eq!(offline.resolved_at, Some(t(35)));
    assert!(
        rig.engine
            .agent(&site(), &agent())
            .is_some_and(|a| a.online)
    );
    // A replayed (historical) record does not count: only the agent's live results do.
    rig.tick(100);
    assert_eq!(rig.of(AGENT_OFFLINE).len(), 2);
    rig.result_h("router", Good, 101, true);
    assert!(rig.of(AGENT_OFFLINE)[1].is_open());
}

#[test]
fn a_restarted_collector_listens_a_full_offline_after_before_calling_an_agent_silent() {
    let mut rig = Rig::new(vec![spec("router", 3, 0, &[])]);
    rig.engine.settings.offline_after = None;
    rig.result("router", Good, 0);
    // The collector was down for an hour; it restarts at t=3600.
    rig.engine.resume_listening(t(3600));
    rig.tick(3601);
    assert!(
        rig.of(AGENT_OFFLINE).is_empty(),
        "no page storm after a restart"
    );
    rig.tick(3630);
    assert_eq!(
        rig.of(AGENT_OFFLINE).len(),
        1,
        "really silent: 30 s of listening"
    );
}

#[test]
fn maintenance_holds_a_running_window_and_stops_reminders() {
    let mut rig = Rig::new(vec![spec("router", 1, 300, &[]), spec("nas", 1, 0, &[])]);
    rig.result("router", Fail, 0);
    rig.result("nas", Fail, 0);
    assert_eq!(rig.of("nas")[0].state, EscalationState::Escalated);
    rig.maintenance(100, 2000, "ISP works on the line", 100);
    let hold = Some(Hold::Maintenance("ISP works on the line".into()));
    assert_eq!(rig.of("router")[0].held, hold);
    assert_eq!(rig.of("nas")[0].held, hold);
    rig.tick(1900);
    assert_eq!(rig.of("router")[0].state, EscalationState::Local);
    assert_eq!(
        rig.events(),
        [Opened, Escalated],
        "no escalation, no reminder"
    );
    // The window ends: the router's window starts again, the NAS is reminded again later.
    rig.tick(2000);
    assert_eq!(rig.of("router")[0].local_until, Some(t(2300)));
    rig.tick(2300);
    assert_eq!(rig.events(), [Opened, Escalated, Reminder, Escalated]);
}

#[test]
fn a_maintenance_window_set_for_later_holds_from_its_start() {
    let mut rig = Rig::new(vec![spec("router", 1, 300, &[])]);
    rig.result("router", Fail, 0);
    rig.maintenance(200, 2000, "planned", 10);
    assert_eq!(rig.of("router")[0].held, None);
    rig.tick(200);
    assert!(rig.of("router")[0].held.is_some());
    rig.tick(301);
    assert_eq!(rig.of("router")[0].state, EscalationState::Local);
}

#[test]
fn a_will_followed_by_online_within_the_grace_is_no_incident() {
    let mut rig = Rig::new(vec![spec("router", 1, 0, &[])]);
    // The agent's own reconnect took its session over: Will, then online, a moment apart.
    for (online, at) in [(false, 100), (true, 100), (false, 200), (true, 204)] {
        rig.apply(Event::Presence {
            site: site(),
            agent: agent(),
            online,
            at: t(at),
        });
    }
    rig.tick(300);
    assert!(rig.of(AGENT_OFFLINE).is_empty());
    assert!(rig.events().is_empty(), "nobody is notified");
}

#[test]
fn silence_past_offline_after_counts_as_offline() {
    let mut rig = Rig::new(vec![spec("router", 3, 0, &[])]);
    rig.engine.settings.offline_after = None;
    rig.result("router", Good, 0);
    rig.tick(29);
    assert!(rig.of(AGENT_OFFLINE).is_empty());
    rig.tick(30);
    assert_eq!(rig.of(AGENT_OFFLINE).len(), 1, "3 x the 10 s interval");
    rig.result("router", Good, 40);
    rig.apply(Event::Presence {
        site: site(),
        agent: agent(),
        online: true,
        at: t(40),
    });
    assert_eq!(rig.of(AGENT_OFFLINE)[0].fixed_by, Some(FixedBy::SiteTeam));
}

#[test]
fn a_problem_inside_an_outage_is_recorded_never_paged() {
    let mut rig = Rig::new(vec![spec("router", 2, 0, &[])]);
    for (i, s) in [Fail, Fail, Fail, Good, Good].into_iter().enumerate() {
        rig.result_h("router", s, i as i64 * 10, true);
    }
    let list = rig.of("router");
    assert_eq!(list.len(), 1);
    assert!(list[0].historical && list[0].resolved_at.is_some());
    assert!(rig.events().is_empty());
}

#[test]
fn a_replayed_problem_still_there_now_is_paged() {
    let mut rig = Rig::new(vec![spec("router", 2, 0, &[])]);
    rig.result_h("router", Fail, 0, true);
    rig.result_h("router", Fail, 10, true);
    assert!(rig.events().is_empty());
    rig.result("router", Fail, 20);
    assert_eq!(rig.events(), [Escalated]);
    assert_eq!(rig.of("router").len(), 1);
}

#[test]
fn flapping_gives_one_flapping_escalation() {
    let mut rig = Rig::new(vec![spec("router", 3, 0, &[])]);
    for i in 0..30 {
        rig.result("router", if i % 2 == 0 { Fail } else { Good }, i * 10);
    }
    let flapping: Vec<_> = rig
        .engine
        .escalations()
        .filter(|e| e.kind == EscalationKind::Flapping)
        .collect();
    assert_eq!(flapping.len(), 1);
    assert_eq!(rig.events(), [Escalated]);
    rig.tick(290 + 601);
    let flapping = rig
        .engine
        .escalations()
        .find(|e| e.kind == EscalationKind::Flapping)
        .cloned();
    assert!(
        flapping.is_some_and(|e| e.resolved_at.is_some()),
        "calm for a window resolves it"
    );
}

#[test]
fn a_check_flapping_for_hours_keeps_only_the_changes_that_count() {
    let mut rig = Rig::new(vec![spec("router", 3, 0, &[])]);
    for i in 0..1_000 {
        rig.result("router", if i % 2 == 0 { Fail } else { Good }, i * 10);
    }
    let key = CheckKey::new(
        &site(),
        &agent(),
        &CheckId::new("router").expect("check id"),
    );
    let state = rig.engine.check(&key).expect("the check is known");
    assert_eq!(state.changes.len(), 6, "the flap limit, not 999 changes");
    let flapping = |rig: &Rig| {
        rig.engine
            .escalations()
            .find(|e| e.kind == EscalationKind::Flapping)
            .cloned()
            .expect("a flapping escalation")
    };
    rig.tick(9_990 + 599);
    assert!(
        flapping(&rig).resolved_at.is_none(),
        "the last change is recent"
    );
    rig.tick(9_990 + 601);
    assert!(
        flapping(&rig).resolved_at.is_some(),
        "calm for a window after the last change"
    );
}

#[test]
fn reminders_until_acknowledged() {
    let mut rig = Rig::new(vec![spec("router", 1, 0, &[])]);
    rig.result("router", Fail, 0);
    rig.tick(599);
    rig.tick(600);
    rig.tick(601);
    rig.tick(1200);
    let id = rig.of("router")[0].id;
    rig.apply(Event::Acknowledge {
        id,
        by: "Priya".into(),
        note: Some("on my way".into()),
        at: t(1300),
    });
    rig.tick(5000);
    assert_eq!(rig.events(), [Escalated, Reminder, Reminder, Acknowledged]);
    let esc = rig.of("router")[0];
    assert_eq!(esc.acknowledged_by.as_deref(), Some("Priya"));
    assert_eq!(esc.view().note.as_deref(), Some("on my way"));
}

#[test]
fn it_closes_an_escalation_and_bad_ids_are_refused() {
    let mut rig = Rig::new(vec![spec("router", 1, 0, &[])]);
    rig.result("router", Fail, 0);
    let id = rig.of("router")[0].id;
    rig.apply(Event::Resolve {
        id,
        by: Some("Sam (IT)".into()),
        at: t(50),
    });
    assert_eq!(rig.of("router")[0].fixed_by, Some(FixedBy::It));
    assert_eq!(rig.of("router")[0].resolved_by.as_deref(), Some("Sam (IT)"));
    assert_eq!(
        rig.engine.apply(Event::Resolve {
            id,
            by: None,
            at: t(60)
        }),
        Err(EngineError::AlreadyResolved(id))
    );
    assert_eq!(
        rig.engine.apply(Event::Acknowledge {
            id: 999,
            by: "x".into(),
            note: None,
            at: t(60)
        }),
        Err(EngineError::UnknownEscalation(999))
    );
    // Still failing after IT closed it: no new escalation until it recovers and fails again.
    rig.result("router", Fail, 70);
    assert_eq!(rig.of("router").len(), 1);
}

#[test]
fn maintenance_and_planned_work_hold_escalations() {
    let mut rig = Rig::new(vec![spec("router", 1, 0, &[])]);
    let id = rig.maintenance(0, 1000, "router swap", 0);
    rig.result("router", Fail, 10);
    assert_eq!(
        rig.of("router")[0].held,
        Some(Hold::Maintenance("router swap".into()))
    );
    rig.apply(Event::EndMaintenance { id, at: t(100) });
    assert_eq!(rig.of("router")[0].state, EscalationState::Escalated);

    let mut rig = Rig::new(vec![spec("router", 1, 0, &[])]);
    rig.apply(Event::PlannedWork {
        site: site(),
        agent: agent(),
        check: None,
        until: Some(t(100_000)),
        at: t(0),
    });
    let until = rig
        .engine
        .agent(&site(), &agent())
        .and_then(|a| a.planned_until);
    assert_eq!(
        until,
        Some(t(4 * 3600)),
        "planned work is capped at a few hours"
    );
    rig.result("router", Fail, 10);
    assert!(rig.of("router")[0].held.is_some());
    rig.tick(4 * 3600);
    assert_eq!(rig.of("router")[0].state, EscalationState::Escalated);
    assert_eq!(rig.events(), [Escalated]);
}

#[test]
fn restore_resumes_exactly() {
    let mut rig = Rig::new(vec![spec("router", 1, 900, &[])]);
    rig.result("router", Fail, 0);
    let e = &rig.engine;
    let mut restored = Engine::restore(
        e.settings().clone(),
        e.agents().map(|(k, v)| (k.clone(), v.clone())),
        e.checks.iter().map(|(k, v)| (k.clone(), v.clone())),
        e.escalations().cloned(),
        e.maintenance_windows().cloned(),
        e.next_id(),
    );
    let changes = restored.apply(Event::Tick { now: t(900) }).expect("tick");
    assert_eq!(changes.notify.len(), 1);
    assert_eq!(changes.notify[0].1, Escalated);
    let again = restored.apply(Event::Tick { now: t(901) }).expect("tick");
    assert!(again.notify.is_empty(), "no repeated page");
}

fn run(
    engine_results: &[(u64, i64, Status)],
) -> (Vec<(u64, NotifyEvent)>, Vec<outpost_shared::EscalationView>) {
    let mut rig = Rig::new(vec![spec("router", 3, 30, &[])]);
    for (seq, secs, status) in engine_results {
        let result = ResultRecord {
            check: CheckId::new("router").expect("valid"),
            status: *status,
            summary: String::new(),
            metrics: std::collections::BTreeMap::default(),
            historical: false,
        };
        rig.apply(Event::Result {
            site: site(),
            agent: agent(),
            seq: *seq,
            ts: t(*secs),
            result,
            at: t(*secs),
        });
        rig.tick(*secs);
    }
    let views = rig.engine.escalations().map(Escalation::view).collect();
    (rig.sent, views)
}

proptest! {
    /// Any interleaving of duplicates and replays gives the same escalations as the clean sequence.
    #[test]
    fn duplicates_and_replays_change_nothing(
        statuses in prop::collection::vec(prop_oneof![Just(Good), Just(Fail), Just(Warn), Just(Unknown)], 1..60),
        replays in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 0..40),
    ) {
        let clean: Vec<(u64, i64, Status)> = statuses.iter().enumerate()
            .map(|(i, s)| (i as u64 + 1, i as i64 * 10, *s)).collect();
        let mut noisy = clean.clone();
        for (from, to) in replays {
            // Re-deliver an earlier record at a later point (a duplicate or a replay).
            let at = to.index(noisy.len()) + 1;
            let src = from.index(at);
            let copy = noisy[src.min(at - 1)];
            let position = at.min(noisy.len());
            // Only records already delivered can be repeated.
            if noisy[..position].contains(&copy) {
                noisy.insert(position, copy);
            }
        }
        prop_assert_eq!(run(&clean), run(&noisy));
    }
}

#[test]
fn planned_work_on_one_check_holds_only_that_check() {
    let mut rig = Rig::new(vec![spec("router", 1, 0, &[]), spec("nas", 1, 0, &[])]);
    rig.apply(Event::PlannedWork {
        site: site(),
        agent: agent(),
        check: Some(CheckId::new("nas").expect("valid")),
        until: Some(t(600)),
        at: t(0),
    });
    rig.result("nas", Fail, 10);
    rig.result("router", Fail, 10);
    assert!(rig.of("nas")[0].held.is_some(), "the NAS is being replaced");
    assert_eq!(rig.of("router")[0].state, EscalationState::Escalated);
    // The work runs out: the NAS, still failing, goes to IT.
    rig.tick(600);
    assert_eq!(rig.of("nas")[0].state, EscalationState::Escalated);
    assert_eq!(rig.events(), [Escalated, Escalated]);
}

#[test]
fn it_ends_the_site_teams_planned_work_early() {
    let mut rig = Rig::new(vec![spec("router", 1, 0, &[])]);
    for check in [None, Some(CheckId::new("router").expect("valid"))] {
        rig.apply(Event::PlannedWork {
            site: site(),
            agent: agent(),
            check,
            until: Some(t(3000)),
            at: t(0),
        });
    }
    rig.result("router", Fail, 10);
    assert!(rig.of("router")[0].held.is_some());
    rig.apply(Event::EndPlannedWork {
        site: site(),
        agent: agent(),
        at: t(100),
    });
    assert_eq!(rig.of("router")[0].state, EscalationState::Escalated);
    let info = rig.engine.agent(&site(), &agent()).expect("known");
    assert_eq!(
        (
            info.planned_until,
            info.planned_checks.len(),
            info.planned_ended_by_it
        ),
        (None, 0, Some(t(100))),
        "the site page learns from planned_ended_by_it that IT ended it"
    );
}

#[test]
fn a_recurring_window_from_the_config_holds_during_its_hours() {
    let mut rig = Rig::new(vec![spec("router", 1, 0, &[])]);
    // t(0) is 2027-01-15T08:00:00Z, a Friday: hold Fridays 08:00–09:00 UTC.
    assert_eq!(t(0).to_string(), "2027-01-15T08:00:00Z");
    rig.engine.settings.scheduled = vec![ScheduledWindow {
        site: site(),
        agent: None,
        check: None,
        days: [false, false, false, false, true, false, false],
        from: "08:00".parse().expect("time"),
        to: "09:00".parse().expect("time"),
        tz: jiff::tz::TimeZone::UTC,
        reason: "weekly line maintenance".into(),
    }];
    rig.result("router", Fail, 60);
    assert_eq!(
        rig.of("router")[0].held,
        Some(Hold::Maintenance("weekly line maintenance".into()))
    );
    rig.tick(3599);
    assert!(
        rig.events().is_empty(),
        "IT is not called during the window"
    );
    rig.tick(3600);
    assert_eq!(rig.of("router")[0].state, EscalationState::Escalated);
    assert_eq!(rig.events(), [Escalated]);
}
