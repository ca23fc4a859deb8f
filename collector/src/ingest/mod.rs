//! Ingest: the MQTT side of the collector. Subscribes to every agent's birth, state and
//! records, validates and decodes them, stores them in batches, publishes each agent's ack
//! watermark and hands what is new to the engine as [`IngestEvent`]s.
//!
//! Two tasks: the MQTT loop (`mqtt.rs`) polls the connection and validates; the writer
//! (`writer.rs`) batches, stores on a blocking thread, acks and emits events. Between them a
//! queue bounded by bytes (`queue.rs`): when the store falls behind, the loop stops reading the connection and
//! MQTT flow control keeps the rest queued at the broker. Publishes are acknowledged to the
//! broker (manual PUBACK) only after they are committed, so a crash loses nothing: the broker
//! redelivers (persistent session) and the store ignores what it already has.

mod limit;
mod mqtt;
mod queue;
mod settings;
mod validate;
mod writer;

use std::sync::Arc;

use outpost_shared::{AgentId, SiteId};
use tokio::{sync::mpsc, task::JoinHandle};
use tokio_util::sync::CancellationToken;

pub use settings::{IngestError, IngestSettings};
pub use validate::{Inbound, Rejection, classify};

use crate::{metrics::Metrics, store::Store};

/// What ingest tells the engine, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum IngestEvent {
    /// An agent (re)announced itself and its check catalogue.
    Birth {
        /// The birth as received.
        birth: outpost_shared::Birth,
        /// When the collector received it.
        at: jiff::Timestamp,
    },
    /// An agent's presence (retained state or its Last Will).
    Presence {
        /// The site.
        site: SiteId,
        /// The agent.
        agent: AgentId,
        /// Online or offline.
        state: outpost_shared::PresenceState,
        /// When the collector received it.
        at: jiff::Timestamp,
    },
    /// Records stored for the first time (duplicates filtered out), in seq order.
    Records {
        /// The site.
        site: SiteId,
        /// The agent.
        agent: AgentId,
        /// The agent's buffer generation.
        epoch: u64,
        /// The new records.
        records: Vec<outpost_shared::Record>,
        /// When the collector received them.
        at: jiff::Timestamp,
    },
}

/// A running ingest: the MQTT client (to publish escalations on the same connection) and
/// the task to await at shutdown.
pub struct Ingest {
    /// The collector's MQTT client; publishing on it never blocks ingest for long.
    pub client: rumqttc::AsyncClient,
    task: JoinHandle<()>,
}

impl Ingest {
    /// Waits until ingest has stopped (after `shutdown` was cancelled): pending writes are
    /// flushed and acknowledged, the offline state published, the connection closed.
    pub async fn join(self) {
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "ingest task failed");
        }
    }
}

/// Connects (in the background; it retries) and starts ingesting.
pub fn start(
    settings: &IngestSettings,
    store: Arc<dyn Store>,
    events: mpsc::Sender<IngestEvent>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Ingest {
    // Room for the PUBACKs of several store writes of one-record messages, plus ack
    // watermarks and escalation lists; what does not fit is retried (writer.rs).
    let (client, eventloop) = rumqttc::AsyncClient::new(settings.mqtt_options(), 32_768);
    let (to_writer, from_loop) = queue::queue(settings.queue_bytes);
    let writer = tokio::spawn(writer::run(
        from_loop,
        writer::Writer {
            store,
            client: client.clone(),
            events,
            metrics: metrics.clone(),
            window: settings.batch_window,
            max_records: settings.batch_records,
            shutdown: shutdown.clone(),
            unsent: std::sync::Mutex::default(),
        },
    ));
    let task = tokio::spawn(mqtt::run(
        eventloop,
        client.clone(),
        to_writer,
        writer,
        mqtt::LoopSettings {
            metrics,
            max_payload: settings.max_payload,
            site_rate: settings.site_rate,
            site_burst: settings.site_burst,
            shared_group: settings.shared_group.clone(),
            shutdown,
        },
    ));
    Ingest { client, task }
}
