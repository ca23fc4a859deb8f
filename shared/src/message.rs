//! Top-level payloads (birth, presence, ack) and the one decoder every payload goes through.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    AgentId, Batch, CheckId, EscalationList, HumanDuration, PROTOCOL_VERSION, SiteId, Timestamp,
};

/// A payload type with a `v` field and a name for error messages.
pub trait Message: Serialize + DeserializeOwned {
    /// What the payload is called in errors ("record batch").
    const KIND: &'static str;
    /// The payload's protocol major version.
    fn version(&self) -> u32;
}

/// Why a payload was refused. Says which payload, which field and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON at all: not UTF-8, a syntax error, or cut off.
    #[error("{kind}: not valid JSON: {reason}")]
    Syntax { kind: &'static str, reason: String },
    /// Not UTF-8 / not JSON / wrong shape; `path` names the field.
    #[error("{kind}: field `{path}`: {reason}")]
    Field {
        kind: &'static str,
        path: String,
        reason: String,
    },
    /// A different major protocol version.
    #[error("{kind}: protocol version v={found} is not supported; this build speaks v=1")]
    Version { kind: &'static str, found: u64 },
}

impl DecodeError {
    /// A short stable label for metrics: `json`, `field`, `version`.
    pub fn reason_label(&self) -> &'static str {
        match self {
            Self::Syntax { .. } => "json",
            Self::Field { .. } => "field",
            Self::Version { .. } => "version",
        }
    }
}

#[derive(Deserialize)]
struct VersionOnly {
    v: u64,
}

/// Decodes a payload. Never panics; a different major `v` is reported as such, unknown
/// fields are ignored (forward compatible).
pub fn decode<T: Message>(bytes: &[u8]) -> Result<T, DecodeError> {
    // The plain decoder first: tracking the path has a cost on every message, and only a
    // payload that fails needs it (decoded a second time, to name the field).
    let decoded = if let Ok(value) = serde_json::from_slice::<T>(bytes) {
        Ok(value)
    } else {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize::<_, T>(&mut de)
            .map_err(|err| (err.path().to_string(), err.into_inner()))
            .and_then(|value| de.end().map(|()| value).map_err(|e| (".".to_owned(), e)))
    };
    match decoded {
        Ok(value) if value.version() == PROTOCOL_VERSION => Ok(value),
        Ok(value) => Err(DecodeError::Version {
            kind: T::KIND,
            found: u64::from(value.version()),
        }),
        Err((path, err)) => {
            if !matches!(err.classify(), serde_json::error::Category::Data) {
                return Err(DecodeError::Syntax {
                    kind: T::KIND,
                    reason: err.to_string(),
                });
            }
            // A payload of another major version may have another shape: say so, not "field x".
            if let Ok(VersionOnly { v }) = serde_json::from_slice::<VersionOnly>(bytes)
                && v != u64::from(PROTOCOL_VERSION)
            {
                return Err(DecodeError::Version {
                    kind: T::KIND,
                    found: v,
                });
            }
            Err(DecodeError::Field {
                kind: T::KIND,
                path,
                reason: err.to_string(),
            })
        }
    }
}

/// Encodes a payload as compact JSON.
pub fn encode<T: Message>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value)
        .expect("wire types serialize without error: no maps with non-string keys")
}

/// Online or offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceState {
    /// Connected.
    Online,
    /// Disconnected (clean shutdown or Last Will).
    Offline,
}

/// The `state` payload of an agent or the collector: `{"v":1,"state":"online"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// Protocol major version.
    pub v: u32,
    /// Online or offline.
    pub state: PresenceState,
}

impl Presence {
    /// Online, current version.
    pub const ONLINE: Self = Self {
        v: PROTOCOL_VERSION,
        state: PresenceState::Online,
    };
    /// Offline, current version.
    pub const OFFLINE: Self = Self {
        v: PROTOCOL_VERSION,
        state: PresenceState::Offline,
    };
}

/// The durable watermark on the `ack` topic: everything up to `seq` of `epoch` is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Protocol major version.
    pub v: u32,
    /// The agent's buffer generation this watermark is for.
    pub epoch: u64,
    /// Highest committed seq.
    pub seq: u64,
}

