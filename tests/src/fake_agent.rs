//! A fake agent on a real broker: publishes exactly what a real agent would (presence, birth,
//! record batches) and keeps every message it receives on its own topics, so a test can wait
//! for one topic without losing another.

use std::time::Duration;

use outpost_shared::{
    AgentId, AgentTopic, Batch, Birth, CheckId, CheckSpec, HostFacts, HumanDuration, Presence,
    Record, RecordBody, ResultRecord, SiteId, Status, TopicKind, decode, encode, message::Message,
};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

/// One simulated agent.
pub struct FakeAgent {
    site: SiteId,
    agent: AgentId,
    epoch: u64,
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    seen: Vec<(String, Vec<u8>)>,
}

/// A check for the fake agent's birth.
pub fn check(id: &str, fail_after: u32, recover_after: u32, local_window_s: u64) -> CheckSpec {
    CheckSpec {
        id: CheckId::new(id).expect("test check ids are valid"),
        kind: "ping".into(),
        title: format!("Check {id}"),
        interval: HumanDuration::from_secs(1),
        fail_after,
        recover_after,
        local_window: HumanDuration::from_secs(local_window_s),
        escalate_warn: false,
        runbook: vec!["Switch the router off and on.".into()],
        depends_on: vec![],
        thresholds: std::collections::BTreeMap::default(),
    }
}

impl FakeAgent {
    /// Connects as `{site}.{agent}` and subscribes to its `ack` and `escalations` topics.
    pub async fn connect(broker_port: u16, site: &str, agent: &str, epoch: u64) -> Self {
        let site = SiteId::new(site).expect("test site ids are valid");
        let agent = AgentId::new(agent).expect("test agent ids are valid");
        let mut opts = MqttOptions::new(format!("{site}.{agent}"), "127.0.0.1", broker_port);
        opts.set_keep_alive(Duration::from_secs(5));
        let (client, mut event_loop) = AsyncClient::new(opts, 256);
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match event_loop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx.send((p.topic.clone(), p.payload.to_vec())).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        let me = Self {
            site,
            agent,
            epoch,
            client,
            rx,
            seen: Vec::new(),
        };
        for kind in [TopicKind::Ack, TopicKind::Escalations] {
            me.client
                .subscribe(me.topic(kind), QoS::AtLeastOnce)
                .await
                .expect("queueing a subscription");
        }
        me
    }

    /// This agent's topic of `kind`.
    pub fn topic(&self, kind: TopicKind) -> String {
        AgentTopic::new(&self.site, &self.agent, kind).to_string()
    }

    async fn publish(&self, kind: TopicKind, payload: Vec<u8>, retain: bool) {
        self.client
            .publish(self.topic(kind), QoS::AtLeastOnce, retain, payload)
            .await
            .expect("queueing a publish");
    }

    /// Publishes the retained online state.
    pub async fn online(&self) {
        self.publish(TopicKind::State, encode(&Presence::ONLINE), true)
            .await;
    }

    /// Publishes the retained offline state (as its Last Will would).
    pub async fn offline(&self) {
        self.publish(TopicKind::State, encode(&Presence::OFFLINE), true)
            .await;
    }

    /// Publishes a retained birth with `checks`.
    pub async fn birth(&self, checks: Vec<CheckSpec>) {
        let birth = Birth {
            v: 1,
            site: self.site.clone(),
            agent: self.agent.clone(),
            version: "fake".into(),
            epoch: self.epoch,
            boot_time: jiff::Timestamp::now(),
            started_at: jiff::Timestamp::now(),
            host: HostFacts {
                hostname: self.agent.to_string(),
                ..HostFacts::default()
            },
            checks,
        };
        self.publish(TopicKind::Birth, encode(&birth), true).await;
    }

    /// Publishes one batch of results of `check`, seqs from `from`.
    pub async fn results(&self, check: &str, from: u64, statuses: &[Status]) {
        let batch = Batch {
            v: 1,
            site: self.site.clone(),
            agent: self.agent.clone(),
            epoch: self.epoch,
            acked: None,
            records: statuses
                .iter()
                .enumerate()
                .map(|(i, status)| Record {
                    seq: from + i as u64,
                    ts: jiff::Timestamp::now(),
                    body: RecordBody::Result(ResultRecord {
                        check: CheckId::new(check).expect("test check ids are valid"),
                        status: *status,
                        summary: format!("{check} is {status}."),
                        metrics: [(
                            "loss_pct".to_owned(),
                            if status.is_failure() { 100.0 } else { 0.0 },
                        )]
                        .into(),
                        historical: false,
                    }),
                })
                .collect(),
        };
        self.publish(TopicKind::Records, encode(&batch), false)
            .await;
    }

    /// Waits (up to 20 s) for a message on `kind` satisfying `pred`, also among those already
    /// received.
    pub async fn wait<T: Message>(&mut self, kind: TopicKind, pred: impl Fn(&T) -> bool) -> T {
        let want = self.topic(kind);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let found = self
                .seen
                .iter()
                .filter(|(t, _)| *t == want)
                .filter_map(|(_, p)| decode::<T>(p).ok())
                .find(|m| pred(m));
            if let Some(found) = found {
                return found;
            }
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(msg)) => self.seen.push(msg),
                _ => panic!("no matching message on {want} within 20 s"),
            }
        }
    }
}
