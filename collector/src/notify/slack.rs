//! Slack-compatible incoming webhook: a readable message for a chat channel.

use std::fmt::Write;

use crate::engine::NotifyEvent;

use super::Notification;

/// Recent results in a chat message: enough to see the pattern, short enough to read.
const RECENT_LINES: usize = 5;

/// The message, or `None` for the site team's window.
pub(super) fn body(n: &Notification) -> Option<serde_json::Value> {
    if n.event == NotifyEvent::Opened {
        return None;
    }
    let e = &n.escalation;
    let mut text = format!("*{}*\n{}", n.headline(), e.summary);
    if let Some(note) = &e.note {
        let _ = write!(text, "\nIT note: {note}");
    }
    if !n.recent.is_empty() {
        text.push_str("\nRecent results (newest first):");
        for result in n.recent.iter().take(RECENT_LINES) {
            let _ = write!(text, "\n• {}", result.line());
        }
    }
    if !n.notes.is_empty() {
        text.push_str("\nSite team:");
        for note in &n.notes {
            let _ = write!(text, "\n• {}: {}", note.by, note.text);
        }
    }
    if let Some(url) = &n.dashboard_url {
        let _ = write!(text, "\n<{url}|Open in Outpost>");
    }
    let _ = write!(text, "\n`{}`", n.dedup_key);
    Some(serde_json::json!({ "text": text }))
}
