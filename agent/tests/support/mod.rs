//! Test helpers: a stand-in collector on a real broker, and polling with a deadline.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use outpost_shared::{
    Ack, AgentTopic, Batch, Birth, Presence, PresenceState, TopicKind, decode, encode,
};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

/// What the stand-in collector has stored.
#[derive(Default)]
pub struct Seen {
    pub seqs: BTreeSet<u64>,
    pub deliveries: u64,
    pub historical: BTreeSet<u64>,
    pub birth: Option<Birth>,
    pub state: Option<PresenceState>,
    pub acked: u64,
    /// Batches to lose on purpose (a collector that crashed before storing them).
    pub lose_batches: u32,
    /// Store but never acknowledge (a collector slowly chewing through a replay).
    pub hold_acks: bool,
}

/// A stand-in collector: stores every record, acks the contiguous watermark (retained).
pub fn collector(port: u16, seen: Arc<Mutex<Seen>>) -> tokio::task::JoinHandle<()> {
    let mut opts = MqttOptions::new("test-collector", "127.0.0.1", port);
    opts.set_clean_session(false);
    opts.set_keep_alive(Duration::from_secs(5));
    opts.set_max_packet_size(16 << 20, 1 << 20);
    let (client, mut events) = AsyncClient::new(opts, 64);
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = client.try_subscribe("outpost/v1/site/+/+/+", QoS::AtLeastOnce);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let Ok(topic) = AgentTopic::parse(&p.topic) else {
                        continue;
                    };
                    let mut seen = seen.lock().expect("test lock");
                    match topic.kind {
                        TopicKind::Records => {
                            let batch = decode::<Batch>(&p.payload).expect("a valid batch");
                            if seen.lose_batches > 0 {
                                seen.lose_batches -= 1;
                                continue;
                            }
                            for r in &batch.records {
                                seen.deliveries += 1;
                                seen.seqs.insert(r.seq);
                                if r.as_result().is_some_and(|r| r.historical) {
                                    seen.historical.insert(r.seq);
                                }
                            }
                            if seen.hold_acks {
                                continue;
                            }
                            while seen.seqs.contains(&(seen.acked + 1)) {
                                seen.acked += 1;
                            }
                            let ack = Ack {
                                v: 1,
                                epoch: batch.epoch,
                                seq: seen.acked,
                            };
                            let ack_topic =
                                AgentTopic::new(&topic.site, &topic.agent, TopicKind::Ack);
                            let _ = client.try_publish(
                                ack_topic.to_string(),
                                QoS::AtLeastOnce,
                                true,
                                encode(&ack),
                            );
                        }
                        TopicKind::Birth => seen.birth = decode::<Birth>(&p.payload).ok(),
                        TopicKind::State => {
                            seen.state = decode::<Presence>(&p.payload).ok().map(|s| s.state);
                        }
                        _ => {}
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
}

/// Polls `done` every 50 ms; fails the test after `secs`.
pub async fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
