//! The Outpost collector: ingest from MQTT, store, decide escalations, notify IT, serve the API.

pub mod api;
pub mod app;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod dashboard;
pub mod decide;
pub mod demo;
pub mod engine;
pub mod ingest;
pub mod metrics;
pub mod notify;
pub mod report;
pub mod store;
