//! The writer: gathers validated messages for a few milliseconds, stores them on a blocking
//! thread in one go, then acknowledges them to the broker, publishes each touched agent's ack
//! watermark and tells the engine what is new. A failed write is retried (with the messages
//! still unacknowledged) until it succeeds or the collector stops.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
    time::Duration,
};

use outpost_shared::{Ack, AgentId, AgentTopic, PROTOCOL_VERSION, SiteId, TopicKind, encode};
use rumqttc::{AsyncClient, Publish, QoS};
use tokio::{sync::mpsc, time::Instant};
use tokio_util::sync::CancellationToken;

use super::{IngestEvent, queue::QueueReceiver, validate::Inbound};
use crate::{
    metrics::Metrics,
    store::{BatchWrite, Store, StoreError},
};

/// A validated message waiting to be stored, with the publish to acknowledge afterwards.
pub struct Pending {
    /// What it says.
    pub item: Inbound,
    /// The MQTT publish (for the PUBACK).
    pub publish: Publish,
    /// When it arrived.
    pub at: jiff::Timestamp,
    /// Its share of the queue's room, given back when it is dropped (after the ack).
    pub room: super::queue::Room,
}

/// The writer's collaborators.
pub struct Writer {
    /// Where to store.
    pub store: Arc<dyn Store>,
    /// For PUBACKs and ack watermarks.
    pub client: AsyncClient,
    /// To the engine.
    pub events: mpsc::Sender<IngestEvent>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// How long to gather before writing.
    pub window: Duration,
    /// Write as soon as this many records are gathered.
    pub max_records: usize,
    /// Stops retries of a failing store.
    pub shutdown: CancellationToken,
    /// What the MQTT client could not queue yet (its queue was full): retried until it goes
    /// out.
    pub unsent: std::sync::Mutex<Unsent>,
}

/// Acknowledgements waiting for room in the MQTT client's queue.
#[derive(Default)]
pub struct Unsent {
    /// Stored messages whose PUBACK is not queued yet, in arrival order (MQTT wants PUBACKs in
    /// order). A PUBACK that is never sent leaves the message in the broker's in-flight list
    /// for this session until the next reconnect, where it is delivered again.
    pubacks: VecDeque<Publish>,
    /// Watermarks, newest per agent, so an agent with nothing more to send still learns it is
    /// safe.
    watermarks: BTreeMap<(SiteId, AgentId), Ack>,
}

/// How often unsent acknowledgements are retried while no new messages arrive.
const ACK_RETRY: Duration = Duration::from_millis(20);

/// Runs until the loop closes the channel and everything received is handled and
/// acknowledged (the loop keeps the connection polled meanwhile, for a few seconds at most).
///
/// Two stages: this task gathers and stores, a second one acknowledges what was stored and
/// tells the engine, so the next store write runs while the previous one is acknowledged
/// (and while the engine, which may be busy saving a step, takes its records).
pub async fn run(from_loop: QueueReceiver, writer: Writer) {
    let writer = Arc::new(writer);
    let (to_finish, finishing) = mpsc::channel(1);
    let finisher = tokio::spawn(finish(finishing, writer.clone()));
    let completed = gather_and_store(from_loop, &writer, to_finish).await;
    let _ = finisher.await;
    if completed {
        // Stopping: what is stored must not be delivered again after the restart.
        while writer.has_unsent() {
            tokio::time::sleep(ACK_RETRY).await;
            writer.acknowledge(&[], &[]);
        }
    }
}

/// The first stage: `false` when a write was abandoned because the collector is stopping.
async fn gather_and_store(
    mut from_loop: QueueReceiver,
    writer: &Writer,
    to_finish: mpsc::Sender<Flushed>,
) -> bool {
    while let Some(first) = from_loop.recv().await {
        let mut records = first.item.records();
        let mut pending = vec![first];
        let deadline = Instant::now() + writer.window;
        while records < writer.max_records {
            match tokio::time::timeout_at(deadline, from_loop.recv()).await {
                Ok(Some(next)) => {
                    records += next.item.records();
                    pending.push(next);
                }
                Ok(None) | Err(_) => break,
            }
        }
        let Some(flushed) = writer.store(pending).await else {
            return false;
        };
        if to_finish.send(flushed).await.is_err() {
            return false; // the second stage is gone: only when the runtime shuts down
        }
    }
    true
}

/// The second stage, in write order: PUBACKs and watermarks, then the engine; retries what
/// the MQTT client had no room for.
async fn finish(mut stored: mpsc::Receiver<Flushed>, writer: Arc<Writer>) {
    loop {
        let next = if writer.has_unsent() {
            let Ok(next) = tokio::time::timeout(ACK_RETRY, stored.recv()).await else {
                writer.acknowledge(&[], &[]);
                continue;
            };
            next
        } else {
            stored.recv().await
        };
        let Some(Flushed { pending, stored }) = next else {
            return;
        };
        writer.acknowledge(&pending, &stored);
        writer.emit(&pending, stored).await;
    }
}

/// The result of storing one pending message.
enum Stored {
    Other,
    Batch(BatchWrite),
}

/// Messages stored in one write, waiting to be acknowledged.
struct Flushed {
    pending: Arc<Vec<Pending>>,
    stored: Vec<Stored>,
}

