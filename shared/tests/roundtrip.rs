//! Property tests: any valid value survives the wire; arbitrary bytes never panic a decoder.

use std::collections::BTreeMap;

use outpost_shared::{
    Ack, AgentId, Batch, Birth, CheckId, CheckSpec, EscalationKind, EscalationList,
    EscalationState, EscalationView, FixedBy, GapRecord, HostFacts, HumanDuration, NoteAction,
    NoteRecord, Presence, PresenceState, Record, RecordBody, ResultRecord, SiteId, Status,
    Timestamp, decode, encode,
};
use proptest::prelude::*;

fn id() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9-]{0,62}"
}

fn ts() -> impl Strategy<Value = Timestamp> {
    (0i64..4_000_000_000, 0i32..1_000_000_000)
        .prop_map(|(s, ns)| Timestamp::new(s, ns).expect("seconds and nanos are in jiff's range"))
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Ok),
        Just(Status::Warn),
        Just(Status::Fail),
        Just(Status::Unknown)
    ]
}

fn action() -> impl Strategy<Value = NoteAction> {
    prop_oneof![
        Just(NoteAction::Note),
        Just(NoteAction::WorkingOnIt),
        Just(NoteAction::ChecklistDone),
        Just(NoteAction::PlannedWork),
        Just(NoteAction::PlannedWorkEnded)
    ]
}

fn body() -> impl Strategy<Value = RecordBody> {
    // Metric values that print exactly in decimal, so equality after a round trip is exact.
    let metrics = prop::collection::btree_map(
        "[a-z_]{1,12}",
        (-1_000_000i64..1_000_000).prop_map(|n| n as f64 / 4.0),
        0..5,
    );
    prop_oneof![
        (id(), status(), ".{0,80}", metrics, any::<bool>()).prop_map(
            |(check, status, summary, metrics, historical)| RecordBody::Result(ResultRecord {
                check: CheckId::new(check).expect("strategy makes valid ids"),
                status,
                summary,
                metrics,
                historical,
            })
        ),
        (
            proptest::option::of(id()),
            ".{0,20}",
            ".{0,200}",
            action(),
            proptest::option::of(ts())
        )
            .prop_map(
                |(check, by, text, action, until)| RecordBody::Note(NoteRecord {
                    check: check.map(|c| CheckId::new(c).expect("strategy makes valid ids")),
                    by,
                    text,
                    action,
                    until,
                })
            ),
        (any::<u64>(), any::<u64>(), any::<u64>(), "[a-z]{1,10}").prop_map(
            |(from_seq, to_seq, dropped, reason)| RecordBody::Gap(GapRecord {
                from_seq,
                to_seq,
                dropped,
                reason
            })
        ),
    ]
}

fn batch() -> impl Strategy<Value = Batch> {
    (
        id(),
        id(),
        any::<u64>(),
        any::<Option<u64>>(),
        prop::collection::vec((any::<u64>(), ts(), body()), 0..8),
    )
        .prop_map(|(site, agent, epoch, acked, records)| Batch {
            v: 1,
            site: SiteId::new(site).expect("strategy makes valid ids"),
            agent: AgentId::new(agent).expect("strategy makes valid ids"),
            epoch,
            acked,
            records: records
                .into_iter()
                .map(|(seq, ts, body)| Record { seq, ts, body })
                .collect(),
        })
}

fn check_spec() -> impl Strategy<Value = CheckSpec> {
    (
        (
            id(),
            "[a-z]{2,10}",
            ".{0,40}",
            1u64..100_000,
            1u32..20,
            1u32..20,
        ),
        (
            0u64..100_000,
            any::<bool>(),
            prop::collection::vec(".{0,60}", 0..4),
        ),
        (
            prop::collection::vec(id(), 0..3),
            prop::collection::btree_map(
                "[a-z_]{1,12}",
                (0i64..100_000).prop_map(|n| n as f64 / 2.0),
                0..3,
            ),
        ),
    )
        .prop_map(
            |(
                (id, kind, title, interval, fail_after, recover_after),
                (window, escalate_warn, runbook),
                (depends_on, thresholds),
            )| CheckSpec {
                id: CheckId::new(id).expect("strategy makes valid ids"),
                kind,
                title,
                interval: HumanDuration::from_secs(interval),
                fail_after,
                recover_after,
                local_window: HumanDuration::from_secs(window),
                escalate_warn,
                runbook,
                depends_on: depends_on
                    .into_iter()
                    .map(|d| CheckId::new(d).expect("strategy makes valid ids"))
                    .collect(),
                thresholds,
            },
        )
}

