//! The page's content in plain words, decided once from the live state: the HTML page, the
//! JSON status and the `status` command all show these same sentences.

use jiff::{Timestamp, tz::TimeZone};
use outpost_shared::{CheckSpec, EscalationState, EscalationView, NoteAction, Status};
use serde::Serialize;

use super::memory::{PlannedWork, SiteMemory, SiteNote};
use crate::{live::Snapshot, outbox::OutboxStats};

/// Everything the page says, in order.
#[derive(Debug, Clone, Serialize)]
pub struct PageView {
    /// "Everything is working" or "2 problems need attention".
    pub headline: String,
    /// How many checks are not working as they should.
    pub problems: usize,
    /// Whether results reach head office right now.
    pub connected: bool,
    /// "Connected" or "Offline since 10:12 — 37 results waiting to be sent".
    pub connection: String,
    /// Site-wide planned work, while it lasts.
    pub planned_work: Option<String>,
    /// IT ended the site team's planned work early: "IT ended the planned work at 14:05 ...".
    pub planned_work_ended: Option<String>,
    /// One entry per check, worst first.
    pub checks: Vec<CheckView>,
    /// When this was put together, in the site's time.
    pub generated_at: String,
}

/// One check, as the site team reads it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckView {
    /// Check id (for links and forms).
    pub id: String,
    /// Check kind.
    pub kind: String,
    /// Plain-language title.
    pub title: String,
    /// The status, `None` before the first result.
    pub status: Option<Status>,
    /// The status in a word: "Working", "Not working", "Waiting for the first result".
    pub status_words: String,
    /// "since 10:12", once known.
    pub since: Option<String>,
    /// The check's own sentence.
    pub summary: String,
    /// Who does what next: countdown, "IT has been called at 10:32", ...
    pub demarcation: Option<String>,
    /// A check it depends on is not working either: fix that one first.
    pub waiting_for: Option<String>,
    /// Working again after a recent escalation: when, and who fixed it.
    pub fixed: Option<String>,
    /// IT's note to the site, when IT wrote one.
    pub it_note: Option<String>,
    /// Steps for the site team, shown while the check is not working.
    pub runbook: Vec<String>,
    /// Heartbeat checks: when the job last reported.
    pub heartbeat: Option<String>,
    /// Checklist checks: who confirmed last.
    pub checklist: Option<String>,
    /// Planned work on this check, while it lasts.
    pub planned_work: Option<String>,
    /// Recent notes from the site team, oldest first: "10:41 Sam: restarted the router".
    pub notes: Vec<String>,
}

impl CheckView {
    /// True when the check is not working as it should (anything but ok, once it ran).
    pub fn needs_attention(&self) -> bool {
        self.status.is_some_and(|s| s != Status::Ok)
    }
}

/// Builds the view at `now`, showing times in `tz`.
pub fn build(
    snapshot: &Snapshot,
    outbox: Option<&OutboxStats>,
    memory: &SiteMemory,
    tz: &TimeZone,
    now: Timestamp,
) -> PageView {
    let clock = Clock { tz, now };
    let planned = Planned {
        memory,
        ended: snapshot
            .escalations
            .as_ref()
            .and_then(|l| l.planned_work_ended_at),
    };
    let planned_site = planned.get(None, now);
    let mut checks: Vec<CheckView> = snapshot
        .checks
        .iter()
        .map(|spec| check_view(spec, snapshot, &planned, planned_site.is_some(), &clock))
        .collect();
    // Worst first; config order among equals (the sort is stable).
    checks.sort_by_key(|c| std::cmp::Reverse(c.status.map_or(0, Status::severity)));
    let problems = checks.iter().filter(|c| c.needs_attention()).count();
    let headline = match problems {
        0 if snapshot.results.is_empty() && !snapshot.checks.is_empty() => {
            "Starting: the first checks are running".to_owned()
        }
        0 => "Everything is working".to_owned(),
        1 => "1 problem needs attention".to_owned(),
        n => format!("{n} problems need attention"),
    };
    let (connected, connection) = connection_line(snapshot, outbox, &clock);
    PageView {
        headline,
        problems,
        connected,
        connection,
        planned_work: planned_site.map(|w| {
            format!(
                "Planned work until {}: {} (declared by {}). Problems are not sent to IT until then.",
                clock.time(w.until),
                w.reason,
                w.by
            )
        }),
        planned_work_ended: planned.ended_early(now).map(|at| {
            format!(
                "IT ended the planned work at {}: problems are sent to IT again.",
                clock.time(at)
            )
        }),
        checks,
        generated_at: clock.time(now),
    }
}

