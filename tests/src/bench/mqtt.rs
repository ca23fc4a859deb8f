//! MQTT clients for the load generator: publishers (one connection may carry many simulated
//! agents), the ack watcher that tells when the collector has committed everything, and the
//! plain subscriber that is the baseline.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};

/// What a connection does with each message it receives.
type Sink = Box<dyn Fn(&Publish) + Send + Sync>;

/// Connects `client_id` to the broker on `port` (clean session), polls it on a task that
/// hands every received publish to `sink`, and returns once the broker accepted it.
pub async fn connect(
    port: u16,
    client_id: &str,
    sink: Option<Sink>,
) -> anyhow::Result<AsyncClient> {
    let mut opts = MqttOptions::new(client_id, "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(60))
        .set_clean_session(true)
        .set_max_packet_size(16 << 20, 16 << 20);
    let (client, mut events) = AsyncClient::new(opts, 1000);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let mut ready = Some(ready_tx);
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if let Some(sink) = &sink {
                        sink(&p);
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(20), ready_rx)
        .await
        .with_context(|| format!("MQTT client {client_id} got no CONNACK within 20 s"))?
        .context("MQTT event loop ended")?;
    Ok(client)
}

/// The newest ack watermark of every agent, and when each arrived.
#[derive(Clone, Default)]
pub struct AckWatch {
    inner: Arc<Mutex<AckState>>,
}

#[derive(Default)]
struct AckState {
    latest: HashMap<String, u64>,
    history: Vec<(String, u64, Instant)>,
}

impl AckWatch {
    /// Subscribes to every agent's ack topic on the broker at `port`.
    pub async fn start(port: u16) -> anyhow::Result<Self> {
        let watch = Self::default();
        let state = watch.inner.clone();
        let sink: Sink = Box::new(move |p: &Publish| {
            let Some(key) = agent_key(&p.topic) else {
                return;
            };
            let Ok(ack) = outpost_shared::decode::<outpost_shared::Ack>(&p.payload) else {
                return;
            };
            let mut s = state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let seq = s.latest.entry(key.clone()).or_default();
            *seq = (*seq).max(ack.seq);
            s.history.push((key, ack.seq, Instant::now()));
        });
        let client = connect(port, "bench-ack-watch", Some(sink)).await?;
        client
            .subscribe(
                outpost_shared::TopicKind::Ack.filter_all(),
                QoS::AtLeastOnce,
            )
            .await
            .context("subscribing to acks")?;
        Ok(watch)
    }

    /// The newest acked seq of `key` (`site/agent`).
    pub fn acked(&self, key: &str) -> u64 {
        self.lock().latest.get(key).copied().unwrap_or(0)
    }

    /// Waits until every `(key, seq)` in `targets` is acked; returns when the last ack came.
    pub async fn wait_all(
        &self,
        targets: &[(String, u64)],
        timeout: Duration,
    ) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let missing = {
                let s = self.lock();
                targets
                    .iter()
                    .filter(|(k, seq)| s.latest.get(k).copied().unwrap_or(0) < *seq)
                    .count()
            };
            if missing == 0 {
                return Ok(self.last_arrival().unwrap_or_else(Instant::now));
            }
            if Instant::now() > deadline {
                bail!(
                    "{missing} of {} agents were not fully acked within {timeout:?}",
                    targets.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// How many of `targets` are acked up to their seq.
    pub fn count_acked(&self, targets: &[(String, u64)]) -> usize {
        let s = self.lock();
        targets
            .iter()
            .filter(|(k, seq)| s.latest.get(k).copied().unwrap_or(0) >= *seq)
            .count()
    }

    /// When the first ack of `key` covering `seq` arrived.
    pub fn acked_at(&self, key: &str, seq: u64) -> Option<Instant> {
        self.lock()
            .history
            .iter()
            .find(|(k, s, _)| k == key && *s >= seq)
            .map(|(_, _, at)| *at)
    }

    fn last_arrival(&self) -> Option<Instant> {
        self.lock().history.last().map(|(_, _, at)| *at)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AckState> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `outpost/v1/site/{site}/{agent}/ack` → `site/agent`.
fn agent_key(topic: &str) -> Option<String> {
    let parsed = outpost_shared::AgentTopic::parse(topic).ok()?;
    Some(format!("{}/{}", parsed.site, parsed.agent))
}

/// The baseline: a plain QoS 1 subscriber to every agent's records that stores nothing;
/// with `decode`, it also decodes each batch as the collector must (a second baseline).
#[derive(Clone, Default)]
pub struct PlainSubscriber {
    inner: Arc<Mutex<(u64, Option<Instant>)>>,
}

impl PlainSubscriber {
    /// Subscribes to `outpost/v1/site/+/+/records` on the broker at `port`.
    pub async fn start(port: u16, decode: bool) -> anyhow::Result<Self> {
        let sub = Self::default();
        let state = sub.inner.clone();
        let sink: Sink = Box::new(move |p: &Publish| {
            if decode && outpost_shared::decode::<outpost_shared::Batch>(&p.payload).is_err() {
                return;
            }
            let mut s = state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            s.0 += 1;
            s.1 = Some(Instant::now());
        });
        let client = connect(port, "bench-plain-subscriber", Some(sink)).await?;
        client
            .subscribe(
                outpost_shared::TopicKind::Records.filter_all(),
                QoS::AtLeastOnce,
            )
            .await
            .context("subscribing to records")?;
        Ok(sub)
    }

    /// Waits for `messages` messages; returns when the last one arrived.
    pub async fn wait(&self, messages: u64, timeout: Duration) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let (got, last) = *self
                .inner
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if got >= messages {
                return Ok(last.unwrap_or_else(Instant::now));
            }
            if Instant::now() > deadline {
                bail!("the plain subscriber got {got} of {messages} messages within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// One message to publish: topic, payload, records it carries, retained or not.
pub struct Outgoing {
    /// The topic.
    pub topic: String,
    /// The encoded payload.
    pub payload: Vec<u8>,
    /// How many records it carries (0 for births).
    pub records: u64,
    /// Retained (births, state).
    pub retain: bool,
}

/// Publishes each connection's messages in order, all connections at once, at most `rate`
/// records per second in total (0: as fast as the broker takes them). Returns when every
/// message is handed to its client.
pub async fn publish_all(
    clients: &[AsyncClient],
    plan: Vec<Vec<Outgoing>>,
    rate: f64,
) -> anyhow::Result<()> {
    let per_connection = if rate > 0.0 {
        rate / clients.len().max(1) as f64
    } else {
        0.0
    };
    let mut tasks = Vec::new();
    for (client, messages) in clients.iter().cloned().zip(plan) {
        tasks.push(tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let mut sent = 0u64;
            for m in messages {
                if per_connection > 0.0 && m.records > 0 {
                    let due = started + Duration::from_secs_f64(sent as f64 / per_connection);
                    tokio::time::sleep_until(due).await;
                }
                sent += m.records;
                client
                    .publish(m.topic, QoS::AtLeastOnce, m.retain, m.payload)
                    .await
                    .context("queueing a publish")?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await.context("publisher task")??;
    }
    Ok(())
}

/// Opens `count` publisher connections named `{prefix}-{i}`.
pub async fn publishers(port: u16, prefix: &str, count: usize) -> anyhow::Result<Vec<AsyncClient>> {
    let mut clients = Vec::with_capacity(count);
    for i in 0..count {
        clients.push(connect(port, &format!("{prefix}-{i}"), None).await?);
    }
    Ok(clients)
}
