//! Prometheus Alertmanager v2 (`POST /api/v2/alerts`): an alert per escalation, firing while IT
//! owns it, with `endsAt` when it resolves. Alertmanager expects firing alerts to be re-sent.

use crate::engine::NotifyEvent;

use super::Notification;

/// The body: a one-alert array, or `None` for the site team's window (not IT's business yet).
pub(super) fn body(n: &Notification) -> Option<serde_json::Value> {
    let e = &n.escalation;
    let ends_at = match n.event {
        NotifyEvent::Opened => return None,
        NotifyEvent::Resolved => Some(e.resolved_at.unwrap_or(n.at)),
        _ => None,
    };
    let mut alert = serde_json::json!({
        "labels": {
            "alertname": "OutpostEscalation",
            "site": e.site,
            "agent": e.agent,
            "check": e.check,
            "kind": e.kind.as_str(),
            "dedup_key": n.dedup_key,
            "severity": "critical",
        },
        "annotations": {
            "summary": n.headline(),
            "description": e.summary,
            "runbook": n.runbook.join("\n"),
            "site_notes": n.notes.iter().map(|x| format!("{} ({}): {}", x.by, x.action, x.text)).collect::<Vec<_>>().join("\n"),
            "recent": n.recent.iter().map(super::RecentResult::line).collect::<Vec<_>>().join("\n"),
            "state": e.state.as_str(),
            "acknowledged_by": e.acknowledged_by.clone().unwrap_or_default(),
        },
        "startsAt": e.opened_at,
    });
    if let Some(end) = ends_at {
        alert["endsAt"] = serde_json::json!(end);
    }
    if let Some(url) = &n.dashboard_url {
        alert["generatorURL"] = serde_json::json!(url);
    }
    Some(serde_json::json!([alert]))
}
