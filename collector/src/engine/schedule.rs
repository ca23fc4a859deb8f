//! Maintenance windows that come back on a schedule, from the collector's config ("every
//! Saturday 02:00–04:00 the ISP works on the line"): a pure function of the time.

use jiff::{Timestamp, civil::Time, tz::TimeZone};
use outpost_shared::{AgentId, CheckId, SiteId};

/// A recurring window: on `days`, from `from` to `to` in `tz` (past midnight when `to` is
/// earlier than `from`: the night after each of `days`).
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledWindow {
    /// The site it holds.
    pub site: SiteId,
    /// Only this agent, when given.
    pub agent: Option<AgentId>,
    /// Only this check, when given.
    pub check: Option<CheckId>,
    /// Monday first.
    pub days: [bool; 7],
    /// Start, local time.
    pub from: Time,
    /// End, local time.
    pub to: Time,
    /// Whose clock.
    pub tz: TimeZone,
    /// Why (shown with the held escalation).
    pub reason: String,
}

impl ScheduledWindow {
    /// Whether it holds `check` of `agent` at `site` (or the agent itself when `None`) now.
    pub fn covers(
        &self,
        site: &SiteId,
        agent: &AgentId,
        check: Option<&CheckId>,
        now: Timestamp,
    ) -> bool {
        if &self.site != site
            || self.agent.as_ref().is_some_and(|a| a != agent)
            || self.check.as_ref().is_some_and(|c| Some(c) != check)
        {
            return false;
        }
        let local = now.to_zoned(self.tz.clone());
        let today = usize::from(local.weekday().to_monday_zero_offset().unsigned_abs());
        let yesterday = (today + 6) % 7;
        let time = local.time();
        if self.from <= self.to {
            self.days[today] && self.from <= time && time < self.to
        } else {
            (self.days[today] && time >= self.from) || (self.days[yesterday] && time < self.to)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(days: [bool; 7], from: &str, to: &str, tz: &str) -> ScheduledWindow {
        ScheduledWindow {
            site: SiteId::new("plant-leeds").expect("id"),
            agent: None,
            check: None,
            days,
            from: from.parse().expect("time"),
            to: to.parse().expect("time"),
            tz: TimeZone::get(tz).expect("tzdb"),
            reason: "ISP works on the line".into(),
        }
    }

    #[test]
    fn covers_its_days_and_hours_in_its_own_time_zone() {
        const SAT: [bool; 7] = [false, false, false, false, false, true, false];
        let site = SiteId::new("plant-leeds").expect("id");
        let other = SiteId::new("depot-york").expect("id");
        let agent = AgentId::new("pc").expect("id");
        // (window, instant, held)
        let cases = [
            // Saturday 2026-12-05, London = UTC in winter.
            (
                window(SAT, "02:00", "04:00", "Europe/London"),
                "2026-12-05T02:00:00Z",
                true,
            ),
            (
                window(SAT, "02:00", "04:00", "Europe/London"),
                "2026-12-05T03:59:59Z",
                true,
            ),
            (
                window(SAT, "02:00", "04:00", "Europe/London"),
                "2026-12-05T04:00:00Z",
                false,
            ),
            (
                window(SAT, "02:00", "04:00", "Europe/London"),
                "2026-12-06T02:30:00Z",
                false,
            ),
            // The same local hours in New York are five hours later in UTC.
            (
                window(SAT, "02:00", "04:00", "America/New_York"),
                "2026-12-05T02:30:00Z",
                false,
            ),
            (
                window(SAT, "02:00", "04:00", "America/New_York"),
                "2026-12-05T07:30:00Z",
                true,
            ),
            // Past midnight: Saturday 23:00 to Sunday 01:00.
            (
                window(SAT, "23:00", "01:00", "UTC"),
                "2026-12-05T23:30:00Z",
                true,
            ),
            (
                window(SAT, "23:00", "01:00", "UTC"),
                "2026-12-06T00:30:00Z",
                true,
            ),
            (
                window(SAT, "23:00", "01:00", "UTC"),
                "2026-12-06T23:30:00Z",
                false,
            ),
            (
                window(SAT, "23:00", "01:00", "UTC"),
                "2026-12-05T00:30:00Z",
                false,
            ),
        ];
        for (w, at, held) in cases {
            let now: Timestamp = at.parse().expect("instant");
            assert_eq!(
                w.covers(&site, &agent, None, now),
                held,
                "{at} in {:?}",
                w.tz
            );
            assert!(!w.covers(&other, &agent, None, now), "another site");
        }
    }
}