impl Writer {
    /// Stores (retrying a failing store); `None` when the collector is stopping and the
    /// write was abandoned (the broker keeps the unacknowledged messages).
    async fn store(&self, pending: Vec<Pending>) -> Option<Flushed> {
        let pending = Arc::new(pending);
        let mut backoff = Duration::from_millis(100);
        loop {
            let store = self.store.clone();
            let items = pending.clone();
            let started = std::time::Instant::now();
            let outcome = tokio::task::spawn_blocking(move || apply(&*store, &items)).await;
            match outcome {
                Ok(Ok(stored)) => {
                    let (new, duplicates) = stored.iter().fold((0, 0), |(n, d), s| match s {
                        Stored::Batch(w) => (n + w.new.len() as u64, d + w.duplicates as u64),
                        Stored::Other => (n, d),
                    });
                    self.metrics.store_batch(new, duplicates, started.elapsed());
                    return Some(Flushed { pending, stored });
                }
                Ok(Err(e)) => {
                    self.metrics.store_error();
                    tracing::error!(error = %e, retry_in = ?backoff, "cannot store received records");
                }
                Err(e) => {
                    self.metrics.store_error();
                    tracing::error!(error = %e, "store write panicked");
                }
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return None,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    fn unsent(&self) -> std::sync::MutexGuard<'_, Unsent> {
        self.unsent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn has_unsent(&self) -> bool {
        let unsent = self.unsent();
        !unsent.pubacks.is_empty() || !unsent.watermarks.is_empty()
    }

    /// PUBACKs the stored messages to the broker and publishes the newest watermark of each
    /// agent written (retained), after what could not be queued before; what still does not
    /// fit waits for the next try.
    fn acknowledge(&self, pending: &[Pending], stored: &[Stored]) {
        let mut unsent = self.unsent();
        let Unsent {
            pubacks,
            watermarks,
        } = &mut *unsent;
        pubacks.extend(pending.iter().map(|p| p.publish.clone()));
        while let Some(publish) = pubacks.front() {
            if self.client.try_ack(publish).is_err() {
                break;
            }
            pubacks.pop_front();
        }
        for s in stored {
            if let Stored::Batch(w) = s {
                let ack = Ack {
                    v: PROTOCOL_VERSION,
                    epoch: w.epoch,
                    seq: w.watermark,
                };
                watermarks.insert((w.site.clone(), w.agent.clone()), ack);
            }
        }
        let mut full = !pubacks.is_empty();
        if full {
            tracing::debug!(
                waiting = pubacks.len(),
                "PUBACKs wait for room in the MQTT queue"
            );
        }
        watermarks.retain(|(site, agent), ack| {
            if full {
                return true;
            }
            let topic = AgentTopic::new(site, agent, TopicKind::Ack).to_string();
            let queued = self
                .client
                .try_publish(topic, QoS::AtLeastOnce, true, encode(&*ack))
                .is_ok();
            // When the client's queue is full, keep this and the rest for the next try.
            full = !queued;
            full
        });
        if !watermarks.is_empty() {
            tracing::debug!(
                waiting = watermarks.len(),
                "ack watermarks wait for room in the MQTT queue"
            );
        }
    }

    /// Sends the engine what happened, in arrival order. Waits when the engine is busy.
    async fn emit(&self, pending: &[Pending], stored: Vec<Stored>) {
        for (p, s) in pending.iter().zip(stored) {
            let event = match (&p.item, s) {
                (Inbound::Birth(birth), _) => IngestEvent::Birth {
                    birth: birth.clone(),
                    at: p.at,
                },
                (Inbound::Presence { site, agent, state }, _) => IngestEvent::Presence {
                    site: site.clone(),
                    agent: agent.clone(),
                    state: *state,
                    at: p.at,
                },
                (Inbound::Batch(_), Stored::Batch(w)) if !w.new.is_empty() => {
                    IngestEvent::Records {
                        site: w.site,
                        agent: w.agent,
                        epoch: w.epoch,
                        records: w.new,
                        at: p.at,
                    }
                }
                _ => continue,
            };
            if self.events.send(event).await.is_err() {
                return; // the engine has stopped (shutdown); storing and acking still happened
            }
        }
    }
}

/// Stores in arrival order; consecutive batches go into one transaction.
fn apply(store: &dyn Store, pending: &[Pending]) -> Result<Vec<Stored>, StoreError> {
    let mut out = Vec::with_capacity(pending.len());
    let mut i = 0;
    while i < pending.len() {
        match &pending[i].item {
            Inbound::Birth(birth) => {
                store.save_birth(birth, pending[i].at)?;
                out.push(Stored::Other);
                i += 1;
            }
            Inbound::Presence { site, agent, state } => {
                store.save_presence(site, agent, *state, pending[i].at)?;
                out.push(Stored::Other);
                i += 1;
            }
            Inbound::Dropped => {
                out.push(Stored::Other);
                i += 1;
            }
            Inbound::Batch(_) => {
                let run: Vec<_> = pending[i..]
                    .iter()
                    .map_while(|p| match &p.item {
                        Inbound::Batch(b) => Some(b.clone()),
                        _ => None,
                    })
                    .collect();
                let received = pending[i + run.len() - 1].at;
                let written = store.write_batches(&run, received)?;
                i += run.len();
                out.extend(written.into_iter().map(Stored::Batch));
            }
        }
    }
    Ok(out)
}
