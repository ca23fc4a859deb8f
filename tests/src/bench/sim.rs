//! Simulated agents: the births and record batches a real agent would publish, made ahead of
//! time so the load generator spends its CPU on sending, not on encoding.

use std::collections::BTreeMap;

use outpost_shared::{
    AgentId, AgentTopic, Batch, Birth, CheckId, CheckSpec, HostFacts, HumanDuration, Record,
    RecordBody, ResultRecord, SiteId, Status, TopicKind, encode,
};

/// Check ids every simulated agent reports on.
pub const CHECKS: [&str; 8] = [
    "router",
    "switch",
    "nas-web",
    "backup",
    "backup-job",
    "cages",
    "uptime",
    "resources",
];

/// One simulated agent: its identity and the next seq it will use.
#[derive(Debug, Clone)]
pub struct SimAgent {
    /// The site.
    pub site: SiteId,
    /// The agent.
    pub agent: AgentId,
    /// Its buffer generation.
    pub epoch: u64,
    /// The next record's seq.
    pub next_seq: u64,
    /// Catalogue settings: consecutive failures before an escalation opens.
    pub fail_after: u32,
}

impl SimAgent {
    /// Agent number `index` of a run tagged `run` (site `{run}-{index}`, agent `pc`).
    pub fn new(run: &str, index: usize) -> Self {
        Self {
            site: SiteId::new(format!("{run}-{index:05}")).expect("invariant: run tags are ids"),
            agent: AgentId::new("pc").expect("invariant: a literal id"),
            epoch: 0x0b5e_0000 + index as u64,
            next_seq: 1,
            fail_after: 3,
        }
    }

    /// `site/agent`, the key under which acks are tracked.
    pub fn key(&self) -> String {
        format!("{}/{}", self.site, self.agent)
    }

    /// The topic of `kind` for this agent.
    pub fn topic(&self, kind: TopicKind) -> String {
        AgentTopic::new(&self.site, &self.agent, kind).to_string()
    }

    /// The retained birth with the [`CHECKS`] catalogue.
    pub fn birth(&self) -> Vec<u8> {
        let now = jiff::Timestamp::now();
        let checks = CHECKS
            .iter()
            .map(|id| CheckSpec {
                id: CheckId::new(*id).expect("invariant: literal ids"),
                kind: "tcp".into(),
                title: format!("Simulated {id}"),
                interval: HumanDuration::from_secs(10),
                fail_after: self.fail_after,
                recover_after: 1,
                local_window: HumanDuration::from_secs(0),
                escalate_warn: false,
                runbook: vec!["Nothing to do: this is a benchmark.".into()],
                depends_on: vec![],
                thresholds: BTreeMap::new(),
            })
            .collect();
        encode(&Birth {
            v: 1,
            site: self.site.clone(),
            agent: self.agent.clone(),
            version: "bench".into(),
            epoch: self.epoch,
            boot_time: now,
            started_at: now,
            host: HostFacts {
                hostname: self.site.to_string(),
                ..HostFacts::default()
            },
            checks,
        })
    }

    /// The next `count` results as one batch; every `fail_every`-th record fails (0: none).
    pub fn batch(&mut self, count: usize, fail_every: u64, historical: bool) -> Vec<u8> {
        let statuses = (0..count)
            .map(|i| {
                let seq = self.next_seq + i as u64;
                let check = CHECKS[(seq as usize) % CHECKS.len()];
                let failing = fail_every > 0 && seq.is_multiple_of(fail_every);
                (check, if failing { Status::Fail } else { Status::Ok })
            })
            .collect::<Vec<_>>();
        self.results(&statuses, historical)
    }

    /// One batch with the given (check, status) results, in order.
    pub fn results(&mut self, results: &[(&str, Status)], historical: bool) -> Vec<u8> {
        let now = jiff::Timestamp::now();
        let records = results
            .iter()
            .map(|(check, status)| {
                let seq = self.next_seq;
                self.next_seq += 1;
                Record {
                    seq,
                    ts: now,
                    body: RecordBody::Result(ResultRecord {
                        check: CheckId::new(*check).expect("invariant: bench check ids are ids"),
                        status: *status,
                        summary: format!("Simulated {check} is {status}."),
                        metrics: [("rtt_ms".to_owned(), 1.5 + (seq % 7) as f64)].into(),
                        historical,
                    }),
                }
            })
            .collect();
        encode(&Batch {
            v: 1,
            site: self.site.clone(),
            agent: self.agent.clone(),
            epoch: self.epoch,
            acked: None,
            records,
        })
    }

    /// The seq of the last record made so far.
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }
}

/// A failure share in percent turned into "every n-th record fails" (0: none).
pub fn fail_every(fail_pct: f64) -> u64 {
    if fail_pct <= 0.0 {
        0
    } else {
        (100.0 / fail_pct).round().max(1.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_decode_and_seqs_rise() {
        let mut agent = SimAgent::new("t", 3);
        let first: Batch = outpost_shared::decode(&agent.batch(4, 2, false)).expect("decodes");
        let second: Batch = outpost_shared::decode(&agent.batch(2, 0, true)).expect("decodes");
        let seqs: Vec<u64> = first
            .records
            .iter()
            .chain(&second.records)
            .map(|r| r.seq)
            .collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
        let failing = first
            .records
            .iter()
            .filter(|r| r.as_result().is_some_and(|r| r.status == Status::Fail))
            .count();
        assert_eq!(failing, 2);
        assert!(
            second
                .records
                .iter()
                .all(|r| r.as_result().is_some_and(|r| r.historical))
        );
        assert_eq!(agent.last_seq(), 6);
        let _: Birth = outpost_shared::decode(&agent.birth()).expect("birth decodes");
    }

    #[test]
    fn fail_share_to_period() {
        assert_eq!(fail_every(0.0), 0);
        assert_eq!(fail_every(5.0), 20);
        assert_eq!(fail_every(100.0), 1);
    }
}
