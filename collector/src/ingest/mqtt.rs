//! The MQTT loop: keeps the connection polled, subscribes on every fresh session, validates
//! each message and hands good ones to the writer. At shutdown it lets the writer finish,
//! publishes the collector's offline state and disconnects.

use std::{collections::HashSet, sync::Arc, time::Duration};

use outpost_shared::{Presence, TopicKind, encode, topic::COLLECTOR_STATE};
use rumqttc::{AsyncClient, Event, EventLoop, Packet, QoS, SubscribeFilter};
use tokio::{task::JoinHandle, time::Instant};
use tokio_util::sync::CancellationToken;

use super::{
    limit::{SiteLimiter, site_of},
    queue::QueueSender,
    validate::{Inbound, classify},
    writer::Pending,
};
use crate::metrics::{Metrics, RejectReason};

/// What the loop needs besides the connection.
pub struct LoopSettings {
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Larger payloads are dropped.
    pub max_payload: usize,
    /// Records per second per site (`[ingest] site_rate`).
    pub site_rate: u32,
    /// Records at once per site (`[ingest] site_burst`).
    pub site_burst: u32,
    /// Records come through `$share/{group}/...` (several collectors split them).
    pub shared_group: Option<String>,
    /// Cancelled at shutdown.
    pub shutdown: CancellationToken,
}

/// Remembers which (source, reason) pairs were logged, so a misbehaving agent produces one
/// log line per reason rather than one per message. Bounded: past the cap nothing new is logged
/// (the counters still count).
struct LogOnce {
    seen: HashSet<(String, RejectReason)>,
}

impl LogOnce {
    const CAP: usize = 10_000;

    fn first(&mut self, source: &str, reason: RejectReason) -> bool {
        if self.seen.len() >= Self::CAP {
            return false;
        }
        self.seen.insert((source.to_owned(), reason))
    }
}

