//! Runs one check in its own task with its timeout: a slow check is stopped and a panicking
//! one is contained, both reported `unknown`, and the other checks go on.

use std::sync::Arc;

use outpost_shared::Status;

use super::{Check, Outcome, RunContext};

/// Runs `check` once, isolated in a task and cut off at its `timeout`.
pub async fn run_guarded(check: Arc<dyn Check>, ctx: RunContext) -> Outcome {
    let limit = check.common().timeout.get();
    let task = tokio::spawn(async move { check.run(&ctx).await });
    let abort = task.abort_handle();
    match tokio::time::timeout(limit, task).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(join)) if join.is_panic() => {
            let panic = join.into_panic();
            let detail = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_owned());
            tracing::error!(panic = %detail, "a check panicked");
            Outcome::new(
                Status::Unknown,
                format!("The check crashed and could not tell ({detail})."),
            )
        }
        Ok(Err(_cancelled)) => Outcome::new(Status::Unknown, "The check was cancelled."),
        Err(_elapsed) => {
            abort.abort();
            Outcome::new(
                Status::Unknown,
                format!(
                    "The check took longer than {} and was stopped.",
                    outpost_shared::HumanDuration::new(limit)
                ),
            )
            .metric("timeout_s", limit.as_secs_f64())
        }
    }
}
