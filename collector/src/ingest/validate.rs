//! Turning one MQTT message into something worth storing, or a counted reason to drop it.
//! Pure: no I/O, so every rule is tested with a table.

use outpost_shared::{
    AgentId, AgentTopic, Batch, Birth, Presence, PresenceState, SiteId, TopicKind, decode,
};

use crate::metrics::RejectReason;

/// A message that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// An agent's birth; its site/agent match the topic.
    Birth(Birth),
    /// An agent's presence.
    Presence {
        /// From the topic.
        site: SiteId,
        /// From the topic.
        agent: AgentId,
        /// Online or offline.
        state: PresenceState,
    },
    /// A record batch; its site/agent match the topic.
    Batch(Batch),
    /// Nothing to store (refused, or not for ingest): only acknowledged, in its turn, since
    /// some brokers (rumqttd) drop a client whose PUBACKs come out of order.
    Dropped,
}

impl Inbound {
    /// How many records it carries (for batching limits).
    pub fn records(&self) -> usize {
        match self {
            Self::Batch(b) => b.records.len(),
            _ => 0,
        }
    }
}

/// Why a message was dropped, and whose it was (for logging once per source and reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The counted reason.
    pub reason: RejectReason,
    /// `site/agent` from the topic, or the topic itself when it is not an agent topic.
    pub source: String,
    /// What exactly was wrong, for the log.
    pub detail: String,
}

/// Checks size, topic, payload and that the payload's ids match the topic's.
pub fn classify(topic: &str, payload: &[u8], max_payload: usize) -> Result<Inbound, Rejection> {
    let parsed = AgentTopic::parse(topic);
    let source = match &parsed {
        Ok(t) => format!("{}/{}", t.site, t.agent),
        Err(_) => topic.chars().take(200).collect(),
    };
    let reject = |reason, detail: String| Rejection {
        reason,
        source: source.clone(),
        detail,
    };
    if payload.len() > max_payload {
        return Err(reject(
            RejectReason::Oversize,
            format!(
                "{} bytes on {topic}; the limit is {max_payload} ([ingest] max_payload)",
                payload.len()
            ),
        ));
    }
    let topic = parsed.map_err(|e| reject(RejectReason::Topic, e.to_string()))?;
    let decode_err =
        |e: outpost_shared::DecodeError| reject(RejectReason::from_decode(&e), e.to_string());
    let mismatch = |what: &str, site: &SiteId, agent: &AgentId| {
        reject(
            RejectReason::Mismatch,
            format!("{what} says {site}/{agent} but was published on {topic}"),
        )
    };
    match topic.kind {
        TopicKind::Birth => {
            let birth: Birth = decode(payload).map_err(decode_err)?;
            if birth.site != topic.site || birth.agent != topic.agent {
                return Err(mismatch("birth", &birth.site, &birth.agent));
            }
            Ok(Inbound::Birth(birth))
        }
        TopicKind::State => {
            let presence: Presence = decode(payload).map_err(decode_err)?;
            Ok(Inbound::Presence {
                site: topic.site,
                agent: topic.agent,
                state: presence.state,
            })
        }
        TopicKind::Records => {
            let batch: Batch = decode(payload).map_err(decode_err)?;
            if batch.site != topic.site || batch.agent != topic.agent {
                return Err(mismatch("record batch", &batch.site, &batch.agent));
            }
            Ok(Inbound::Batch(batch))
        }
        TopicKind::Ack | TopicKind::Escalations => Err(reject(
            RejectReason::Topic,
            format!("{topic} is written by the collector, not by agents"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDS: &str = "outpost/v1/site/plant-leeds/line3-pc/records";
    const BATCH: &str = r#"{"v":1,"site":"plant-leeds","agent":"line3-pc","epoch":7,"records":[
        {"seq":1,"ts":"2026-11-29T10:00:00Z","type":"result","check":"router","status":"ok","summary":"fine"}]}"#;

    #[test]
    fn rules() {
        let other_site = BATCH.replace("\"site\":\"plant-leeds\"", "\"site\":\"plant-york\"");
        let v2 = BATCH.replace("\"v\":1", "\"v\":2");
        let no_epoch = BATCH.replace("\"epoch\":7,", "");
        let big = format!("{}{}", BATCH, " ".repeat(2000));
        let cases: &[(&str, &[u8], Result<usize, RejectReason>)] = &[
            (RECORDS, BATCH.as_bytes(), Ok(1)),
            (RECORDS, other_site.as_bytes(), Err(RejectReason::Mismatch)),
            (RECORDS, b"\xff\x00garbage", Err(RejectReason::Json)),
            (RECORDS, v2.as_bytes(), Err(RejectReason::Version)),
            (RECORDS, no_epoch.as_bytes(), Err(RejectReason::Field)),
            (RECORDS, big.as_bytes(), Err(RejectReason::Oversize)),
            (
                "outpost/v1/site/Bad/x/records",
                BATCH.as_bytes(),
                Err(RejectReason::Topic),
            ),
            (
                "outpost/v1/site/plant-leeds/line3-pc/ack",
                b"{}",
                Err(RejectReason::Topic),
            ),
            (
                "outpost/v1/site/plant-leeds/line3-pc/state",
                br#"{"v":1,"state":"offline"}"#,
                Ok(0),
            ),
            (
                "outpost/v1/site/plant-leeds/line3-pc/state",
                br#"{"v":1,"state":"asleep"}"#,
                Err(RejectReason::Field),
            ),
        ];
        for (topic, payload, expected) in cases {
            let got = classify(topic, payload, 1024)
                .map(|i| i.records())
                .map_err(|r| r.reason);
            assert_eq!(
                &got,
                expected,
                "{topic} {:?}",
                String::from_utf8_lossy(payload)
            );
        }
    }

    #[test]
    fn rejection_names_the_source() {
        let other_site = BATCH.replace("\"site\":\"plant-leeds\"", "\"site\":\"plant-york\"");
        let r = classify(RECORDS, other_site.as_bytes(), 1 << 20).expect_err("mismatch");
        assert_eq!(r.source, "plant-leeds/line3-pc");
        assert!(r.detail.contains("plant-york/line3-pc"), "{}", r.detail);
        let r = classify("elsewhere/x", b"{}", 1 << 20).expect_err("foreign topic");
        assert_eq!(
            (r.reason, r.source.as_str()),
            (RejectReason::Topic, "elsewhere/x")
        );
    }
}