/// Runs until `shutdown` is cancelled, then closes down in order.
pub async fn run(
    mut eventloop: EventLoop,
    client: AsyncClient,
    to_writer: QueueSender,
    writer: JoinHandle<()>,
    settings: LoopSettings,
) {
    let LoopSettings {
        metrics,
        max_payload,
        site_rate,
        site_burst,
        shared_group,
        shutdown,
    } = settings;
    let mut logged = LogOnce {
        seen: HashSet::new(),
    };
    let mut limiter = SiteLimiter::new(site_rate, site_burst);
    let mut failures = 0u32;
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => break,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                failures = 0;
                metrics.mqtt_connected();
                tracing::info!(
                    session_present = ack.session_present,
                    "connected to the MQTT broker"
                );
                on_connect(&client, ack.session_present, shared_group.as_deref());
                if ack.session_present {
                    metrics.set_mqtt_ready(true);
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => metrics.set_mqtt_ready(true),
            Ok(Event::Incoming(Packet::Publish(publish))) if publish.topic == COLLECTOR_STATE => {
                // Several collectors share one state topic: when another one's Last Will (or
                // goodbye) says "offline", this one, still here, says "online" again.
                let offline = outpost_shared::decode::<Presence>(&publish.payload)
                    .is_ok_and(|p| p.state == outpost_shared::PresenceState::Offline);
                if offline && !shutdown.is_cancelled() {
                    let _ = client.try_publish(
                        COLLECTOR_STATE,
                        QoS::AtLeastOnce,
                        true,
                        encode(&Presence::ONLINE),
                    );
                }
                let dropped = Pending {
                    item: Inbound::Dropped,
                    publish,
                    at: jiff::Timestamp::now(),
                    room: None,
                };
                if !hand_over(&to_writer, dropped, &shutdown).await {
                    break;
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                metrics.message_received();
                let at = jiff::Timestamp::now();
                let now = std::time::Instant::now();
                let site = site_of(&publish.topic);
                // Over its share: dropped before decoding, so a flood costs next to nothing.
                let item = if let Some(site) = site
                    && !limiter.admits(site, now)
                {
                    metrics.rejected(RejectReason::Rate);
                    if logged.first(site, RejectReason::Rate) {
                        tracing::warn!(
                            site = %site,
                            reason = RejectReason::Rate.as_str(),
                            "site {site} sends more than {site_rate} records/s (burst {site_burst}); \
                             dropping its messages beyond that (further drops are only counted; \
                             raise [ingest] site_rate / site_burst if this is expected)"
                        );
                    }
                    Inbound::Dropped
                } else {
                    let verdict = classify(&publish.topic, &publish.payload, max_payload);
                    if let Some(site) = site {
                        let records = verdict.as_ref().map_or(1, Inbound::records);
                        limiter.charge(site, records, now);
                    }
                    verdict.unwrap_or_else(|rejection| {
                        metrics.rejected(rejection.reason);
                        if logged.first(&rejection.source, rejection.reason) {
                            tracing::warn!(
                                source = %rejection.source,
                                reason = rejection.reason.as_str(),
                                "dropping a message (further ones like it from this source are only counted): {}",
                                rejection.detail
                            );
                        }
                        // Dropped for good: still acknowledged (in order), so the broker does
                        // not redeliver it.
                        Inbound::Dropped
                    })
                };
                if !hand_over(
                    &to_writer,
                    Pending {
                        item,
                        publish,
                        at,
                        room: None,
                    },
                    &shutdown,
                )
                .await
                {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                metrics.set_mqtt_ready(false);
                failures = failures.saturating_add(1);
                if failures == 1 || failures.is_power_of_two() {
                    tracing::warn!(error = %e, attempts = failures, "MQTT connection failed; retrying");
                }
                let pause = Duration::from_millis(200 * u64::from(failures.min(25)));
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
    close(eventloop, client, to_writer, writer).await;
}

/// Passes a message to the writer, which stores it (or not) and acknowledges everything in
/// arrival order. Backpressure: while the writer is full, the connection is not read.
/// `false` when the collector is stopping.
async fn hand_over(
    to_writer: &QueueSender,
    pending: Pending,
    shutdown: &CancellationToken,
) -> bool {
    tokio::select! {
        sent = to_writer.send(pending) => sent,
        () = shutdown.cancelled() => false,
    }
}

fn on_connect(client: &AsyncClient, session_present: bool, shared_group: Option<&str>) {
    let _ = client.try_publish(
        COLLECTOR_STATE,
        QoS::AtLeastOnce,
        true,
        encode(&Presence::ONLINE),
    );
    // A persistent session keeps its subscriptions; subscribing again would replay every
    // retained birth and state for nothing.
    if !session_present {
        // Births and states are retained, and brokers do not send retained messages to
        // shared subscriptions: every collector takes them. Records are split.
        let records = match shared_group {
            Some(group) => format!("$share/{group}/{}", TopicKind::Records.filter_all()),
            None => TopicKind::Records.filter_all(),
        };
        let filters = [
            TopicKind::Birth.filter_all(),
            TopicKind::State.filter_all(),
            records,
            COLLECTOR_STATE.to_owned(),
        ]
        .map(|f| SubscribeFilter::new(f, QoS::AtLeastOnce));
        if let Err(e) = client.try_subscribe_many(filters) {
            tracing::error!(error = %e, "cannot subscribe to agent topics");
        }
    }
}

/// Lets the writer flush and acknowledge (still polling, so its acks go out), then says
/// goodbye. Messages arriving meanwhile are not acknowledged: the broker keeps them.
async fn close(
    mut eventloop: EventLoop,
    client: AsyncClient,
    to_writer: QueueSender,
    mut writer: JoinHandle<()>,
) {
    drop(to_writer);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        tokio::select! {
            _ = &mut writer => break,
            () = tokio::time::sleep_until(deadline) => {
                tracing::warn!("store writer did not finish in time; unacknowledged messages stay at the broker");
                writer.abort();
                break;
            }
            event = eventloop.poll() => if event.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            },
        }
    }
    let _ = client.try_publish(
        COLLECTOR_STATE,
        QoS::AtLeastOnce,
        true,
        encode(&Presence::OFFLINE),
    );
    let _ = client.try_disconnect();
    // Read on until the broker closes the connection: closing it while the broker's messages
    // are still unread makes the kernel reset it, and the broker then loses the PUBACKs it had
    // not yet read (they were delivered again after the restart).
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let event = tokio::select! {
            () = tokio::time::sleep_until(deadline) => break,
            event = eventloop.poll() => event,
        };
        if event.is_err() {
            break;
        }
    }
    tracing::info!("ingest stopped");
}