fn birth() -> impl Strategy<Value = Birth> {
    (
        (id(), id(), "[0-9.]{1,10}", any::<u64>(), ts(), ts()),
        (
            ".{0,30}",
            ".{0,30}",
            ".{0,20}",
            "[a-z0-9_]{0,8}",
            any::<u32>(),
            any::<u64>(),
        ),
        (
            "[A-Za-z/_]{0,30}",
            prop::collection::vec(check_spec(), 0..4),
        ),
    )
        .prop_map(
            |(
                (site, agent, version, epoch, boot_time, started_at),
                (hostname, os, kernel, arch, cpus, memory_bytes),
                (timezone, checks),
            )| Birth {
                v: 1,
                site: SiteId::new(site).expect("strategy makes valid ids"),
                agent: AgentId::new(agent).expect("strategy makes valid ids"),
                version,
                epoch,
                boot_time,
                started_at,
                host: HostFacts {
                    hostname,
                    os,
                    kernel,
                    arch,
                    cpus,
                    memory_bytes,
                    timezone,
                },
                checks,
            },
        )
}

fn escalation_view() -> impl Strategy<Value = EscalationView> {
    let kind = prop_oneof![
        Just(EscalationKind::Check),
        Just(EscalationKind::AgentOffline),
        Just(EscalationKind::Flapping)
    ];
    let state = prop_oneof![
        Just(EscalationState::Failing),
        Just(EscalationState::Local),
        Just(EscalationState::Escalated),
        Just(EscalationState::Acknowledged),
        Just(EscalationState::Resolved)
    ];
    let fixed = proptest::option::of(prop_oneof![Just(FixedBy::SiteTeam), Just(FixedBy::It)]);
    let at = || proptest::option::of(ts());
    (
        (any::<u64>(), kind, id(), state, ts(), at()),
        (
            at(),
            at(),
            proptest::option::of(".{0,20}"),
            proptest::option::of(".{0,80}"),
        ),
        (at(), fixed, ".{0,80}"),
    )
        .prop_map(
            |(
                (id, kind, check, state, opened_at, local_until),
                (escalated_at, acknowledged_at, acknowledged_by, note),
                (resolved_at, fixed_by, summary),
            )| EscalationView {
                id,
                kind,
                check,
                state,
                opened_at,
                local_until,
                escalated_at,
                acknowledged_at,
                acknowledged_by,
                note,
                resolved_at,
                fixed_by,
                summary,
            },
        )
}

fn escalation_list() -> impl Strategy<Value = EscalationList> {
    (
        id(),
        id(),
        ts(),
        proptest::option::of(ts()),
        prop::collection::vec(escalation_view(), 0..5),
    )
        .prop_map(
            |(site, agent, updated_at, planned_work_ended_at, escalations)| EscalationList {
                v: 1,
                site: SiteId::new(site).expect("strategy makes valid ids"),
                agent: AgentId::new(agent).expect("strategy makes valid ids"),
                updated_at,
                planned_work_ended_at,
                escalations,
            },
        )
}

proptest! {
    #[test]
    fn births_round_trip(birth in birth()) {
        prop_assert_eq!(decode::<Birth>(&encode(&birth)), Ok(birth));
    }

    #[test]
    fn escalation_lists_round_trip(list in escalation_list()) {
        prop_assert_eq!(decode::<EscalationList>(&encode(&list)), Ok(list));
    }

    #[test]
    fn presence_round_trips(online in any::<bool>()) {
        let state = if online { PresenceState::Online } else { PresenceState::Offline };
        let presence = Presence { v: 1, state };
        prop_assert_eq!(decode::<Presence>(&encode(&presence)), Ok(presence));
    }

    #[test]
    fn batches_round_trip(batch in batch()) {
        prop_assert_eq!(decode::<Batch>(&encode(&batch)), Ok(batch));
    }

    #[test]
    fn acks_round_trip(epoch in any::<u64>(), seq in any::<u64>()) {
        let ack = Ack { v: 1, epoch, seq };
        prop_assert_eq!(decode::<Ack>(&encode(&ack)), Ok(ack));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode::<Batch>(&bytes);
        let _ = decode::<Birth>(&bytes);
        let _ = decode::<Presence>(&bytes);
        let _ = decode::<Ack>(&bytes);
        let _ = decode::<EscalationList>(&bytes);
    }

    #[test]
    fn mangled_valid_batches_never_panic(batch in batch(), cut in any::<prop::sample::Index>(), flip in any::<u8>()) {
        let mut bytes = encode(&batch);
        let at = cut.index(bytes.len().max(1));
        if at < bytes.len() {
            bytes[at] ^= flip;
        }
        let _ = decode::<Batch>(&bytes);
        let _ = decode::<Batch>(&bytes[..at.min(bytes.len())]);
    }
}

#[test]
fn metrics_keep_their_names() {
    let mut metrics = BTreeMap::new();
    metrics.insert("rtt_avg_ms".to_owned(), 12.5);
    let r = ResultRecord {
        check: CheckId::new("router").expect("valid"),
        status: Status::Ok,
        summary: "The router answered all 5 pings.".into(),
        metrics,
        historical: false,
    };
    let json = serde_json::to_string(&r).expect("serializes");
    assert!(json.contains("\"rtt_avg_ms\":12.5"), "{json}");
    assert!(
        !json.contains("historical"),
        "historical=false is left out: {json}"
    );
}
