//! The Outpost edge agent.
