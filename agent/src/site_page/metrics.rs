//! `GET /metrics`: the live state in the Prometheus text format, for a local scraper.

use std::fmt::Write as _;

use outpost_shared::Status;

use crate::{live::Snapshot, outbox::OutboxStats};

/// The Prometheus text exposition of `snapshot`, the outbox figures and planned work.
pub fn render(snapshot: &Snapshot, outbox: Option<&OutboxStats>, planned_work: usize) -> String {
    let mut out = String::with_capacity(2048);
    family(
        &mut out,
        "outpost_check_status",
        "gauge",
        "Newest status per check: 0 ok, 1 warn, 2 fail, 3 unknown.",
    );
    for spec in &snapshot.checks {
        if let Some(result) = snapshot.results.get(&spec.id) {
            let value = match result.status {
                Status::Ok => 0,
                Status::Warn => 1,
                Status::Fail => 2,
                Status::Unknown => 3,
            };
            let _ = writeln!(
                out,
                "outpost_check_status{{check=\"{}\",kind=\"{}\"}} {value}",
                label(spec.id.as_str()),
                label(&spec.kind)
            );
        }
    }
    family(
        &mut out,
        "outpost_check_last_run_timestamp_seconds",
        "gauge",
        "When each check last ran (Unix time).",
    );
    for (check, result) in &snapshot.results {
        let _ = writeln!(
            out,
            "outpost_check_last_run_timestamp_seconds{{check=\"{}\"}} {}",
            label(check.as_str()),
            result.ts.as_millisecond() as f64 / 1000.0
        );
    }
    if let Some(stats) = outbox {
        for (name, kind, help, value) in [
            (
                "outpost_outbox_pending_records",
                "gauge",
                "Records not yet acknowledged by the collector.",
                stats.pending,
            ),
            (
                "outpost_outbox_bytes",
                "gauge",
                "Bytes the outbox uses on disk.",
                stats.bytes,
            ),
            (
                "outpost_outbox_dropped_records_total",
                "counter",
                "Records dropped by the outbox bounds since the agent started.",
                stats.dropped_total,
            ),
            (
                "outpost_outbox_last_seq",
                "gauge",
                "The newest record's sequence number.",
                stats.last_seq,
            ),
            (
                "outpost_outbox_acked_seq",
                "gauge",
                "The collector's acknowledged watermark.",
                stats.acked_seq,
            ),
        ] {
            family(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
    }
    let connected = snapshot.connection.as_ref().is_some_and(|c| c.connected);
    family(
        &mut out,
        "outpost_collector_connected",
        "gauge",
        "1 while the agent is connected to the broker, else 0.",
    );
    let _ = writeln!(out, "outpost_collector_connected {}", u8::from(connected));
    family(
        &mut out,
        "outpost_planned_work_active",
        "gauge",
        "Planned work declared on the site page and still going on.",
    );
    let _ = writeln!(out, "outpost_planned_work_active {planned_work}");
    family(
        &mut out,
        "outpost_agent_start_timestamp_seconds",
        "gauge",
        "When the agent started (Unix time).",
    );
    let _ = writeln!(
        out,
        "outpost_agent_start_timestamp_seconds {}",
        snapshot.started_at.as_second()
    );
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Escapes a label value (backslash, quote, newline).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
