//! The one place that knows the MQTT topic layout under `outpost/v1`.

use std::fmt;

use crate::{AgentId, IdError, SiteId};

/// Root of every Outpost topic.
pub const ROOT: &str = "outpost/v1";
/// The collector's presence topic (retained, also its Last Will).
pub const COLLECTOR_STATE: &str = "outpost/v1/collector/state";

/// What an agent topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopicKind {
    /// Agent → collector, retained: version, host facts, check catalogue.
    Birth,
    /// Agent → collector, retained and Last Will: online / offline.
    State,
    /// Agent → collector: record batches.
    Records,
    /// Collector → agent, retained: durable watermark.
    Ack,
    /// Collector → agent, retained: open and recently resolved escalations.
    Escalations,
}

impl TopicKind {
    /// Every kind, in contract order.
    pub const ALL: [Self; 5] = [
        Self::Birth,
        Self::State,
        Self::Records,
        Self::Ack,
        Self::Escalations,
    ];

    /// The last topic level.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Birth => "birth",
            Self::State => "state",
            Self::Records => "records",
            Self::Ack => "ack",
            Self::Escalations => "escalations",
        }
    }

    /// A subscription filter matching this kind for every site and agent.
    pub fn filter_all(self) -> String {
        format!("{ROOT}/site/+/+/{}", self.as_str())
    }

    /// A filter for this kind for every agent of one site.
    pub fn filter_site(self, site: &SiteId) -> String {
        format!("{ROOT}/site/{site}/+/{}", self.as_str())
    }
}

/// A parsed agent topic: `outpost/v1/site/{site}/{agent}/{kind}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AgentTopic {
    /// The site in the topic.
    pub site: SiteId,
    /// The agent in the topic.
    pub agent: AgentId,
    /// The last level.
    pub kind: TopicKind,
}

/// Why a topic is not an Outpost agent topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// Not under `outpost/v1/site/` or the wrong number of levels.
    #[error("topic {0:?} is not of the form outpost/v1/site/{{site}}/{{agent}}/{{kind}}")]
    Shape(String),
    /// The last level is not a known kind.
    #[error("topic {topic:?} ends in {kind:?}; expected birth, state, records, ack or escalations")]
    Kind { topic: String, kind: String },
    /// The site or agent level is not a valid id.
    #[error("topic {topic:?}: {source}")]
    Id {
        topic: String,
        #[source]
        source: IdError,
    },
}

impl AgentTopic {
    /// A topic for `site`/`agent` of `kind`.
    pub fn new(site: &SiteId, agent: &AgentId, kind: TopicKind) -> Self {
        Self {
            site: site.clone(),
            agent: agent.clone(),
            kind,
        }
    }

    /// Parses a full topic name.
    pub fn parse(topic: &str) -> Result<Self, TopicError> {
        let shape = || TopicError::Shape(topic.chars().take(200).collect());
        let rest = topic
            .strip_prefix(ROOT)
            .and_then(|r| r.strip_prefix("/site/"))
            .ok_or_else(shape)?;
        let mut levels = rest.split('/');
        let (Some(site), Some(agent), Some(kind), None) =
            (levels.next(), levels.next(), levels.next(), levels.next())
        else {
            return Err(shape());
        };
        let kind = TopicKind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind)
            .ok_or_else(|| TopicError::Kind {
                topic: topic.to_owned(),
                kind: kind.to_owned(),
            })?;
        let id_err = |source| TopicError::Id {
            topic: topic.to_owned(),
            source,
        };
        Ok(Self {
            site: SiteId::new(site).map_err(id_err)?,
            agent: AgentId::new(agent).map_err(id_err)?,
            kind,
        })
    }
}

impl fmt::Display for AgentTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{ROOT}/site/{}/{}/{}",
            self.site,
            self.agent,
            self.kind.as_str()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (SiteId, AgentId) {
        (
            SiteId::new("plant-leeds").expect("valid"),
            AgentId::new("line3-pc").expect("valid"),
        )
    }

    #[test]
    fn build_and_parse_round_trip() {
        let (site, agent) = ids();
        for kind in TopicKind::ALL {
            let topic = AgentTopic::new(&site, &agent, kind);
            let text = topic.to_string();
            assert_eq!(
                text,
                format!("outpost/v1/site/plant-leeds/line3-pc/{}", kind.as_str())
            );
            assert_eq!(AgentTopic::parse(&text), Ok(topic));
        }
    }

    #[test]
    fn rejects_foreign_topics() {
        for bad in [
            "outpost/v1/site/a/b",
            "outpost/v1/site/a/b/records/x",
            "outpost/v2/site/a/b/records",
            "outpost/v1/collector/state",
            "outpost/v1/site/A/b/records",
            "outpost/v1/site/a/b/bogus",
            "",
        ] {
            assert!(AgentTopic::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters() {
        assert_eq!(
            TopicKind::Records.filter_all(),
            "outpost/v1/site/+/+/records"
        );
        let (site, _) = ids();
        assert_eq!(
            TopicKind::Ack.filter_site(&site),
            "outpost/v1/site/plant-leeds/+/ack"
        );
    }
}
