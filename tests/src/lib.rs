//! Test support for the whole workspace: real MQTT brokers on free ports, built binaries,
//! temporary folders. Every helper cleans up on drop, also when the test fails.

pub mod broker;
pub mod pg;
pub mod process;

pub use broker::{Broker, BrokerKind};
pub use pg::TempDb;
pub use process::{bin_path, free_port, wait_for_port};
