//! `checklist`: a person confirms a duty by a time of day ("robot cages locked at 18:00") on
//! chosen weekdays, in the site's time zone. Unconfirmed past `due` + `grace` fails.
//!
//! Each due time has a window that opens at the previous due time's deadline (due + grace)
//! and closes at its own deadline. A confirmation inside the window covers it. When a due
//! time was missed, the first confirmation after its deadline covers it late, and is not
//! counted again for the next one.

use std::{sync::Arc, time::Duration};

use jiff::{Timestamp, ToSpan, Zoned, civil::Weekday, tz::TimeZone};
use outpost_shared::{HumanDuration, Status};
use serde::Deserialize;

use super::{Check, CheckCommon, CheckFuture, Outcome, RunContext, SettingError};
use crate::live::Confirmation;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    due: String,
    #[serde(default = "default_grace")]
    grace: HumanDuration,
    days: Option<Vec<String>>,
}

const fn default_grace() -> HumanDuration {
    HumanDuration::from_secs(30 * 60)
}

/// When a duty is due: a time of day on some weekdays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Hour, 0–23.
    pub hour: i8,
    /// Minute, 0–59.
    pub minute: i8,
    /// Extra time before it fails.
    pub grace: Duration,
    /// Enabled weekdays, Monday first.
    pub days: [bool; 7],
}