/// Facts about the agent's host, sent in the birth message.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HostFacts {
    /// Host name.
    pub hostname: String,
    /// Operating system name and version.
    #[serde(default)]
    pub os: String,
    /// Kernel version.
    #[serde(default)]
    pub kernel: String,
    /// CPU architecture.
    #[serde(default)]
    pub arch: String,
    /// Logical CPUs.
    #[serde(default)]
    pub cpus: u32,
    /// Total memory in bytes.
    #[serde(default)]
    pub memory_bytes: u64,
    /// The site's IANA time zone (governs checklist times).
    #[serde(default)]
    pub timezone: String,
}

/// One check in the agent's catalogue: what the collector needs to judge and explain it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckSpec {
    /// Check id, unique on the agent.
    pub id: CheckId,
    /// Kind: ping, tcp, http, uptime, resources, backup, heartbeat, checklist.
    pub kind: String,
    /// Plain-language title.
    pub title: String,
    /// How often it runs.
    pub interval: HumanDuration,
    /// Consecutive failures before an escalation opens.
    pub fail_after: u32,
    /// Consecutive ok results to resolve.
    pub recover_after: u32,
    /// Time the site team gets before IT is called.
    pub local_window: HumanDuration,
    /// Whether `warn` results escalate like failures.
    #[serde(default)]
    pub escalate_warn: bool,
    /// Steps for the site team, in order.
    #[serde(default)]
    pub runbook: Vec<String>,
    /// Checks whose failure explains this one.
    #[serde(default)]
    pub depends_on: Vec<CheckId>,
    /// Thresholds as configured (name → value), for display.
    #[serde(default)]
    pub thresholds: BTreeMap<String, f64>,
}

/// The retained `birth` payload, sent on every connect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Birth {
    /// Protocol major version.
    pub v: u32,
    /// The site.
    pub site: SiteId,
    /// The agent.
    pub agent: AgentId,
    /// Agent software version.
    pub version: String,
    /// The buffer generation.
    pub epoch: u64,
    /// When the host booted.
    pub boot_time: Timestamp,
    /// When this agent process started.
    pub started_at: Timestamp,
    /// Host facts.
    pub host: HostFacts,
    /// The check catalogue.
    pub checks: Vec<CheckSpec>,
}

macro_rules! message {
    ($ty:ty, $kind:literal) => {
        impl Message for $ty {
            const KIND: &'static str = $kind;
            fn version(&self) -> u32 {
                self.v
            }
        }
    };
}

message!(Birth, "birth");
message!(Presence, "state");
message!(Batch, "record batch");
message!(Ack, "ack");
message!(EscalationList, "escalations");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_field_is_named() {
        let err = decode::<Ack>(br#"{"v":1,"epoch":5,"seq":"x"}"#).expect_err("seq is a string");
        assert_eq!(err.reason_label(), "field");
        let msg = err.to_string();
        assert!(msg.starts_with("ack: field `seq`"), "{msg}");
    }

    #[test]
    fn nested_field_is_named() {
        let payload = br#"{"v":1,"site":"s","agent":"a","epoch":1,"records":[
            {"seq":1,"ts":"2026-11-29T10:00:00Z","type":"gap","from_seq":1,"to_seq":2,"dropped":2,"reason":"size"},
            {"seq":2,"ts":"2026-11-29T10:00:00Z","type":"result","check":"Bad!","status":"ok","summary":""}]}"#;
        let msg = decode::<Batch>(payload)
            .expect_err("bad check id")
            .to_string();
        assert!(msg.contains("records[1]"), "{msg}");
        assert!(msg.contains("check id"), "{msg}");
    }

    #[test]
    fn other_major_version_is_rejected_clearly() {
        let err = decode::<Presence>(br#"{"v":2,"state":"asleep"}"#).expect_err("v2");
        assert_eq!(
            err,
            DecodeError::Version {
                kind: "state",
                found: 2
            }
        );
        let err = decode::<Presence>(br#"{"v":3,"state":"online"}"#).expect_err("v3");
        assert_eq!(err.reason_label(), "version");
    }

    #[test]
    fn unknown_fields_are_tolerated() {
        let p = decode::<Presence>(br#"{"v":1,"state":"online","since":"later"}"#);
        assert_eq!(p, Ok(Presence::ONLINE));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"{",
            b"\xff\xfe",
            b"null",
            b"[]",
            b"{\"v\":1} trailing",
        ] {
            assert!(decode::<Birth>(bytes).is_err());
        }
    }
}
