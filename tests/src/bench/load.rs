//! A load: N simulated agents on C connections, each sending a birth and then its records in
//! batches. Turned into per-connection message lists ahead of time.

use outpost_shared::TopicKind;

use super::{mqtt::Outgoing, sim::SimAgent, sim::fail_every};

/// What the simulated fleet sends.
#[derive(Debug, Clone)]
pub struct Load {
    /// Simulated agents.
    pub agents: usize,
    /// MQTT connections they share (each carries agents/connections of them).
    pub connections: usize,
    /// Records each agent sends after its birth.
    pub records_per_agent: usize,
    /// Records per batch message.
    pub batch: usize,
    /// Share of failing results, percent.
    pub fail_pct: f64,
    /// Records sent as `historical` (a replay after an outage).
    pub historical: bool,
    /// Consecutive failures before an escalation opens, in the agents' catalogue.
    pub fail_after: u32,
}

/// The messages of one load, split by connection.
pub struct Plan {
    /// Births and `online` states (retained), per connection.
    pub hello: Vec<Vec<Outgoing>>,
    /// Record batches, per connection, agents interleaved batch by batch.
    pub records: Vec<Vec<Outgoing>>,
    /// Every agent's key and last seq: done when all are acked.
    pub targets: Vec<(String, u64)>,
    /// Record messages in total.
    pub messages: u64,
    /// Records in total.
    pub total_records: u64,
}

impl Load {
    /// Encodes every message of this load for agents tagged `run`.
    pub fn plan(&self, run: &str) -> Plan {
        let connections = self.connections.clamp(1, self.agents.max(1));
        let mut hello: Vec<Vec<Outgoing>> = (0..connections).map(|_| Vec::new()).collect();
        let mut per_agent: Vec<Vec<Vec<Outgoing>>> = (0..connections).map(|_| Vec::new()).collect();
        let mut targets = Vec::with_capacity(self.agents);
        let (mut messages, mut total_records) = (0, 0);
        let fail = fail_every(self.fail_pct);
        for i in 0..self.agents {
            let mut agent = SimAgent::new(run, i);
            agent.fail_after = self.fail_after;
            let c = i % connections;
            hello[c].push(Outgoing {
                topic: agent.topic(TopicKind::State),
                payload: outpost_shared::encode(&outpost_shared::Presence::ONLINE),
                records: 0,
                retain: true,
            });
            hello[c].push(Outgoing {
                topic: agent.topic(TopicKind::Birth),
                payload: agent.birth(),
                records: 0,
                retain: true,
            });
            let mut batches = Vec::new();
            let mut left = self.records_per_agent;
            while left > 0 {
                let n = left.min(self.batch.max(1));
                left -= n;
                batches.push(Outgoing {
                    topic: agent.topic(TopicKind::Records),
                    payload: agent.batch(n, fail, self.historical),
                    records: n as u64,
                    retain: false,
                });
                messages += 1;
                total_records += n as u64;
            }
            targets.push((agent.key(), agent.last_seq()));
            per_agent[c].push(batches);
        }
        let records = per_agent.into_iter().map(interleave).collect();
        Plan {
            hello,
            records,
            targets,
            messages,
            total_records,
        }
    }
}

/// Batch 1 of every agent, then batch 2 of every agent, and so on.
fn interleave(mut agents: Vec<Vec<Outgoing>>) -> Vec<Outgoing> {
    for list in &mut agents {
        list.reverse();
    }
    let mut out = Vec::new();
    loop {
        let before = out.len();
        for list in &mut agents {
            if let Some(m) = list.pop() {
                out.push(m);
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_counts_and_interleaves() {
        let load = Load {
            agents: 3,
            connections: 2,
            records_per_agent: 25,
            batch: 10,
            fail_pct: 10.0,
            historical: false,
            fail_after: 3,
        };
        let plan = load.plan("t");
        assert_eq!(plan.messages, 9);
        assert_eq!(plan.total_records, 75);
        assert_eq!(plan.targets.len(), 3);
        assert!(plan.targets.iter().all(|(_, last)| *last == 25));
        assert_eq!(plan.hello.iter().map(Vec::len).sum::<usize>(), 6);
        // Connection 0 carries agents 0 and 2, alternating.
        let topics: Vec<&str> = plan.records[0].iter().map(|m| m.topic.as_str()).collect();
        assert_eq!(topics.len(), 6);
        assert!(topics[0].contains("t-00000") && topics[1].contains("t-00002"));
        assert_eq!(
            plan.records[0]
                .iter()
                .map(|m| m.records)
                .collect::<Vec<_>>(),
            [10, 10, 10, 10, 5, 5]
        );
    }
}
