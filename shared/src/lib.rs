//! The Outpost wire contract, shared by the agent and the collector.
//!
//! Everything that crosses MQTT is defined here: message types, topic names, validated ids,
//! human-friendly durations and the threshold helpers both sides agree on. No I/O lives here.

pub mod duration;
pub mod escalation;
pub mod id;
pub mod message;
pub mod record;
pub mod status;
pub mod threshold;
pub mod topic;

pub use duration::{ByteSize, HumanDuration};
pub use escalation::{EscalationKind, EscalationList, EscalationState, EscalationView, FixedBy};
pub use id::{AgentId, CheckId, IdError, SiteId};
pub use message::{
    Ack, Birth, CheckSpec, DecodeError, HostFacts, Presence, PresenceState, decode, encode,
};
pub use record::{
    Batch, GapRecord, NoteAction, NoteRecord, Record, RecordBody, RecordKey, ResultRecord,
};
pub use status::Status;
pub use topic::{AgentTopic, TopicError, TopicKind};

/// The major protocol version this build speaks; every payload carries it as `v`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Timestamps on the wire: RFC 3339 in UTC.
pub type Timestamp = jiff::Timestamp;