/// The site team's planned work as remembered, less what IT ended early since.
struct Planned<'a> {
    memory: &'a SiteMemory,
    /// When IT last ended planned work (from the collector's escalation list).
    ended: Option<Timestamp>,
}

impl Planned<'_> {
    fn get(&self, check: Option<&outpost_shared::CheckId>, now: Timestamp) -> Option<&PlannedWork> {
        self.memory
            .planned(check, now)
            .filter(|w| self.ended.is_none_or(|ended| ended < w.declared_at))
    }

    /// When IT ended planned work that would otherwise still be going on.
    fn ended_early(&self, now: Timestamp) -> Option<Timestamp> {
        let ended = self.ended?;
        self.memory
            .all_planned(now)
            .iter()
            .any(|(_, w)| w.declared_at <= ended)
            .then_some(ended)
    }
}

fn check_view(
    spec: &CheckSpec,
    snapshot: &Snapshot,
    planned_work: &Planned<'_>,
    site_planned: bool,
    clock: &Clock<'_>,
) -> CheckView {
    let memory = planned_work.memory;
    let result = snapshot.results.get(&spec.id);
    let status = result.map(|r| r.status);
    let planned = planned_work.get(Some(&spec.id), clock.now);
    let escalation = open_escalation(snapshot, spec.id.as_str());
    let attention = status.is_some_and(|s| s != Status::Ok);
    let demarcation = attention.then(|| {
        if site_planned || planned.is_some() {
            "Planned work is going on: IT will not be called for this until it ends.".to_owned()
        } else if status == Some(Status::Warn) && !spec.escalate_warn {
            "IT is not called for a warning; have a look when you can.".to_owned()
        } else {
            demarcation(escalation, clock)
        }
    });
    let waiting_for = attention.then(|| waiting_for(spec, snapshot)).flatten();
    let fixed = (status == Some(Status::Ok))
        .then(|| fixed_line(snapshot, spec.id.as_str(), clock))
        .flatten();
    CheckView {
        id: spec.id.to_string(),
        kind: spec.kind.clone(),
        title: spec.title.clone(),
        waiting_for,
        fixed,
        status,
        status_words: status
            .map_or("Waiting for the first result", Status::in_words)
            .to_owned(),
        since: result.map(|r| format!("since {}", clock.time(r.since))),
        summary: result.map_or_else(
            || "This check has not run yet.".to_owned(),
            |r| r.summary.clone(),
        ),
        demarcation,
        it_note: escalation
            .filter(|_| attention)
            .and_then(|e| e.note.clone())
            .filter(|n| !n.trim().is_empty()),
        runbook: if attention {
            spec.runbook.clone()
        } else {
            Vec::new()
        },
        heartbeat: (spec.kind == "heartbeat").then(|| heartbeat_line(spec, snapshot, clock)),
        checklist: (spec.kind == "checklist").then(|| {
            snapshot
                .confirmations
                .get(&spec.id)
                .and_then(|list| list.last())
                .map_or_else(
                    || "Not confirmed since the agent started.".to_owned(),
                    |c| format!("Last confirmed by {} at {}.", c.by, clock.time(c.ts)),
                )
        }),
        planned_work: planned.map(|w| {
            format!(
                "Planned work until {}: {} ({}).",
                clock.time(w.until),
                w.reason,
                w.by
            )
        }),
        notes: memory
            .notes(Some(&spec.id))
            .iter()
            .map(|n| note_line(n, clock))
            .collect(),
    }
}

/// The first check `spec` depends on that is not working either, in words.
fn waiting_for(spec: &CheckSpec, snapshot: &Snapshot) -> Option<String> {
    let dep = spec.depends_on.iter().find(|dep| {
        snapshot
            .results
            .get(*dep)
            .is_some_and(|r| r.status.is_failure())
    })?;
    let title = snapshot
        .checks
        .iter()
        .find(|c| &c.id == dep)
        .map_or(dep.as_str(), |c| c.title.as_str());
    Some(format!(
        "This is probably only broken because {title} is not working: fix that first."
    ))
}

/// "Fixed at 10:50 by the site team.", from the collector's recently resolved escalations.
fn fixed_line(snapshot: &Snapshot, check: &str, clock: &Clock<'_>) -> Option<String> {
    let e = snapshot
        .escalations
        .as_ref()?
        .escalations
        .iter()
        .filter(|e| e.check == check && e.state == EscalationState::Resolved)
        .max_by_key(|e| e.resolved_at)?;
    let at = clock.time(e.resolved_at?);
    Some(match e.fixed_by {
        Some(outpost_shared::FixedBy::SiteTeam) => format!("Fixed at {at} by the site team."),
        Some(outpost_shared::FixedBy::It) => format!("Fixed at {at} by IT."),
        None => format!("Working again since {at}."),
    })
}

