//! `check` (run every check once) and `validate`.

use std::{path::Path, process::ExitCode};

use outpost_agent::{checks::RunContext, scheduler};
use outpost_shared::Status;
use serde::Serialize;

#[derive(Serialize)]
struct Printed<'a> {
    check: &'a str,
    kind: &'a str,
    title: &'a str,
    status: Status,
    summary: &'a str,
    metrics: &'a std::collections::BTreeMap<String, f64>,
}

/// Runs each check once and prints the results; exit 0 when all are ok, else 1.
pub async fn check(path: &Path, json: bool) -> ExitCode {
    let config = match super::load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let live = scheduler::live_without_outbox(&config.checks);
    let ctx = RunContext {
        started_at: live.started_at(),
        live,
        timezone: config.timezone.clone(),
        state_dir: None,
    };
    let results =
        scheduler::run_all_once(&config.checks, &ctx, scheduler::DEFAULT_CONCURRENCY).await;
    let printed: Vec<Printed<'_>> = results
        .iter()
        .map(|(check, outcome)| {
            let c = check.common();
            Printed {
                check: c.id.as_str(),
                kind: c.kind,
                title: &c.title,
                status: outcome.status,
                summary: &outcome.summary,
                metrics: &outcome.metrics,
            }
        })
        .collect();
    if json {
        match serde_json::to_string_pretty(&printed) {
            Ok(text) => println!("{text}"),
            Err(err) => eprintln!("error: cannot print JSON: {err}"),
        }
    } else {
        let width = printed.iter().map(|p| p.check.len()).max().unwrap_or(0);
        for p in &printed {
            println!(
                "{:<7} {:<width$}  {}",
                p.status.as_str().to_uppercase(),
                p.check,
                p.summary
            );
        }
    }
    if printed.iter().all(|p| p.status == Status::Ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Checks the config; exit 0 when valid, 2 when not.
pub fn validate(path: &Path) -> ExitCode {
    match super::load(path) {
        Ok(config) => {
            println!(
                "{}: valid; site {}, agent {}, {} checks.",
                path.display(),
                config.site,
                config.agent,
                config.checks.len()
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}
