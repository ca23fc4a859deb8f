use super::*;

fn tz() -> TimeZone {
    TimeZone::get("Europe/London").expect("tzdb has Europe/London")
}

/// A local time on 2026-11-30 (a Monday) + `days`.
fn local(days: i64, hh: i8, mm: i8) -> Timestamp {
    jiff::civil::date(2026, 11, 30)
        .checked_add(days.days())
        .expect("valid")
        .at(hh, mm, 0, 0)
        .to_zoned(tz())
        .expect("valid")
        .timestamp()
}

fn confirm(ts: Timestamp) -> Confirmation {
    Confirmation {
        ts,
        by: "Sam".into(),
    }
}

fn schedule() -> Schedule {
    Schedule {
        hour: 18,
        minute: 0,
        grace: Duration::from_secs(1800),
        days: [true; 7],
    }
}

#[test]
fn confirmations_by_due_time() {
    let started = local(-3, 0, 0);
    let cases: Vec<(&str, Vec<Confirmation>, Timestamp, Status, &str)> = vec![
        (
            "before due, yesterday confirmed",
            vec![confirm(local(-1, 17, 50))],
            local(0, 12, 0),
            Status::Ok,
            "next due at 18:00",
        ),
        (
            "before due, yesterday missed",
            vec![],
            local(0, 12, 0),
            Status::Fail,
            "was due at 18:00 on Sunday and nobody confirmed it",
        ),
        (
            "in grace, not confirmed",
            vec![confirm(local(-1, 17, 50))],
            local(0, 18, 10),
            Status::Warn,
            "not confirmed yet",
        ),
        (
            "confirmed on time",
            vec![confirm(local(-1, 17, 50)), confirm(local(0, 17, 55))],
            local(0, 18, 10),
            Status::Ok,
            "confirmed by Sam at 17:55",
        ),
        (
            "past grace, missed",
            vec![confirm(local(-1, 17, 50))],
            local(0, 18, 31),
            Status::Fail,
            "nobody confirmed it",
        ),
        (
            "late confirmation fixes it",
            vec![confirm(local(-1, 17, 50)), confirm(local(0, 19, 0))],
            local(0, 20, 0),
            Status::Ok,
            "(late)",
        ),
        (
            "late one does not count again",
            vec![confirm(local(-1, 17, 50)), confirm(local(0, 19, 0))],
            local(1, 18, 10),
            Status::Warn,
            "not confirmed yet",
        ),
    ];
    for (name, confirmations, now, want, text) in cases {
        let got = checklist_state(
            "Robot cages locked",
            &schedule(),
            &tz(),
            &confirmations,
            started,
            now,
        );
        assert_eq!(got.status, want, "{name}: {}", got.summary);
        assert!(got.summary.contains(text), "{name}: {}", got.summary);
    }
}

#[test]
fn days_before_the_agent_started_do_not_count() {
    let got = checklist_state(
        "Cages",
        &schedule(),
        &tz(),
        &[],
        local(0, 9, 0),
        local(0, 12, 0),
    );
    assert_eq!(got.status, Status::Ok, "{}", got.summary);
}

#[test]
fn only_chosen_weekdays_are_due() {
    // Weekdays only: on Monday noon, the last due time was Friday (the agent ran since Friday).
    let mut weekdays = schedule();
    weekdays.days = [true, true, true, true, true, false, false];
    let got = checklist_state(
        "Cages",
        &weekdays,
        &tz(),
        &[confirm(local(-3, 17, 0))],
        local(-4, 0, 0),
        local(0, 12, 0),
    );
    assert_eq!(got.status, Status::Ok, "{}", got.summary);
    let missed = checklist_state(
        "Cages",
        &weekdays,
        &tz(),
        &[],
        local(-4, 0, 0),
        local(0, 12, 0),
    );
    assert!(missed.summary.contains("on Friday"), "{}", missed.summary);
}

#[test]
fn due_times_parse() {
    assert_eq!(parse_due("18:00"), Some((18, 0)));
    assert_eq!(parse_due("7:05"), Some((7, 5)));
    for bad in ["24:00", "18:60", "1800", "18:0", "six", ""] {
        assert_eq!(parse_due(bad), None, "{bad}");
    }
}
