//! Test support for the whole workspace: real MQTT brokers on free ports, built binaries,
//! temporary folders. Every helper cleans up on drop, also when the test fails.

pub mod agent;
pub mod bench;
pub mod broker;
pub mod browser;
pub mod collector;
pub mod fake_agent;
pub mod netns;
pub mod pg;
pub mod process;
pub mod receiver;
pub mod tls;

pub use agent::AgentProcess;
pub use broker::{Broker, BrokerKind};
pub use collector::CollectorProcess;
pub use fake_agent::FakeAgent;
pub use pg::TempDb;
pub use process::{bin_path, free_port, wait_for_port};
pub use receiver::Receiver;
