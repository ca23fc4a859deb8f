//! `outpost-agent`: run the site's checks and report them to the collector.

mod cli;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand, ValueEnum};

/// Outpost edge agent: checks a remote site and reports to the collector.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Plain, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the checks and publish results until stopped (SIGTERM / Ctrl-C).
    Run {
        /// The agent config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run every check once and print the results (exit 0 all ok, 1 some not ok, 2 bad config).
    Check {
        /// The agent config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check the config file and exit (0 valid, 2 invalid).
    Validate {
        /// The agent config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Show the running agent's status (the local page's content) in the terminal.
    Status {
        /// The agent's local page (default: from --config, else http://127.0.0.1:9470).
        #[arg(long)]
        url: Option<String>,
        /// The agent config file, to find its local page (`[local] listen`).
        #[arg(long, short, conflicts_with = "url")]
        config: Option<PathBuf>,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_format);
    outpost_agent::install_tls_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        // Two workers are plenty for dozens of checks and keep the agent lean.
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match args.command {
            Command::Run { config } => cli::run::run(&config).await,
            Command::Check { config, json } => cli::check::check(&config, json).await,
            Command::Validate { config } => cli::check::validate(&config),
            Command::Status { url, config } => {
                let url = match (url, config) {
                    (Some(url), _) => url,
                    (None, Some(path)) => match cli::load(&path) {
                        Ok(config) => cli::status::page_url(config.local.listen),
                        Err(code) => return code,
                    },
                    (None, None) => "http://127.0.0.1:9470".to_owned(),
                };
                cli::status::status(&url).await
            }
        }
    })
}
