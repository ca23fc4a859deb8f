//! `outpost-collector`: the central service.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use outpost_collector::{app, config::Config};
use tokio_util::sync::CancellationToken;

/// Exit code for a bad config (as the agent's).
const BAD_CONFIG: u8 = 2;

#[derive(Parser)]
#[command(
    version,
    about = "Outpost collector: turns site check results into escalations for central IT"
)]
struct Cli {
    /// Run with an embedded broker and store and one demo agent (no config needed).
    #[arg(long)]
    demo: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the collector (no config: embedded broker and SQLite under ./outpost-data/).
    Run {
        /// Collector config (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Check a config file and exit: 0 valid, 2 invalid.
    Validate {
        /// Collector config (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let demo = cli.demo;
    let config_path = match (cli.command, cli.demo) {
        (Some(Command::Validate { config }), _) => return validate(&config),
        (Some(Command::Run { config }), _) => config,
        // The demo runs the embedded defaults plus one agent in this process.
        (None, true) => None,
        (None, false) => {
            eprintln!(
                "outpost-collector: say what to do: `run [--config FILE]`, `validate --config FILE` or `--demo` (see --help)"
            );
            return ExitCode::from(BAD_CONFIG);
        }
    };
    let config = match config_path.as_deref().map(Config::load).transpose() {
        Ok(config) => config.unwrap_or_default(),
        Err(e) => {
            eprintln!("outpost-collector: {e}");
            return ExitCode::from(BAD_CONFIG);
        }
    };
    match run(config, demo) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("outpost-collector: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn validate(path: &std::path::Path) -> ExitCode {
    match Config::load(path) {
        Ok(_) => {
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(BAD_CONFIG)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,rumqttd=warn,rumqttd::router::routing=off")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn run(config: Config, demo: bool) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        if demo {
            outpost_collector::demo::run(config, shutdown).await
        } else {
            app::run(config, shutdown).await
        }
    })
}

/// Cancels `shutdown` on SIGTERM or SIGINT (Ctrl-C).
async fn stop_on_signal(shutdown: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops the collector");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; stopping"),
        () = terminate => tracing::info!("terminated; stopping"),
    }
    shutdown.cancel();
}
