//! Sends the outbox to the collector over MQTT and applies the collector's acks.
//!
//! One task owns the MQTT event loop. On every connect it publishes the birth and `online`
//! (both retained) and subscribes to its `ack` and `escalations` topics and the collector's
//! state. Records go out in batches at QoS 1, at most [`Tuning::window`] beyond the collector's
//! durable watermark; when the watermark stalls, sending starts again from it (the collector is
//! idempotent). A record is freed only when the watermark covers it, never on PUBACK.
//!
//! After an outage the backlog (records made before this connection) is replayed in order,
//! while records made since go out at once beside it: the collector stores records in any
//! order and lets only the newest result drive a check, so a long replay never holds up
//! what is happening now.

mod connect;

use std::{sync::Arc, time::Duration};

use jiff::Timestamp;
use outpost_shared::{
    Ack, Batch, EscalationList, PROTOCOL_VERSION, Presence, PresenceState, RecordBody, TopicKind,
    decode, encode, topic::COLLECTOR_STATE,
};
use rumqttc::{AsyncClient, Event, EventLoop, Packet, QoS};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{config::Config, live::Live, outbox_handle::SharedOutbox};

pub use connect::{SetupError, birth, host_facts};

/// The longest wait between resends to a collector that does not ack.
const MAX_STALL_WAIT: Duration = Duration::from_secs(300);

/// Knobs of the publisher; the defaults suit a site.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Records per batch message.
    pub batch_max: usize,
    /// Records sent beyond the collector's watermark before waiting for an ack.
    pub window: u64,
    /// Resend from the watermark when it has not moved for this long while records are out.
    pub stall_after: Duration,
    /// Longest wait between reconnect attempts.
    pub backoff_max: Duration,
    /// MQTT keep-alive.
    pub keep_alive: Duration,
    /// Records older than this when the connection came up are sent as `historical`.
    pub historical_after: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            batch_max: 500,
            window: 2000,
            stall_after: Duration::from_secs(10),
            backoff_max: Duration::from_secs(30),
            keep_alive: Duration::from_secs(30),
            historical_after: Duration::from_secs(5),
        }
    }
}

/// The MQTT side of the agent.
pub struct Publisher {
    config: Arc<Config>,
    outbox: SharedOutbox,
    live: Live,
    tuning: Tuning,
    topics: Topics,
}

struct Topics {
    birth: String,
    state: String,
    records: String,
    ack: String,
    escalations: String,
}

/// What the current connection has done.
struct Session {
    /// Next seq to send.
    next_send: u64,
    /// Records with a lower seq were made before this connection came up.
    live_from: u64,
    /// Next fresh record (seq >= `live_from`) to send while the backlog is still replayed.
    fresh_next: u64,
    /// When it came up.
    connected_at: Timestamp,
}

impl Publisher {
    /// A publisher for `config`'s agent, sending from `outbox` and reporting into `live`.
    pub fn new(config: Arc<Config>, outbox: SharedOutbox, live: Live, tuning: Tuning) -> Self {
        let topic = |kind| connect::topic(&config, kind);
        let topics = Topics {
            birth: topic(TopicKind::Birth),
            state: topic(TopicKind::State),
            records: topic(TopicKind::Records),
            ack: topic(TopicKind::Ack),
            escalations: topic(TopicKind::Escalations),
        };
        Self {
            config,
            outbox,
            live,
            tuning,
            topics,
        }
    }

