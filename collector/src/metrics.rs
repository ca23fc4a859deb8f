//! Ingest and store counters, rendered in the Prometheus text format for `GET /metrics`.

use std::{
    fmt::Write as _,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

/// Why an incoming message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Not JSON (or not UTF-8, or trailing bytes).
    Json,
    /// JSON of the wrong shape: a field missing or invalid.
    Field,
    /// Another major protocol version.
    Version,
    /// The topic is not an Outpost agent topic.
    Topic,
    /// The payload's site/agent differ from the topic's.
    Mismatch,
    /// Larger than `[ingest] max_payload`.
    Oversize,
    /// Over its site's share (`[ingest] site_rate` / `site_burst`).
    Rate,
}

impl RejectReason {
    /// Every reason, in label order.
    pub const ALL: [Self; 7] = [
        Self::Json,
        Self::Field,
        Self::Version,
        Self::Topic,
        Self::Mismatch,
        Self::Oversize,
        Self::Rate,
    ];

    /// The metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Field => "field",
            Self::Version => "version",
            Self::Topic => "topic",
            Self::Mismatch => "mismatch",
            Self::Oversize => "oversize",
            Self::Rate => "rate",
        }
    }

    /// The reason for a decode error: not JSON, a field wrong, or another protocol version.
    pub fn from_decode(err: &outpost_shared::DecodeError) -> Self {
        match err {
            outpost_shared::DecodeError::Syntax { .. } => Self::Json,
            outpost_shared::DecodeError::Field { .. } => Self::Field,
            outpost_shared::DecodeError::Version { .. } => Self::Version,
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Upper bounds (seconds) of the store batch latency histogram.
const LATENCY_BUCKETS: [f64; 8] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 1.0];

/// The collector's counters; shared as `Arc<Metrics>`, updated lock-free.
#[derive(Debug, Default)]
pub struct Metrics {
    messages_received: AtomicU64,
    records_stored: AtomicU64,
    records_duplicate: AtomicU64,
    rejected: [AtomicU64; RejectReason::ALL.len()],
    store_errors: AtomicU64,
    store_batches: AtomicU64,
    store_latency_micros: AtomicU64,
    store_latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    mqtt_reconnects: AtomicU64,
    /// Connected and subscribed: agents' records reach the collector.
    pub mqtt_ready: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Metrics {
    /// A new set, all zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// One MQTT message arrived (valid or not).
    pub fn message_received(&self) {
        self.messages_received.fetch_add(1, Ordering::Relaxed);
    }

    /// A message was dropped for `reason`.
    pub fn rejected(&self, reason: RejectReason) {
        self.rejected[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// One store write stored `new` records and ignored `duplicates`, taking `took`.
    pub fn store_batch(&self, new: u64, duplicates: u64, took: Duration) {
        self.records_stored.fetch_add(new, Ordering::Relaxed);
        self.records_duplicate
            .fetch_add(duplicates, Ordering::Relaxed);
        self.store_batches.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.store_latency_micros
            .fetch_add(micros, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        for (bound, count) in LATENCY_BUCKETS.iter().zip(&self.store_latency_buckets) {
            if secs <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A store write failed (it is retried).
    pub fn store_error(&self) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The MQTT connection was (re)established.
    pub fn mqtt_connected(&self) {
        self.mqtt_reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Ingest is connected with its subscriptions in place (`false` while reconnecting).
    pub fn set_mqtt_ready(&self, ready: bool) {
        self.mqtt_ready.store(ready, Ordering::Relaxed);
    }

    /// Connections made to the broker so far (1 when it never dropped).
    pub fn mqtt_connections(&self) -> u64 {
        self.mqtt_reconnects.load(Ordering::Relaxed)
    }

    /// Messages received so far.
    pub fn messages(&self) -> u64 {
        self.messages_received.load(Ordering::Relaxed)
    }

    /// Records newly stored so far.
    pub fn records_stored(&self) -> u64 {
        self.records_stored.load(Ordering::Relaxed)
    }

    /// Duplicate records ignored so far.
    pub fn duplicates(&self) -> u64 {
        self.records_duplicate.load(Ordering::Relaxed)
    }

    /// Messages dropped for `reason` so far.
    pub fn rejected_count(&self, reason: RejectReason) -> u64 {
        self.rejected[reason.index()].load(Ordering::Relaxed)
    }

    /// The counters in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        counter(
            &mut out,
            "outpost_collector_messages_received_total",
            "MQTT messages received.",
            load(&self.messages_received),
        );
        counter(
            &mut out,
            "outpost_collector_records_stored_total",
            "Records stored for the first time.",
            load(&self.records_stored),
        );
        counter(
            &mut out,
            "outpost_collector_records_duplicate_total",
            "Records already stored (replays, QoS 1 duplicates).",
            load(&self.records_duplicate),
        );
        counter(
            &mut out,
            "outpost_collector_store_errors_total",
            "Store writes that failed and were retried.",
            load(&self.store_errors),
        );
        counter(
            &mut out,
            "outpost_collector_mqtt_connections_total",
            "MQTT connections established.",
            load(&self.mqtt_reconnects),
        );
        let name = "outpost_collector_messages_rejected_total";
        let _ = writeln!(
            out,
            "# HELP {name} Messages dropped, by reason.\n# TYPE {name} counter"
        );
        for reason in RejectReason::ALL {
            let _ = writeln!(
                out,
                "{name}{{reason=\"{}\"}} {}",
                reason.as_str(),
                self.rejected_count(reason)
            );
        }
        let name = "outpost_collector_store_batch_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time to write one batch of records.\n# TYPE {name} histogram"
        );
        for (bound, count) in LATENCY_BUCKETS.iter().zip(&self.store_latency_buckets) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", load(count));
        }
        let batches = load(&self.store_batches);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {batches}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            load(&self.store_latency_micros) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {batches}");
        out
    }
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::new();
        m.message_received();
        m.rejected(RejectReason::Oversize);
        m.rejected(RejectReason::Oversize);
        m.store_batch(5, 2, Duration::from_millis(3));
        let text = m.render();
        assert!(
            text.contains("outpost_collector_messages_received_total 1\n"),
            "{text}"
        );
        assert!(
            text.contains("outpost_collector_records_stored_total 5\n"),
            "{text}"
        );
        assert!(
            text.contains("outpost_collector_records_duplicate_total 2\n"),
            "{text}"
        );
        assert!(
            text.contains("outpost_collector_messages_rejected_total{reason=\"oversize\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("outpost_collector_messages_rejected_total{reason=\"json\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("outpost_collector_store_batch_seconds_bucket{le=\"0.0025\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("outpost_collector_store_batch_seconds_bucket{le=\"0.005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("outpost_collector_store_batch_seconds_count 1\n"),
            "{text}"
        );
    }
}
