//! `agent-footprint`: the release agent running 50 mixed checks against local targets, with
//! a release collector acking its records; its memory, CPU and wakeups sampled from `/proc`.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context, bail};

use super::{
    central::{Central, StoreKind},
    mqtt::AckWatch,
    proc::Sampler,
    server,
    table::{Table, mib},
};
use crate::{Broker, free_port};

/// What the `agent-footprint` scenario is asked to do.
#[derive(Debug, Clone)]
pub struct FootprintArgs {
    /// Checks in the agent's config (spread over every kind).
    pub checks: usize,
    /// Every check's interval.
    pub interval: Duration,
    /// How long to sample.
    pub duration: Duration,
    /// The agent binary (default: `outpost-agent` beside this bench binary).
    pub agent_bin: Option<PathBuf>,
}

/// The kinds in the mix, with their share out of 10.
const MIX: [(&str, usize); 8] = [
    ("tcp", 2),
    ("http", 2),
    ("ping", 1),
    ("uptime", 1),
    ("resources", 1),
    ("backup", 1),
    ("heartbeat", 1),
    ("checklist", 1),
];

/// Runs the agent and prints its footprint.
pub async fn run(args: &FootprintArgs) -> anyhow::Result<()> {
    let agent_bin = match &args.agent_bin {
        Some(p) => p.clone(),
        None => sibling("outpost-agent")?,
    };
    if !agent_bin.exists() {
        bail!(
            "{} does not exist; build it with `cargo build --release -p outpost-agent` or pass --agent-bin",
            agent_bin.display()
        );
    }
    let broker = tokio::task::block_in_place(Broker::start);
    let central =
        tokio::task::block_in_place(|| Central::start(broker.port(), StoreKind::Sqlite, ""))?;
    let acks = AckWatch::start(broker.port()).await?;
    let dir = tempfile::tempdir().context("temp dir for the agent")?;
    let config = agent_config(args, dir.path(), broker.port()).await?;
    let config_path = dir.path().join("agent.toml");
    std::fs::write(&config_path, config).context("writing agent.toml")?;
    let log = std::fs::File::create(dir.path().join("agent.log")).context("agent log")?;
    let mut child = Command::new(&agent_bin)
        .args(["run", "--config"])
        .arg(&config_path)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("agent log handle")?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", agent_bin.display()))?;
    let sampler = Sampler::start(child.id(), Duration::from_secs(1));
    tokio::time::sleep(args.duration).await;
    let usage = sampler.finish();
    let _ = child.kill();
    let _ = child.wait();
    let stored = acks.acked("bench/edge");
    let log = std::fs::read_to_string(dir.path().join("agent.log")).unwrap_or_default();
    if usage.samples.len() < 2 {
        bail!("the agent exited early; its log:\n{log}");
    }
    let warmup = (args.duration / 4).min(Duration::from_secs(30));
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let collector_bin = sibling("outpost-collector").unwrap_or_default();
    let mut t = Table::new(format!(
        "agent-footprint: {} checks every {:?}, sampled {:?} (steady = after {:?})",
        args.checks, args.interval, args.duration, warmup
    ));
    t.row(
        "agent binary (release, stripped)",
        mib(size(&agent_bin)),
        agent_bin.display().to_string(),
    );
    t.row(
        "collector binary, for comparison",
        mib(size(&collector_bin)),
        "same profile",
    );
    t.row("peak RSS (VmHWM)", mib(usage.peak_rss()), "");
    t.row("steady RSS (mean VmRSS)", mib(usage.steady_rss(warmup)), "");
    t.row(
        "CPU",
        format!("{:.2} % of one core", usage.cpu_pct(warmup)),
        "utime + stime",
    );
    t.row(
        "context switches",
        format!("{:.1} /s", usage.switches_per_s(warmup)),
        "voluntary + involuntary, all threads (wakeups proxy)",
    );
    t.row(
        "records acked by the collector",
        stored.to_string(),
        "during the run",
    );
    let warnings = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .count();
    t.row("agent log warnings/errors", warnings.to_string(), "");
    t.print();
    drop(central);
    Ok(())
}

/// A binary beside this one (`target/release/NAME` when the bench runs from there).
fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating outpost-bench")?;
    Ok(exe
        .parent()
        .context("outpost-bench has a folder")?
        .join(name))
}

/// The agent config: `checks` checks cycling through [`MIX`], all at `interval`.
async fn agent_config(
    args: &FootprintArgs,
    dir: &Path,
    broker_port: u16,
) -> anyhow::Result<String> {
    let tcp = server::tcp_listener().await?;
    let web = server::web_page().await?;
    let backup = dir.join("backup");
    std::fs::create_dir_all(&backup).context("backup folder")?;
    std::fs::write(backup.join("nightly.tar.gz"), vec![0u8; 4096]).context("backup file")?;
    let kinds: Vec<&str> = MIX
        .iter()
        .flat_map(|(kind, share)| std::iter::repeat_n(*kind, *share))
        .collect();
    let interval = format!("{}s", args.interval.as_secs().max(1));
    let mut text = format!(
        "site = \"bench\"\nagent = \"edge\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:{broker_port}\"\n\
         [local]\nlisten = \"127.0.0.1:{}\"\n[outbox]\ndir = \"{}\"\n",
        free_port(),
        dir.join("outbox").display()
    );
    for i in 0..args.checks {
        let kind = kinds[i % kinds.len()];
        let _ = write!(
            text,
            "\n[[check]]\nid = \"{kind}-{i}\"\nkind = \"{kind}\"\ninterval = \"{interval}\"\n"
        );
        let _ = match kind {
            "tcp" => writeln!(text, "target = \"{tcp}\""),
            "http" => writeln!(text, "url = \"http://{web}/\"\nexpect_body = \"ready\""),
            "ping" => writeln!(text, "target = \"127.0.0.1\"\ncount = 3"),
            "resources" => writeln!(text, "disk_path = \"{}\"", dir.display()),
            "backup" => writeln!(
                text,
                "path = \"{}\"\npattern = \"*.tar.gz\"\nmax_age = \"26h\"",
                backup.display()
            ),
            "heartbeat" => writeln!(text, "period = \"1h\"\ngrace = \"10m\""),
            "checklist" => writeln!(text, "due = \"18:00\"\ngrace = \"30m\""),
            _ => Ok(()),
        };
    }
    Ok(text)
}
