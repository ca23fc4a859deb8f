//! PagerDuty Events API v2: trigger, acknowledge and resolve one incident per dedup key.

use crate::engine::NotifyEvent;

use super::Notification;

/// The event, or `None` for the site team's window.
pub(super) fn body(n: &Notification, routing_key: &str) -> Option<serde_json::Value> {
    let action = match n.event {
        NotifyEvent::Opened => return None,
        NotifyEvent::Escalated | NotifyEvent::Reminder => "trigger",
        NotifyEvent::Acknowledged => "acknowledge",
        NotifyEvent::Resolved => "resolve",
    };
    let e = &n.escalation;
    Some(serde_json::json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": n.dedup_key,
        "payload": {
            "summary": n.headline(),
            "source": format!("{}/{}", e.site, e.agent),
            "severity": "critical",
            "timestamp": e.opened_at,
            "component": e.check,
            "group": e.site,
            "custom_details": {
                "summary": e.summary,
                "runbook": n.runbook,
                "site_notes": n.notes,
                "recent": n.recent,
            },
        },
        "links": n.dashboard_url.as_ref().map(|u| vec![serde_json::json!({"href": u, "text": "Outpost"})]).unwrap_or_default(),
    }))
}
