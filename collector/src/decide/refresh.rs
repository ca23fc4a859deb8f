//! Alertmanager expects firing alerts to be re-sent: it resolves an alert it has not heard of
//! for `resolve_timeout`. This task re-posts every escalation IT owns, while it is open.

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use outpost_shared::{EscalationState, Timestamp};
use tokio_util::sync::CancellationToken;

use super::build_notification;
use crate::{
    engine::{Engine, NotifyEvent},
    notify::{NotifierKind, NotifierTarget, Sender},
};

/// How often firing alerts are re-sent (well inside Alertmanager's default 5 minutes).
pub const REFRESH_EVERY: Duration = Duration::from_secs(60);

/// Re-posts firing alerts to every Alertmanager target until cancelled.
pub async fn refresh_alerts(
    engine: Arc<RwLock<Engine>>,
    targets: Vec<NotifierTarget>,
    sender: Sender,
    every: Duration,
    cancel: CancellationToken,
) {
    let targets: Vec<NotifierTarget> = targets
        .into_iter()
        .filter(|t| t.kind == NotifierKind::Alertmanager)
        .collect();
    if targets.is_empty() {
        return;
    }
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let requests: Vec<_> = {
            let engine = engine
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Timestamp::now();
            engine
                .escalations()
                .filter(|e| {
                    matches!(
                        e.state,
                        EscalationState::Escalated | EscalationState::Acknowledged
                    ) && !e.historical
                })
                .flat_map(|e| {
                    let n = build_notification(&engine, e, NotifyEvent::Reminder, now, None);
                    targets
                        .iter()
                        .filter_map(move |t| t.render(&n))
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        for request in requests {
            if let Err(e) = sender.send(&request).await {
                tracing::warn!(error = %e, "re-sending a firing alert failed; the next round tries again");
            }
        }
    }
}
