//! The report on fixed synthetic history; every number below is worked out by hand.

use std::collections::{BTreeMap, HashMap};

use outpost_shared::{
    AgentId, CheckId, EscalationKind, EscalationState, FixedBy, SiteId, Timestamp,
};

use super::*;
use crate::{engine::Escalation, store::StatusCounts};

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).expect("in range")
}

fn esc(
    id: u64,
    check: &str,
    kind: EscalationKind,
    opened: i64,
    escalated: Option<i64>,
    resolved: Option<i64>,
    fixed_by: Option<FixedBy>,
) -> Escalation {
    Escalation {
        id,
        site: SiteId::new("plant-a").expect("valid"),
        agent: AgentId::new("pc").expect("valid"),
        check: check.into(),
        kind,
        state: if resolved.is_some() {
            EscalationState::Resolved
        } else {
            EscalationState::Escalated
        },
        opened_at: t(opened),
        local_until: None,
        escalated_at: escalated.map(t),
        acknowledged_at: None,
        acknowledged_by: None,
        resolved_by: None,
        note: None,
        resolved_at: resolved.map(t),
        fixed_by,
        summary: String::new(),
        held: None,
        historical: false,
        last_notified_at: None,
    }
}

fn counts(ok: u64, warn: u64, fail: u64) -> StatusCounts {
    StatusCounts {
        ok,
        warn,
        fail,
        unknown: 0,
    }
}

fn ids(agent: &str, check: &str) -> (AgentId, CheckId) {
    (
        AgentId::new(agent).expect("valid"),
        CheckId::new(check).expect("valid"),
    )
}

#[test]
fn figures_match_the_hand_computation() {
    let pc = AgentId::new("pc").expect("valid");
    let router = CheckId::new("router").expect("valid");
    let cages = CheckId::new("cages").expect("valid");
    let backup = CheckId::new("backup").expect("valid");
    let site_a = SiteHistory {
        escalations: vec![
            esc(
                1,
                "router",
                EscalationKind::Check,
                0,
                None,
                Some(600),
                Some(FixedBy::SiteTeam),
            ),
            esc(
                2,
                "router",
                EscalationKind::Check,
                3600,
                Some(4500),
                Some(7200),
                Some(FixedBy::It),
            ),
            esc(
                3,
                "agent-offline",
                EscalationKind::AgentOffline,
                18_000,
                None,
                Some(19_800),
                Some(FixedBy::SiteTeam),
            ),
            esc(4, "nas", EscalationKind::Check, 30_000, None, None, None),
        ],
        hourly: vec![
            (pc.clone(), router.clone(), t(0), counts(300, 0, 60)),
            (pc.clone(), router.clone(), t(3600), counts(340, 0, 20)),
            (pc.clone(), cages.clone(), t(0), counts(1, 0, 1)),
            (pc.clone(), backup.clone(), t(0), counts(3, 1, 0)),
        ],
        kinds: HashMap::from([
            (ids("pc", "cages"), "checklist".to_owned()),
            (ids("pc", "backup"), "backup".to_owned()),
        ]),
        agents: 1,
    };
    let site_b = SiteHistory {
        hourly: vec![(pc.clone(), router.clone(), t(0), counts(10, 0, 0))],
        agents: 1,
        ..SiteHistory::default()
    };
    let histories = BTreeMap::from([
        (SiteId::new("plant-b").expect("valid"), site_b),
        (SiteId::new("plant-a").expect("valid"), site_a),
    ]);
    let r = report(&histories, t(0), t(36_000));

    let a = &r.sites[0];
    assert_eq!(
        a.site.as_str(),
        "plant-a",
        "the site needing attention comes first"
    );
    assert_eq!(a.incidents, 4);
    assert_eq!(a.fixed_by_site_team, 2);
    assert_eq!(a.escalated_to_it, 1);
    // Repair times 600, 1800, 3600 s: median (nearest rank 2 of 3) 1800, p90 (rank 3) 3600.
    assert_eq!(a.repair_median_s, Some(1800));
    assert_eq!(a.repair_p90_s, Some(3600));
    // Offline 1800 s of 36000 s.
    assert!((a.link_availability - 0.95).abs() < 1e-9);
    let router_av = a
        .checks
        .iter()
        .find(|c| c.check == router)
        .expect("router")
        .availability;
    assert!((router_av - 640.0 / 720.0).abs() < 1e-9);
    assert_eq!(a.checklists_on_time, Some(0.5));
    assert_eq!(a.backups_on_time, Some(0.75));
    // 1 x 3 + 4 incidents + 0.05 x 100 + (1 - 0.5) x 50.
    assert!((a.attention - 37.0).abs() < 1e-9);

    let b = &r.sites[1];
    assert_eq!(
        (b.incidents, b.link_availability, b.attention),
        (0, 1.0, 0.0)
    );
    assert_eq!(b.repair_median_s, None);

    assert_eq!(r.fleet.incidents, 4);
    assert_eq!(r.fleet.site_team_share, Some(2.0 / 3.0));
    assert_eq!(r.fleet.repair_median_s, Some(1800));

    let csv = to_csv(&r);
    let lines: Vec<_> = csv.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines[1].starts_with("plant-a,0.9500,4,2,1,1800,3600,0.5000,0.7500,37.0"),
        "{}",
        lines[1]
    );
}

#[test]
fn percentiles_by_nearest_rank() {
    let v: Vec<u64> = (1..=10).collect();
    assert_eq!(percentile(&v, 50), Some(5));
    assert_eq!(percentile(&v, 90), Some(9));
    assert_eq!(percentile(&[7], 90), Some(7));
    assert_eq!(percentile(&[], 50), None);
}