    /// Runs until `cancel` fires, then says `offline` and disconnects (bounded to ~2 s).
    pub async fn run(self, cancel: CancellationToken) -> Result<(), SetupError> {
        let mqtt = &self.config.mqtt;
        if mqtt.scheme == crate::config::MqttScheme::Plain && !mqtt.is_loopback() {
            tracing::warn!(
                url = %mqtt.url,
                "plain MQTT to another machine: results and passwords cross the network unencrypted; use mqtts://"
            );
        }
        let opts = connect::mqtt_options(
            mqtt,
            &self.config.client_id(),
            &self.topics.state,
            self.tuning.keep_alive,
        )?;
        let (client, mut events) = AsyncClient::new(opts, 64);
        let mut session: Option<Session> = None;
        let mut watermark = self.outbox.stats().acked_seq;
        let mut last_progress = Instant::now();
        // Doubles after each resend that brought no progress, so a collector that is down
        // for hours does not get the same records every few seconds.
        let mut stall_wait = self.tuning.stall_after;
        let mut backoff = Duration::from_millis(500);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                event = events.poll() => match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        backoff = Duration::from_millis(500);
                        session = Some(self.on_connect(&client, watermark));
                        last_progress = Instant::now();
                        stall_wait = self.tuning.stall_after;
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if let Some(seq) = self.on_message(&p.topic, &p.payload).await
                            && seq > watermark
                        {
                            watermark = seq;
                            last_progress = Instant::now();
                            stall_wait = self.tuning.stall_after;
                        }
                    }
                    Ok(_) => {}
                    Err(err) => {
                        let text = connect::explain(mqtt, &err);
                        if session.take().is_some() || self.live.connection().is_none_or(|c| c.last_error.as_deref() != Some(&text)) {
                            tracing::warn!(error = %text, "MQTT connection down; results wait in the outbox");
                        }
                        self.live.set_offline(text);
                        tokio::select! {
                            () = cancel.cancelled() => break,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(self.tuning.backoff_max);
                    }
                },
                () = self.outbox.appended() => {}
                _ = tick.tick() => {}
            }
            if let Some(session) = session.as_mut() {
                // While the collector is known to be offline, the broker queues for it.
                let collector_offline =
                    self.live.connection().and_then(|c| c.collector_online) == Some(false);
                if session.next_send > watermark + 1
                    && !collector_offline
                    && last_progress.elapsed() >= stall_wait
                {
                    tracing::debug!(
                        from = watermark + 1,
                        "the collector's watermark stalled; resending"
                    );
                    session.next_send = watermark + 1;
                    session.fresh_next = session.live_from.max(watermark + 1);
                    last_progress = Instant::now();
                    stall_wait = (stall_wait * 2).min(MAX_STALL_WAIT);
                }
                self.pump(&client, session, watermark).await;
            }
        }
        if session.is_some() {
            say_goodbye(&client, &mut events, &self.topics.state).await;
        }
        Ok(())
    }

    fn on_connect(&self, client: &AsyncClient, watermark: u64) -> Session {
        let stats = self.outbox.stats();
        tracing::info!(broker = %self.config.mqtt.url, pending = stats.pending, "connected to the broker");
        self.live.set_connected();
        let birth = connect::birth(&self.config, self.outbox.epoch(), self.live.started_at());
        let queued = [
            client.try_publish(&self.topics.birth, QoS::AtLeastOnce, true, encode(&birth)),
            client.try_publish(
                &self.topics.state,
                QoS::AtLeastOnce,
                true,
                encode(&Presence::ONLINE),
            ),
            client.try_subscribe(&self.topics.ack, QoS::AtLeastOnce),
            client.try_subscribe(&self.topics.escalations, QoS::AtLeastOnce),
            client.try_subscribe(COLLECTOR_STATE, QoS::AtLeastOnce),
        ];
        for err in queued.into_iter().filter_map(Result::err) {
            tracing::warn!(error = %err, "cannot queue a connect message");
        }
        Session {
            next_send: watermark.max(stats.acked_seq) + 1,
            live_from: stats.last_seq + 1,
            fresh_next: stats.last_seq + 1,
            connected_at: Timestamp::now(),
        }
    }

    /// Handles a message from the collector; returns the new watermark for our epoch.
    async fn on_message(&self, topic: &str, payload: &[u8]) -> Option<u64> {
        if topic == self.topics.ack {
            let ack = decode::<Ack>(payload)
                .inspect_err(|err| tracing::warn!(error = %err, "ignoring a bad ack"))
                .ok()?;
            if ack.epoch != self.outbox.epoch() {
                tracing::debug!(
                    epoch = ack.epoch,
                    "ack for another outbox generation ignored"
                );
                return None;
            }
            if let Err(err) = self.outbox.ack(ack.epoch, ack.seq).await {
                tracing::error!(error = %err, "cannot free acknowledged records");
            }
            return Some(ack.seq);
        }
        if topic == self.topics.escalations {
            match decode::<EscalationList>(payload) {
                Ok(list) => self.live.set_escalations(list),
                Err(err) => tracing::warn!(error = %err, "ignoring a bad escalations list"),
            }
        } else if topic == COLLECTOR_STATE {
            match decode::<Presence>(payload) {
                Ok(p) => self
                    .live
                    .set_collector_online(p.state == PresenceState::Online),
                Err(err) => tracing::warn!(error = %err, "ignoring a bad collector state"),
            }
        }
        None
    }

    /// Sends what is due: fresh records first while a backlog is replayed, then the backlog
    /// (or, once it is through, everything) while the window allows.
    async fn pump(&self, client: &AsyncClient, session: &mut Session, watermark: u64) {
        while session.next_send < session.live_from {
            let fresh = self.read(session.fresh_next, self.tuning.batch_max).await;
            if fresh.is_empty()
                || !self.send(client, session, fresh, watermark, |s, last| {
                    s.fresh_next = last + 1;
                })
            {
                break;
            }
        }
        loop {
            let out = session.next_send.saturating_sub(watermark + 1);
            if out >= self.tuning.window {
                return;
            }
            let room = usize::try_from(self.tuning.window - out).unwrap_or(usize::MAX);
            let mut records = self
                .read(session.next_send, self.tuning.batch_max.min(room))
                .await;
            if records.is_empty() {
                return;
            }
            // The backlog stops where fresh records start: those went out already.
            let replaying = session.next_send < session.live_from;
            if replaying {
                records.retain(|r| r.seq < session.live_from);
                if records.is_empty() {
                    session.next_send = session.fresh_next.max(session.live_from);
                    continue;
                }
            }
            let sent = self.send(client, session, records, watermark, |s, last| {
                s.next_send = last + 1;
                if replaying && s.next_send >= s.live_from {
                    s.next_send = s.next_send.max(s.fresh_next);
                }
            });
            if !sent {
                return;
            }
        }
    }

    /// Unacknowledged records from `from` on, at most `max` (none when the outbox fails).
    async fn read(&self, from: u64, max: usize) -> Vec<outpost_shared::Record> {
        match self.outbox.pending(from.saturating_sub(1), max).await {
            Ok(records) => records,
            Err(err) => {
                tracing::error!(error = %err, "cannot read the outbox");
                Vec::new()
            }
        }
    }

    /// Publishes one batch (results made before the connection marked `historical`, with the
    /// `watermark` the agent holds) and lets `advance` move the session past its last seq;
    /// `false` when the client's queue is full.
    fn send(
        &self,
        client: &AsyncClient,
        session: &mut Session,
        mut records: Vec<outpost_shared::Record>,
        watermark: u64,
        advance: impl FnOnce(&mut Session, u64),
    ) -> bool {
        let Some(last) = records.last().map(|r| r.seq) else {
            return true;
        };
        let cutoff = session
            .connected_at
            .saturating_sub(self.tuning.historical_after)
            .unwrap_or(session.connected_at);
        for record in &mut records {
            if let RecordBody::Result(result) = &mut record.body {
                result.historical = record.seq < session.live_from && record.ts < cutoff;
            }
        }
        let batch = Batch {
            v: PROTOCOL_VERSION,
            site: self.config.site.clone(),
            agent: self.config.agent.clone(),
            epoch: self.outbox.epoch(),
            acked: Some(watermark),
            records,
        };
        if let Err(err) = client.try_publish(
            &self.topics.records,
            QoS::AtLeastOnce,
            false,
            encode(&batch),
        ) {
            // The request queue is full: the event loop sends what it has, we retry soon.
            tracing::debug!(error = %err, "batch not queued yet");
            return false;
        }
        advance(session, last);
        true
    }
}

/// Publishes `offline` (retained) and disconnects, waiting at most 2 s.
async fn say_goodbye(client: &AsyncClient, events: &mut EventLoop, state_topic: &str) {
    let offline = encode(&Presence {
        v: PROTOCOL_VERSION,
        state: PresenceState::Offline,
    });
    if client
        .try_publish(state_topic, QoS::AtLeastOnce, true, offline)
        .is_err()
    {
        return;
    }
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match events.poll().await {
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
}