/// The most advanced open escalation about `check`.
fn open_escalation<'a>(snapshot: &'a Snapshot, check: &str) -> Option<&'a EscalationView> {
    snapshot
        .escalations
        .as_ref()?
        .escalations
        .iter()
        .filter(|e| e.check == check && e.state.is_open())
        .max_by_key(|e| e.state)
}

/// Who acts next, from what the collector last said.
fn demarcation(escalation: Option<&EscalationView>, clock: &Clock<'_>) -> String {
    let Some(e) = escalation else {
        return "IT will be called if this is not fixed.".to_owned();
    };
    match e.state {
        EscalationState::Local => match e.local_until {
            Some(until) if until > clock.now => format!(
                "You have {} to try these steps; after that IT is called automatically (at {}).",
                minutes_left(until.duration_since(clock.now)),
                clock.time(until)
            ),
            _ => "Your time to fix it is up: IT is being called now.".to_owned(),
        },
        EscalationState::Escalated => match e.escalated_at {
            Some(at) => format!("IT has been called at {}.", clock.time(at)),
            None => "IT has been called.".to_owned(),
        },
        EscalationState::Acknowledged => {
            let who = e
                .acknowledged_by
                .as_deref()
                .map(|by| format!(" by {by}"))
                .unwrap_or_default();
            let when = e
                .acknowledged_at
                .map(|at| format!(" at {}", clock.time(at)))
                .unwrap_or_default();
            format!("IT is on it: acknowledged{who}{when}.")
        }
        EscalationState::Failing | EscalationState::Resolved => {
            "IT will be called if this is not fixed.".to_owned()
        }
    }
}

fn minutes_left(left: jiff::SignedDuration) -> String {
    let secs = left.as_secs();
    if secs < 60 {
        return "less than a minute".to_owned();
    }
    let minutes = (secs + 59) / 60;
    if minutes == 1 {
        "1 minute".to_owned()
    } else {
        format!("{minutes} minutes")
    }
}

fn heartbeat_line(spec: &CheckSpec, snapshot: &Snapshot, clock: &Clock<'_>) -> String {
    match snapshot.heartbeats.get(&spec.id) {
        Some(report) => {
            let how = if report.status == Status::Ok {
                "all fine".to_owned()
            } else {
                "it failed".to_owned()
            };
            let message = report
                .message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            format!(
                "The job last reported at {}: {how}{message}.",
                clock.time(report.ts)
            )
        }
        None => format!(
            "The job has not reported since the agent started at {}.",
            clock.time(snapshot.started_at)
        ),
    }
}

fn note_line(note: &SiteNote, clock: &Clock<'_>) -> String {
    let time = clock.time(note.ts);
    match note.action {
        NoteAction::WorkingOnIt => format!("{time} {} is working on it.", note.by),
        NoteAction::ChecklistDone => format!("{time} {} confirmed it done.", note.by),
        NoteAction::PlannedWork => {
            format!("{time} {} declared planned work: {}", note.by, note.text)
        }
        NoteAction::PlannedWorkEnded => format!("{time} {} ended the planned work.", note.by),
        NoteAction::Note => format!("{time} {}: {}", note.by, note.text),
    }
}

/// "Connected" / "Offline since 10:12 — 37 results waiting to be sent".
fn connection_line(
    snapshot: &Snapshot,
    outbox: Option<&OutboxStats>,
    clock: &Clock<'_>,
) -> (bool, String) {
    let pending = outbox.map_or(0, |o| o.pending);
    let waiting = match pending {
        0 => String::new(),
        1 => " — 1 result waiting to be sent".to_owned(),
        n => format!(" — {n} results waiting to be sent"),
    };
    match &snapshot.connection {
        Some(c) if c.connected && c.collector_online == Some(false) => (
            false,
            format!("Connected, but head office is not answering{waiting}"),
        ),
        Some(c) if c.connected => (true, "Connected".to_owned()),
        Some(c) => (
            false,
            format!("Offline since {}{waiting}", clock.time(c.since)),
        ),
        None => (false, format!("Connecting to head office{waiting}")),
    }
}

/// Shows times in the site's zone: "10:32" today, "Mon 3 Mar 10:32" otherwise.
struct Clock<'a> {
    tz: &'a TimeZone,
    now: Timestamp,
}

impl Clock<'_> {
    fn time(&self, ts: Timestamp) -> String {
        let at = ts.to_zoned(self.tz.clone());
        if at.date() == self.now.to_zoned(self.tz.clone()).date() {
            at.strftime("%H:%M").to_string()
        } else {
            at.strftime("%a %-d %b %H:%M").to_string()
        }
    }
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
