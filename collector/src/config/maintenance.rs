//! `[[maintenance]]`: recurring maintenance windows in the collector's config, checked here
//! and handed to the engine as [`ScheduledWindow`]s.

use outpost_shared::{AgentId, CheckId, SiteId};
use serde::Deserialize;

use crate::engine::ScheduledWindow;

/// One `[[maintenance]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceConfig {
    /// The site it holds.
    pub site: String,
    /// Only this agent.
    #[serde(default)]
    pub agent: Option<String>,
    /// Only this check.
    #[serde(default)]
    pub check: Option<String>,
    /// Days it starts on ("mon" .. "sun"); every day when left out.
    #[serde(default)]
    pub days: Option<Vec<String>>,
    /// Start, "02:00" local time.
    pub from: String,
    /// End, "04:00" (earlier than `from`: past midnight).
    pub to: String,
    /// IANA time zone of `from`/`to` (default UTC), e.g. "Europe/London".
    #[serde(default)]
    pub timezone: Option<String>,
    /// Why, as shown with what it holds.
    pub reason: String,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl MaintenanceConfig {
    /// The window, or the key that is wrong and what would be valid.
    pub fn window(&self) -> Result<ScheduledWindow, (&'static str, String)> {
        let site = SiteId::new(self.site.as_str()).map_err(|e| ("site", e.to_string()))?;
        let agent = self
            .agent
            .as_deref()
            .map(AgentId::new)
            .transpose()
            .map_err(|e| ("agent", e.to_string()))?;
        let check = self
            .check
            .as_deref()
            .map(CheckId::new)
            .transpose()
            .map_err(|e| ("check", e.to_string()))?;
        let mut days = [self.days.is_none(); 7];
        for day in self.days.iter().flatten() {
            let Some(i) = DAYS.iter().position(|d| day.eq_ignore_ascii_case(d)) else {
                return Err((
                    "days",
                    format!("{day:?} is not a day; expected some of {}", DAYS.join(", ")),
                ));
            };
            days[i] = true;
        }
        let time = |key, text: &str| {
            text.parse::<jiff::civil::Time>().map_err(|_| {
                (
                    key,
                    format!("{text:?} is not a time of day; expected like \"02:00\""),
                )
            })
        };
        let (from, to) = (time("from", &self.from)?, time("to", &self.to)?);
        if from == to {
            return Err((
                "to",
                "the window ends when it starts; give a later `to`".into(),
            ));
        }
        let zone = self.timezone.as_deref().unwrap_or("UTC");
        let tz = jiff::tz::TimeZone::get(zone).map_err(|_| {
            (
                "timezone",
                format!(
                    "{zone:?} is not a time zone; expected an IANA name like \"Europe/London\""
                ),
            )
        })?;
        if self.reason.trim().is_empty() {
            return Err(("reason", "say why, e.g. \"weekly ISP maintenance\"".into()));
        }
        Ok(ScheduledWindow {
            site,
            agent,
            check,
            days,
            from,
            to,
            tz,
            reason: self.reason.trim().to_owned(),
        })
    }
}
