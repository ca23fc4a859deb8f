//! The queue between the MQTT loop and the writer, bounded by bytes rather than messages.
//!
//! A live fleet sends one record per message and a replaying site 500: counted in messages,
//! a queue deep enough for the first lets the second pile up in memory, and one shallow
//! enough for the second (it was 64 messages) holds only 64 records of a live fleet, so the
//! loop stopped reading while the writer committed and the two took turns instead of
//! overlapping. Counted in bytes, the loop reads a whole store write's worth of either
//! while the previous write commits, and memory stays bounded.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::writer::Pending;

/// What a queued message costs beyond its payload (the decoded records, the publish).
const OVERHEAD: usize = 512;

/// The loop's end.
pub struct QueueSender {
    tx: mpsc::UnboundedSender<Pending>,
    room: Arc<Semaphore>,
    capacity: u32,
}

/// The writer's end.
pub struct QueueReceiver {
    rx: mpsc::UnboundedReceiver<Pending>,
}

/// Room for messages of `bytes` in all, payload and overhead; a message larger than that
/// alone still passes, once the queue is empty.
pub fn queue(bytes: usize) -> (QueueSender, QueueReceiver) {
    let capacity = u32::try_from(bytes.max(OVERHEAD)).unwrap_or(u32::MAX);
    let (tx, rx) = mpsc::unbounded_channel();
    let sender = QueueSender {
        tx,
        room: Arc::new(Semaphore::new(capacity as usize)),
        capacity,
    };
    (sender, QueueReceiver { rx })
}

impl QueueSender {
    /// Waits for room, then queues; the room comes back when the writer drops the message
    /// (after it is stored and acknowledged). `false` when the writer has gone.
    pub async fn send(&self, mut pending: Pending) -> bool {
        let cost = pending.publish.payload.len().saturating_add(OVERHEAD);
        let cost = u32::try_from(cost).unwrap_or(u32::MAX).min(self.capacity);
        let Ok(permit) = self.room.clone().acquire_many_owned(cost).await else {
            return false;
        };
        pending.room = Some(permit);
        self.tx.send(pending).is_ok()
    }
}

impl QueueReceiver {
    /// The next message; `None` once the loop has dropped its end and all were taken.
    pub async fn recv(&mut self) -> Option<Pending> {
        self.rx.recv().await
    }
}

/// Held by a queued message: its share of the queue's room.
pub type Room = Option<OwnedSemaphorePermit>;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rumqttc::{Publish, QoS};

    use super::*;
    use crate::ingest::Inbound;

    fn message(bytes: usize) -> Pending {
        Pending {
            item: Inbound::Dropped,
            publish: Publish::new("t", QoS::AtLeastOnce, vec![b'x'; bytes]),
            at: jiff::Timestamp::UNIX_EPOCH,
            room: None,
        }
    }

    #[tokio::test]
    async fn bounded_by_bytes_not_messages() {
        let (tx, mut rx) = queue(64 * 1024);
        // Many small messages fit (a live fleet's write) ...
        for _ in 0..100 {
            assert!(tx.send(message(100)).await);
        }
        // ... large ones only while there is room.
        let big = tokio::time::timeout(Duration::from_millis(50), tx.send(message(60 * 1024)));
        assert!(big.await.is_err(), "waits for room");
        let mut taken: Vec<Pending> = Vec::new();
        for _ in 0..100 {
            taken.push(rx.recv().await.expect("queued"));
        }
        let big = tokio::time::timeout(Duration::from_millis(50), tx.send(message(60 * 1024)));
        assert!(
            big.await.is_err(),
            "room comes back only when the writer is done"
        );
        drop(taken);
        assert!(tx.send(message(60 * 1024)).await);
        // Larger than the whole queue: passes once it is empty.
        let (tx, mut rx) = queue(1024);
        assert!(tx.send(message(10_000)).await);
        assert_eq!(
            rx.recv().await.map(|p| p.publish.payload.len()),
            Some(10_000)
        );
        drop(rx);
        assert!(!tx.send(message(1)).await, "the writer has gone");
    }
}
