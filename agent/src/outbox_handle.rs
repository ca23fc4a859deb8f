//! The one outbox shared by the scheduler, the publisher and the site page.
//!
//! Every call locks briefly and runs on the blocking pool, because appends and acks fsync.

use std::{path::Path, sync::Arc};

use outpost_shared::{Record, RecordBody};
use tokio::sync::Notify;

use crate::outbox::{Outbox, OutboxError, OutboxLimits, OutboxStats};

/// A cheap handle to the agent's durable outbox; clones share it.
#[derive(Clone)]
pub struct SharedOutbox {
    inner: Arc<std::sync::Mutex<Outbox>>,
    appended: Arc<Notify>,
    epoch: u64,
}

impl SharedOutbox {
    /// Opens (or creates) the outbox in `dir`.
    pub fn open(dir: &Path, limits: OutboxLimits) -> Result<Self, OutboxError> {
        let outbox = Outbox::open(dir, limits)?;
        Ok(Self {
            epoch: outbox.epoch(),
            inner: Arc::new(std::sync::Mutex::new(outbox)),
            appended: Arc::new(Notify::new()),
        })
    }

    /// The buffer generation.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Runs `f` on the outbox on the blocking pool.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Outbox) -> Result<T, OutboxError> + Send + 'static,
    ) -> Result<T, OutboxError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock leaves the outbox as its last durable write left it.
            let mut outbox = inner
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut outbox)
        })
        .await
        .map_err(|join| OutboxError::Io {
            path: std::path::PathBuf::new(),
            action: "running an outbox task",
            source: std::io::Error::other(join.to_string()),
        })?
    }

    /// Writes what is held back (the collector's latest watermark) to disk: at shutdown.
    pub async fn flush(&self) -> Result<(), OutboxError> {
        self.with(Outbox::flush).await
    }

    /// Appends a record; durable on return. Wakes the publisher.
    pub async fn append(&self, ts: jiff::Timestamp, body: RecordBody) -> Result<u64, OutboxError> {
        let seq = self.with(move |o| o.append(ts, body)).await?;
        self.appended.notify_one();
        Ok(seq)
    }

    /// Unacknowledged records with `seq > after_seq`, at most `max`, in order.
    pub async fn pending(&self, after_seq: u64, max: usize) -> Result<Vec<Record>, OutboxError> {
        self.with(move |o| o.pending(after_seq, max)).await
    }

    /// Frees everything up to `seq` of `epoch` (another epoch is ignored).
    pub async fn ack(&self, epoch: u64, seq: u64) -> Result<(), OutboxError> {
        self.with(move |o| o.ack(epoch, seq)).await
    }

    /// Current figures (a short lock, no I/O).
    pub fn stats(&self) -> OutboxStats {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .stats()
    }

    /// Resolves when a record was appended since the last call (or right away if one was).
    pub async fn appended(&self) {
        self.appended.notified().await;
    }
}
