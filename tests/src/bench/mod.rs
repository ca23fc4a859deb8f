//! The `outpost-bench` scenarios: each starts real processes (Mosquitto, the release agent or
//! collector), drives a load, measures, and prints figures beside a baseline measured in the
//! same run. Nothing here passes or fails on a time.

pub mod central;
pub mod fleet;
pub mod footprint;
pub mod ingest;
pub mod latency;
pub mod load;
pub mod mqtt;
pub mod proc;
pub mod replay;
pub mod server;
pub mod sim;
pub mod store;
pub mod table;

use std::time::Duration;

/// Parses a duration given on the command line ("10s", "5m", "250ms").
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Some(ms) = text.strip_suffix("ms") {
        return ms
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|e| format!("{text:?}: {e}; expected a duration like 250ms, 10s or 5m"));
    }
    text.parse::<outpost_shared::HumanDuration>()
        .map(outpost_shared::HumanDuration::get)
        .map_err(|e| format!("{text:?}: {e}; expected a duration like 250ms, 10s or 5m"))
}

/// Records per second, guarding against a zero elapsed time.
pub fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}
