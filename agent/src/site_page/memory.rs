//! What the site page remembers beyond the live state: declared planned work and the site
//! team's recent notes, so everyone on site sees what was already tried.
//!
//! The notes themselves are durable in the outbox and at the collector; this is the page's
//! view of them, kept in a file beside the outbox ([`SiteMemory::load`], [`SiteMemory::save`])
//! so a restarted agent still shows the planned work under way and what was tried.

use std::{
    collections::{BTreeMap, VecDeque},
    path::Path,
};

use jiff::{SignedDuration, Timestamp, civil, tz::TimeZone};
use outpost_shared::{CheckId, NoteAction};
use serde::{Deserialize, Serialize};

/// Longest planned work the site team may declare.
pub const MAX_PLANNED_WORK: SignedDuration = SignedDuration::from_hours(4);
/// Notes kept per check (and for the whole site).
const KEEP_NOTES: usize = 5;

/// Planned work declared on the site page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// How [`SiteMemory`] is kept on disk: lists of pairs, because a JSON object's keys must be
/// strings and `None` (the whole site) is not one.
#[derive(Serialize, Deserialize, Default)]
struct Saved {
    #[serde(default)]
    planned: Vec<(Option<CheckId>, PlannedWork)>,
    #[serde(default)]
    notes: Vec<(Option<CheckId>, Vec<SiteNote>)>,
}

impl SiteMemory {
    /// The memory saved in `file`: empty when there is none yet, and (with a warning) when
    /// it cannot be read. The notes are in the outbox and at the collector either way.
    pub fn load(file: &Path) -> Self {
        let Some(saved) =
            crate::state_file::read_json::<Saved>(file, "site page notes and planned work")
        else {
            return Self::default();
        };
        Self {
            planned: saved.planned.into_iter().collect(),
            notes: saved
                .notes
                .into_iter()
                .map(|(check, list)| {
                    let skip = list.len().saturating_sub(KEEP_NOTES);
                    (check, list.into_iter().skip(skip).collect())
                })
                .collect(),
        }
    }

    /// Writes the memory to `file` ([`crate::state_file::write_json`]). A failure is
    /// logged: the page still has it in memory.
    pub fn save(&self, file: &Path) {
        let saved = Saved {
            planned: self
                .planned
                .iter()
                .map(|(check, work)| (check.clone(), work.clone()))
                .collect(),
            notes: self
                .notes
                .iter()
                .map(|(check, list)| (check.clone(), list.iter().cloned().collect()))
                .collect(),
        };
        if let Err(e) = crate::state_file::write_json(file, &saved) {
            tracing::warn!(file = %file.display(), error = %e,
                "cannot save the site page's notes and planned work; they are kept until a restart");
        }
    }

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

    #[test]
    fn notes_and_planned_work_survive_a_restart_and_a_bad_file_is_not_fatal() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("site-page.json");
        assert_eq!(SiteMemory::load(&file).notes(None), [], "no file yet");
        let now = at("2025-03-03T14:00:00Z");
        let backup = CheckId::new("backup").expect("id");
        let mut memory = SiteMemory::default();
        for i in 0..7 {
            let note = SiteNote {
                ts: now,
                by: "Sam".into(),
                text: format!("tried {i}"),
                action: NoteAction::Note,
            };
            memory.remember(Some(backup.clone()), note, None);
        }
        let work = SiteNote {
            ts: now,
            by: "Sam".into(),
            text: "router replaced".into(),
            action: NoteAction::PlannedWork,
        };
        memory.remember(None, work, Some(at("2025-03-03T15:00:00Z")));
        memory.save(&file);

        let again = SiteMemory::load(&file);
        assert_eq!(again.notes(Some(&backup)), memory.notes(Some(&backup)));
        assert_eq!(again.notes(Some(&backup)).len(), KEEP_NOTES);
        assert_eq!(again.notes(None), memory.notes(None));
        assert_eq!(again.planned(None, now), memory.planned(None, now));
        assert!(
            again.planned(None, now).is_some(),
            "planned work still under way"
        );

        std::fs::write(&file, b"{not json").expect("write");
        assert_eq!(
            SiteMemory::load(&file).notes(Some(&backup)),
            [],
            "starts empty"
        );
    }
}
