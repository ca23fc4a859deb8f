//! Telling IT: one notification per escalation change, rendered for each kind of receiver
//! (one file per notifier), delivered from a persistent outbox with retries.

mod alertmanager;
mod pagerduty;
mod send;
mod slack;
mod webhook;

use std::time::Duration;

use outpost_shared::{Status, Timestamp};
use serde::{Deserialize, Serialize};

pub use send::{DeliveryError, Sender, backoff};

use crate::engine::{Escalation, NotifyEvent};

/// Which kind of receiver a notifier talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifierKind {
    /// Generic JSON webhook: every event, the full context.
    Webhook,
    /// Prometheus Alertmanager v2: firing while open, `endsAt` on resolve.
    Alertmanager,
    /// Slack-compatible incoming webhook: a readable message.
    Slack,
    /// PagerDuty Events v2: trigger / acknowledge / resolve by dedup key.
    Pagerduty,
}

/// One configured notifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifierTarget {
    /// Kind of receiver.
    pub kind: NotifierKind,
    /// Where to send (the Alertmanager base URL, or the full webhook URL).
    pub url: String,
    /// PagerDuty routing key.
    #[serde(default)]
    pub routing_key: Option<String>,
}

/// One of the site team's notes, for IT's context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteNote {
    /// When.
    pub ts: Timestamp,
    /// Who.
    pub by: String,
    /// What they said.
    pub text: String,
    /// `note`, `working_on_it`, `checklist_done`, `planned_work`.
    pub action: String,
}

/// One recent result, for IT's context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentResult {
    /// When.
    pub ts: Timestamp,
    /// Outcome.
    pub status: Status,
    /// Plain-language sentence.
    pub summary: String,
    /// Measured values.
    pub metrics: std::collections::BTreeMap<String, f64>,
}

impl RecentResult {
    /// One line for a chat message or an alert annotation: `2027-01-15T08:00:00Z fail: The
    /// router did not answer 5 of 5 pings.`
    pub fn line(&self) -> String {
        format!("{} {}: {}", self.ts, self.status.as_str(), self.summary)
    }
}

/// Everything IT needs to act on an escalation change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// `outpost:{site}:{agent}:{check}:{id}`: the same for every message about one escalation.
    pub dedup_key: String,
    /// What happened.
    pub event: NotifyEvent,
    /// When the collector decided it.
    pub at: Timestamp,
    /// The escalation as it is now.
    pub escalation: Escalation,
    /// The check's plain-language title.
    pub check_title: String,
    /// The steps the site team was given.
    pub runbook: Vec<String>,
    /// The last results, newest first.
    pub recent: Vec<RecentResult>,
    /// What the site team said and did.
    pub notes: Vec<SiteNote>,
    /// Link to the escalation on the dashboard.
    pub dashboard_url: Option<String>,
}

impl Notification {
    /// How long it was (or has been) down.
    pub fn down_for(&self) -> Duration {
        let end = self.escalation.resolved_at.unwrap_or(self.at);
        end.duration_since(self.escalation.opened_at)
            .try_into()
            .unwrap_or_default()
    }

    /// One line for chat and alert summaries.
    pub fn headline(&self) -> String {
        let e = &self.escalation;
        let what = format!("{} at {} ({})", self.check_title, e.site, e.agent);
        match self.event {
            NotifyEvent::Opened => format!("Site team is working on: {what}"),
            NotifyEvent::Escalated => format!("Needs IT: {what}"),
            NotifyEvent::Reminder => format!("Still needs IT (not acknowledged): {what}"),
            NotifyEvent::Acknowledged => format!(
                "IT is on it ({}): {what}",
                e.acknowledged_by.as_deref().unwrap_or("someone")
            ),
            NotifyEvent::Resolved => {
                let who = match e.fixed_by {
                    Some(outpost_shared::FixedBy::SiteTeam) => "the site team",
                    _ => "IT",
                };
                format!(
                    "Resolved: {what}, down for {}, fixed by {who}",
                    outpost_shared::HumanDuration::new(Duration::from_secs(
                        self.down_for().as_secs()
                    ))
                )
            }
        }
    }
}

/// A rendered HTTP request for one notifier.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Full URL.
    pub url: String,
    /// JSON body.
    pub body: serde_json::Value,
}

impl NotifierKind {
    /// The config name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Alertmanager => "alertmanager",
            Self::Slack => "slack",
            Self::Pagerduty => "pagerduty",
        }
    }
}

impl NotifierTarget {
    /// The request this notifier sends for `n`, or `None` when it does not care about the event
    /// (the site team's window is not IT's business, except for the generic webhook).
    pub fn render(&self, n: &Notification) -> Option<Request> {
        let body = match self.kind {
            NotifierKind::Webhook => Some(webhook::body(n)),
            NotifierKind::Alertmanager => alertmanager::body(n),
            NotifierKind::Slack => slack::body(n),
            NotifierKind::Pagerduty => {
                pagerduty::body(n, self.routing_key.as_deref().unwrap_or(""))
            }
        }?;
        let url = match self.kind {
            NotifierKind::Alertmanager => {
                format!("{}/api/v2/alerts", self.url.trim_end_matches('/'))
            }
            _ => self.url.clone(),
        };
        Some(Request { url, body })
    }
}

#[cfg(test)]
mod tests;
