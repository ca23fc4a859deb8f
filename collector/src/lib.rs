//! The Outpost collector: ingest from MQTT, store, decide escalations, notify IT, serve the API.

pub mod broker;
pub mod decide;
pub mod engine;
pub mod notify;
