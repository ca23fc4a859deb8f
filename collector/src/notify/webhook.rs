//! Generic JSON webhook: the whole notification, as the contract's JSON.

use super::Notification;

/// The body: the notification itself plus a headline and the down time in seconds.
pub(super) fn body(n: &Notification) -> serde_json::Value {
    serde_json::json!({
        "v": 1,
        "dedup_key": n.dedup_key,
        "event": n.event.as_str(),
        "at": n.at,
        "headline": n.headline(),
        "down_for_s": n.down_for().as_secs(),
        "escalation": n.escalation.view(),
        "site": n.escalation.site,
        "agent": n.escalation.agent,
        "check": n.escalation.check,
        "check_title": n.check_title,
        "runbook": n.runbook,
        "recent": n.recent,
        "notes": n.notes,
        "dashboard_url": n.dashboard_url,
    })
}
