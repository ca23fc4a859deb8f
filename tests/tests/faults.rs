//! The end-to-end fault suite: a plant's bad day, reproduced on one machine. Real Mosquitto,
//! the built collector and agent binaries, a webhook receiver, and network namespaces for a
//! site's router and for the site itself (its WAN line pulled); each scenario breaks something and then reconciles, with exact counts, what the
//! agent produced against what the collector stored and whom it notified.
//!
//! Run: `cargo nextest run -p outpost-tests --test faults` (the `netns` tests need root and
//! iproute2; without them they skip with a message).

#[path = "faults/agent_crash.rs"]
mod agent_crash;
#[path = "faults/broker.rs"]
mod broker;
#[path = "faults/collector_crash.rs"]
mod collector_crash;
#[path = "faults/hostile.rs"]
mod hostile;
#[path = "faults/outbox_bound.rs"]
mod outbox_bound;
#[path = "faults/router.rs"]
mod router;
#[path = "faults/support.rs"]
mod support;
#[path = "faults/wan.rs"]
mod wan;
