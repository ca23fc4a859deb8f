//! What the site page remembers beyond the live state: declared planned work and the site
//! team's recent notes, so everyone on site sees what was already tried.
//!
//! Kept in memory only: the notes themselves are durable in the outbox (and at the collector);
//! after a restart the page simply starts with an empty list.

use std::collections::{BTreeMap, VecDeque};

use jiff::{SignedDuration, Timestamp, civil, tz::TimeZone};
use outpost_shared::{CheckId, NoteAction};
use serde::Serialize;

/// Longest planned work the site team may declare.
pub const MAX_PLANNED_WORK: SignedDuration = SignedDuration::from_hours(4);
/// Notes kept per check (and for the whole site).
const KEEP_NOTES: usize = 5;

/// Planned work declared on the site page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedWork {
    /// Who declared it.
    pub by: String,
    /// What is being done ("router replaced").
    pub reason: String,
    /// When it ends.
    pub until: Timestamp,
    /// When it was declared.
    pub declared_at: Timestamp,
}

/// A note the site team left through this page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteNote {
    /// When.
    pub ts: Timestamp,
    /// Who.
    pub by: String,
    /// What they wrote.
    pub text: String,
    /// What it means.
    pub action: NoteAction,
}

/// Planned work and recent notes, keyed by check (`None`: the whole site).
#[derive(Debug, Default)]
pub struct SiteMemory {
    planned: BTreeMap<Option<CheckId>, PlannedWork>,
    notes: BTreeMap<Option<CheckId>, VecDeque<SiteNote>>,
}

impl SiteMemory {
    /// Remembers a note that reached the outbox, and its effect on planned work.
    pub fn remember(&mut self, check: Option<CheckId>, note: SiteNote, until: Option<Timestamp>) {
        match (note.action, until) {
            (NoteAction::PlannedWork, Some(until)) => {
                self.planned.insert(
                    check.clone(),
                    PlannedWork {
                        by: note.by.clone(),
                        reason: note.text.clone(),
                        until,
                        declared_at: note.ts,
                    },
                );
            }
            (NoteAction::PlannedWorkEnded, _) => {
                self.planned.remove(&check);
            }
            _ => {}
        }
        let list = self.notes.entry(check).or_default();
        list.push_back(note);
        while list.len() > KEEP_NOTES {
            list.pop_front();
        }
    }

    /// Planned work still going on at `now` for `check` (`None`: the whole site).
    pub fn planned(&self, check: Option<&CheckId>, now: Timestamp) -> Option<&PlannedWork> {
        self.planned
            .get(&check.cloned())
            .filter(|work| work.until > now)
    }

    /// All planned work still going on at `now`, by check (`None`: the whole site).
    pub fn all_planned(&self, now: Timestamp) -> Vec<(Option<CheckId>, PlannedWork)> {
        self.planned
            .iter()
            .filter(|(_, work)| work.until > now)
            .map(|(check, work)| (check.clone(), work.clone()))
            .collect()
    }

    /// Recent notes about `check`, oldest first.
    pub fn notes(&self, check: Option<&CheckId>) -> Vec<SiteNote> {
        self.notes
            .get(&check.cloned())
            .map(|list| list.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Reads a planned-work end time and checks it lies after `now` and at most four hours ahead.
///
/// Accepts an RFC 3339 time, a local date and time (`2025-03-03T15:00`, what a browser's
/// datetime field sends) or a time of day (`15:00`, today or, just past midnight, tomorrow).
pub fn parse_until(text: &str, tz: &TimeZone, now: Timestamp) -> Result<Timestamp, String> {
    let text = text.trim();
    let latest = now + MAX_PLANNED_WORK;
    let show = |t: Timestamp| t.to_zoned(tz.clone()).strftime("%H:%M").to_string();
    let window = format!(
        "choose a time after {} and no later than {} (planned work lasts at most 4 hours)",
        show(now),
        show(latest)
    );
    if text.is_empty() {
        return Err(format!("Planned work needs an end time: {window}."));
    }
    let until = if let Ok(ts) = text.parse::<Timestamp>() {
        ts
    } else if let Ok(dt) = text.parse::<civil::DateTime>() {
        local(dt, tz)?
    } else if let Ok(time) = text.parse::<civil::Time>() {
        let today = now.to_zoned(tz.clone()).date().to_datetime(time);
        let mut until = local(today, tz)?;
        if until <= now {
            // "01:00" typed at 23:00 means tomorrow.
            let tomorrow = local(today + SignedDuration::from_hours(24), tz)?;
            if tomorrow <= latest {
                until = tomorrow;
            }
        }
        until
    } else {
        return Err(format!(
            "{text:?} is not a time; write the end time like 15:00, and {window}."
        ));
    };
    if until <= now {
        return Err(format!(
            "The end time {} is in the past: {window}.",
            show(until)
        ));
    }
    if until > latest {
        return Err(format!(
            "The end time {} is more than 4 hours ahead: {window}. Longer work is planned with IT.",
            show(until)
        ));
    }
    Ok(until)
}

fn local(dt: civil::DateTime, tz: &TimeZone) -> Result<Timestamp, String> {
    dt.to_zoned(tz.clone())
        .map(|z| z.timestamp())
        .map_err(|err| format!("That time does not exist in the site's time zone: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("test timestamp")
    }

    #[test]
    fn end_times_are_read_and_bounded() {
        let tz = TimeZone::get("Europe/London").expect("tzdb");
        let now = at("2025-03-03T14:00:00Z"); // 14:00 in London (GMT)
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("15:00", Ok("2025-03-03T15:00:00Z")),
            ("18:00", Ok("2025-03-03T18:00:00Z")),
            ("18:01", Err("more than 4 hours ahead")),
            ("13:00", Err("in the past")),
            ("2025-03-03T16:30", Ok("2025-03-03T16:30:00Z")),
            ("2025-03-03T16:30:00Z", Ok("2025-03-03T16:30:00Z")),
            ("2025-03-04T16:30:00Z", Err("more than 4 hours ahead")),
            ("soon", Err("is not a time")),
            ("", Err("needs an end time")),
        ];
        for (input, want) in cases {
            let got = parse_until(input, &tz, now);
            match (want, &got) {
                (Ok(ts), Ok(until)) => assert_eq!(*until, at(ts), "{input}"),
                (Err(part), Err(message)) => assert!(message.contains(part), "{input}: {message}"),
                _ => panic!("{input}: expected {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn a_time_just_past_midnight_means_tomorrow() {
        let tz = TimeZone::UTC;
        let now = at("2025-03-03T23:00:00Z");
        assert_eq!(
            parse_until("01:00", &tz, now),
            Ok(at("2025-03-04T01:00:00Z"))
        );
    }

    #[test]
    fn ended_planned_work_is_forgotten() {
        let mut memory = SiteMemory::default();
        let now = at("2025-03-03T14:00:00Z");
        let note = |action| SiteNote {
            ts: now,
            by: "Sam".into(),
            text: "router replaced".into(),
            action,
        };
        memory.remember(
            None,
            note(NoteAction::PlannedWork),
            Some(at("2025-03-03T15:00:00Z")),
        );
        assert!(memory.planned(None, now).is_some());
        assert!(memory.planned(None, at("2025-03-03T15:00:00Z")).is_none());
        memory.remember(None, note(NoteAction::PlannedWorkEnded), None);
        assert!(memory.planned(None, now).is_none());
        assert_eq!(memory.notes(None).len(), 2);
    }
}
