//! `status`: the running agent's local page, in the terminal.

use std::{process::ExitCode, time::Duration};

use std::fmt::Write as _;

use serde_json::Value;

/// The local page's URL for its listen address (an unspecified one is reached on loopback).
pub fn page_url(listen: std::net::SocketAddr) -> String {
    let host = match listen.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
        ip if ip.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
    };
    format!("http://{host}:{}", listen.port())
}

/// Fetches `GET {url}/api/v1/status` and prints it readably.
pub async fn status(url: &str) -> ExitCode {
    let endpoint = format!("{}/api/v1/status", url.trim_end_matches('/'));
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    {
        Ok(c) => c,
        Err(err) => {
            eprintln!("error: cannot set up the web client: {err}");
            return ExitCode::FAILURE;
        }
    };
    let response = match client.get(&endpoint).send().await {
        Ok(r) => r,
        Err(err) if err.is_connect() => {
            eprintln!(
                "error: no agent answers at {url} (connection refused or unreachable). Is \
                 `outpost-agent run` running, and is [local] listen set to this address? \
                 Use --url to point elsewhere."
            );
            return ExitCode::FAILURE;
        }
        Err(err) => {
            eprintln!("error: asking {endpoint} failed: {err}");
            return ExitCode::FAILURE;
        }
    };
    if !response.status().is_success() {
        eprintln!("error: {endpoint} answered HTTP {}", response.status());
        return ExitCode::FAILURE;
    }
    match response.json::<Value>().await {
        Ok(value) => {
            print!("{}", render(&value));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {endpoint} did not send status JSON: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Renders the status JSON (the live snapshot) as text; unknown shapes print as JSON.
pub fn render(value: &Value) -> String {
    if let Some(view) = value.get("view").filter(|v| v.get("headline").is_some()) {
        return render_view(view);
    }
    let Some(checks) = value.get("checks").and_then(Value::as_array) else {
        return serde_json::to_string_pretty(value).unwrap_or_default() + "\n";
    };
    let mut out = String::new();
    match value.get("connection") {
        Some(Value::Object(c)) if c.get("connected") == Some(&Value::Bool(true)) => {
            out.push_str("Collector link: connected\n");
        }
        Some(Value::Object(c)) => {
            let since = c.get("since").and_then(Value::as_str).unwrap_or("?");
            let why = c
                .get("last_error")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            let _ = writeln!(out, "Collector link: offline since {since} ({why})");
        }
        _ => out.push_str("Collector link: not tried yet\n"),
    }
    out.push('\n');
    let results = value.get("results");
    for check in checks {
        let id = check.get("id").and_then(Value::as_str).unwrap_or("?");
        let title = check.get("title").and_then(Value::as_str).unwrap_or(id);
        let result = results.and_then(|r| r.get(id));
        let status = result
            .and_then(|r| r.get("status"))
            .and_then(Value::as_str)
            .unwrap_or("pending")
            .to_uppercase();
        let summary = result
            .and_then(|r| r.get("summary"))
            .and_then(Value::as_str)
            .unwrap_or("Not run yet.");
        let _ = writeln!(out, "{status:<7} {title}\n        {summary}");
    }
    if let Some(list) = value
        .get("escalations")
        .and_then(|e| e.get("escalations"))
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
    {
        out.push_str("\nEscalations:\n");
        for e in list {
            let get = |k| e.get(k).and_then(Value::as_str).unwrap_or("");
            let _ = writeln!(
                out,
                "  {} {}: {}",
                get("check"),
                get("state"),
                get("summary")
            );
        }
    }
    out
}

/// Renders the site page's own words (`view` in the status JSON), so the terminal says exactly
/// what the page says.
fn render_view(view: &Value) -> String {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
    let mut out = String::new();
    let _ = writeln!(out, "{}", text(view, "headline"));
    let _ = writeln!(
        out,
        "Connection to head office: {}",
        text(view, "connection")
    );
    for key in ["planned_work", "planned_work_ended"] {
        if let Some(planned) = view.get(key).and_then(Value::as_str) {
            let _ = writeln!(out, "{planned}");
        }
    }
    for check in view
        .get("checks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let since = check
            .get("since")
            .and_then(Value::as_str)
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "\n{}: {}{since}\n    {}",
            text(check, "title"),
            text(check, "status_words"),
            text(check, "summary")
        );
        for key in [
            "heartbeat",
            "checklist",
            "planned_work",
            "waiting_for",
            "demarcation",
            "fixed",
        ] {
            if let Some(line) = check.get(key).and_then(Value::as_str) {
                let _ = writeln!(out, "    {line}");
            }
        }
        if let Some(note) = check.get("it_note").and_then(Value::as_str) {
            let _ = writeln!(out, "    IT says: {note}");
        }
        let steps = check.get("runbook").and_then(Value::as_array);
        if let Some(steps) = steps.filter(|s| !s.is_empty()) {
            let _ = writeln!(out, "    What to do:");
            for (n, step) in steps.iter().enumerate() {
                let _ = writeln!(out, "      {}. {}", n + 1, step.as_str().unwrap_or(""));
            }
        }
        for note in check
            .get("notes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let _ = writeln!(out, "    Note: {}", note.as_str().unwrap_or(""));
        }
    }
    out
}