struct Checklist {
    common: CheckCommon,
    schedule: Schedule,
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn parse_due(text: &str) -> Option<(i8, i8)> {
    let (h, m) = text.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some((h, m))
}

pub(super) fn build(
    common: CheckCommon,
    table: toml::Table,
) -> Result<Arc<dyn Check>, SettingError> {
    let s: Settings = super::settings(table)?;
    let (hour, minute) = parse_due(&s.due).ok_or_else(|| {
        SettingError::key(
            "due",
            format!(
                "{:?} is not a time of day; expected \"HH:MM\" in 24-hour time, like \"18:00\"",
                s.due
            ),
        )
    })?;
    let mut days = [s.days.is_none(); 7];
    for day in s.days.iter().flatten() {
        let index = DAY_NAMES
            .iter()
            .position(|d| d.eq_ignore_ascii_case(day.trim()))
            .ok_or_else(|| {
                SettingError::key(
                    "days",
                    format!(
                        "{day:?} is not a weekday; expected some of {}",
                        DAY_NAMES.join(", ")
                    ),
                )
            })?;
        days[index] = true;
    }
    if !days.contains(&true) {
        return Err(SettingError::key(
            "days",
            "days is empty; expected some of mon, tue, wed, thu, fri, sat, sun",
        ));
    }
    if s.grace.get() >= Duration::from_secs(86_400) {
        return Err(SettingError::key(
            "grace",
            "grace is a day or more; expected less than 24h",
        ));
    }
    Ok(Arc::new(Checklist {
        common,
        schedule: Schedule {
            hour,
            minute,
            grace: s.grace.get(),
            days,
        },
    }))
}

fn weekday_index(w: Weekday) -> usize {
    usize::try_from(w.to_monday_zero_offset()).unwrap_or(0)
}

/// Due times (as zoned times) from 8 days before to 8 days after `now`, in order.
fn occurrences(schedule: &Schedule, tz: &TimeZone, now: Timestamp) -> Vec<Zoned> {
    let today = now.to_zoned(tz.clone()).date();
    (-8i64..=8)
        .filter_map(|offset| today.checked_add(offset.days()).ok())
        .filter(|date| schedule.days[weekday_index(date.weekday())])
        .filter_map(|date| {
            date.at(schedule.hour, schedule.minute, 0, 0)
                .to_zoned(tz.clone())
                .ok()
        })
        .collect()
}

/// Judges the checklist at `now` from the confirmations (oldest first).
pub fn checklist_state(
    title: &str,
    schedule: &Schedule,
    tz: &TimeZone,
    confirmations: &[Confirmation],
    started_at: Timestamp,
    now: Timestamp,
) -> Outcome {
    let grace = jiff::SignedDuration::try_from(schedule.grace).unwrap_or_default();
    let deadline = |z: &Zoned| z.timestamp().saturating_add(grace).unwrap_or(z.timestamp());
    let occ = occurrences(schedule, tz, now);
    let Some(next_i) = occ.iter().position(|z| deadline(z) > now) else {
        return Outcome::new(
            Status::Unknown,
            format!("{title}: no due time could be worked out."),
        );
    };
    let next = &occ[next_i];
    let last = next_i.checked_sub(1).map(|i| &occ[i]);
    let when = |z: &Zoned| {
        if z.date() == now.to_zoned(tz.clone()).date() {
            z.strftime("%H:%M").to_string()
        } else {
            z.strftime("%H:%M on %A").to_string()
        }
    };
    let in_range = |c: &Confirmation, from: Option<Timestamp>, to: Timestamp| {
        from.is_none_or(|f| c.ts > f) && c.ts <= to
    };

    // The last due time whose deadline passed: covered in its window, late, or missed.
    let mut consumed: Option<usize> = None;
    let mut last_missed = None;
    if let Some(last) = last.filter(|l| deadline(l) >= started_at) {
        let opened = next_i.checked_sub(2).map(|i| deadline(&occ[i]));
        let on_time = confirmations
            .iter()
            .any(|c| in_range(c, opened, deadline(last)));
        if !on_time {
            consumed = confirmations.iter().position(|c| c.ts > deadline(last));
            if consumed.is_none() {
                last_missed = Some(last);
            }
        }
    }
    let opened = last.map(deadline);
    let covering = confirmations
        .iter()
        .enumerate()
        .filter(|(i, c)| Some(*i) != consumed && in_range(c, opened, deadline(next)))
        .map(|(_, c)| c)
        .next_back();
    let confirmed_text = |c: &Confirmation| {
        let at = c.ts.to_zoned(tz.clone());
        format!("{title}: confirmed by {} at {}.", c.by, when(&at))
    };

    let (status, summary) = if let Some(c) = covering {
        (Status::Ok, confirmed_text(c))
    } else if now >= next.timestamp() {
        (
            Status::Warn,
            format!(
                "{title} was due at {} and is not confirmed yet; it counts as missed after {}.",
                when(next),
                when(&Zoned::new(deadline(next), tz.clone()))
            ),
        )
    } else if let Some(missed) = last_missed {
        (
            Status::Fail,
            format!(
                "{title} was due at {} and nobody confirmed it.",
                when(missed)
            ),
        )
    } else if let Some(c) = consumed.and_then(|i| confirmations.get(i)) {
        (
            Status::Ok,
            format!("{} (late)", confirmed_text(c).trim_end_matches('.')),
        )
    } else {
        (
            Status::Ok,
            format!("{title} is next due at {}.", when(next)),
        )
    };
    Outcome::new(status, summary)
        .metric("next_due", next.timestamp().as_second() as f64)
        .metric("confirmed", if covering.is_some() { 1.0 } else { 0.0 })
}

impl Check for Checklist {
    fn common(&self) -> &CheckCommon {
        &self.common
    }

    fn thresholds(&self) -> std::collections::BTreeMap<String, f64> {
        [
            (
                "due_minute_of_day".to_owned(),
                f64::from(self.schedule.hour) * 60.0 + f64::from(self.schedule.minute),
            ),
            ("grace_s".to_owned(), self.schedule.grace.as_secs() as f64),
        ]
        .into()
    }

    fn run<'a>(&'a self, ctx: &'a RunContext) -> CheckFuture<'a> {
        Box::pin(async move {
            let confirmations = ctx.live.confirmations(&self.common.id);
            checklist_state(
                &self.common.title,
                &self.schedule,
                &ctx.timezone,
                &confirmations,
                ctx.started_at,
                Timestamp::now(),
            )
        })
    }
}

#[cfg(test)]
#[path = "checklist_tests.rs"]
mod tests;
