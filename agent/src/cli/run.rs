//! `run`: the agent's main loop until SIGTERM or Ctrl-C.

use std::{path::Path, process::ExitCode, sync::Arc};

use tokio_util::sync::CancellationToken;

/// Runs the agent; exit 2 on a bad config, 1 on a failure to start.
pub async fn run(path: &Path) -> ExitCode {
    let config = match super::load(path) {
        Ok(c) => Arc::new(c),
        Err(code) => return code,
    };
    match run_config(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_config(config: Arc<Config>) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let signal = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        signal.cancel();
    });
    outpost_agent::runtime::run(config, stop).await
}

use outpost_agent::config::Config;

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM; Ctrl-C still stops the agent");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
