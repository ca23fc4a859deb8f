//! The delivery task: sends queued notifications, oldest first, and retries failures with
//! backoff. A notification is marked delivered only after the receiver said 2xx, so a crash
//! can repeat one (same dedup key) but never lose one.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use outpost_shared::Timestamp;
use tokio_util::sync::CancellationToken;

use super::{DecisionLog, log::QueuedNotification};
use crate::{
    cluster::Role,
    notify::{Request, Sender, backoff},
};

/// Delivery counters for `/metrics`.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    /// Delivered notifications.
    pub delivered: AtomicU64,
    /// Failed tries.
    pub failed: AtomicU64,
    /// Notifications waiting (last count).
    pub backlog: AtomicU64,
}

/// Runs until cancelled; `wake` is notified when new notifications were queued. Only the
/// deciding collector delivers (`role`): the outbox is shared when several run on one store.
pub async fn deliver(
    log: Arc<dyn DecisionLog>,
    sender: Sender,
    wake: Arc<tokio::sync::Notify>,
    stats: Arc<DeliveryStats>,
    role: Arc<Role>,
    cancel: CancellationToken,
) {
    loop {
        if !role.leading() {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(500)) => continue,
            }
        }
        let now = Timestamp::now();
        let reader = log.clone();
        let due = match tokio::task::spawn_blocking(move || reader.due(now, 100)).await {
            Ok(Ok(due)) => due,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot read the notification outbox");
                Vec::new()
            }
            Err(e) => {
                tracing::error!(error = %e, "notification outbox task failed");
                Vec::new()
            }
        };
        let idle = due.is_empty();
        if idle {
            let counter = log.clone();
            if let Ok(Ok(n)) = tokio::task::spawn_blocking(move || counter.backlog()).await {
                stats.backlog.store(n, Ordering::Relaxed);
            }
        }
        // Notifiers are independent: one that hangs (10 s timeout per try) must not hold up
        // the others' pages, so each notifier's share goes out on its own, in order.
        let mut by_notifier: std::collections::BTreeMap<String, Vec<QueuedNotification>> =
            std::collections::BTreeMap::new();
        for queued in due {
            by_notifier
                .entry(queued.notification.notifier.clone())
                .or_default()
                .push(queued);
        }
        let mut sending = tokio::task::JoinSet::new();
        for queue in by_notifier.into_values() {
            let (log, sender, stats, cancel) =
                (log.clone(), sender.clone(), stats.clone(), cancel.clone());
            sending.spawn(async move {
                for queued in queue {
                    if cancel.is_cancelled() {
                        return;
                    }
                    send_one(&log, &sender, &stats, queued).await;
                }
            });
        }
        while sending.join_next().await.is_some() {}
        if cancel.is_cancelled() {
            return;
        }
        if idle {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = wake.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }
}

/// Sends one notification and records the outcome: delivered, or when to try again.
async fn send_one(
    log: &Arc<dyn DecisionLog>,
    sender: &Sender,
    stats: &DeliveryStats,
    queued: QueuedNotification,
) {
    let request = Request {
        url: queued.notification.url.clone(),
        body: queued.notification.body.clone(),
    };
    let outcome = sender.send(&request).await;
    let writer = log.clone();
    let id = queued.id;
    let attempts = queued.attempts + 1;
    let write = match outcome {
        Ok(()) => {
            stats.delivered.fetch_add(1, Ordering::Relaxed);
            tokio::task::spawn_blocking(move || writer.delivered(id, Timestamp::now())).await
        }
        Err(e) => {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(notifier = %queued.notification.notifier, key = %queued.notification.dedup_key, attempts, error = %e, "notification not delivered; will retry");
            let retry_at = crate::engine::add(Timestamp::now(), backoff(attempts));
            let error = e.to_string();
            tokio::task::spawn_blocking(move || writer.failed(id, &error, retry_at)).await
        }
    };
    match write {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "cannot record a delivery outcome"),
        Err(e) => tracing::error!(error = %e, "delivery bookkeeping task failed"),
    }
}
