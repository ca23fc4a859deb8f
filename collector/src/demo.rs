//! `outpost-collector --demo`: the collector with its embedded defaults plus one agent in the
//! same process with sample checks. One check ("Label printer") fails and recovers on a timer,
//! so a first run shows the whole flow within two minutes: the site team's window on the site
//! page, IT called on the dashboard, then the recovery.

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::{app, config::Config};

/// How the printer behaves: working for `UP`, then unplugged for `DOWN`, again and again.
const UP: Duration = Duration::from_secs(20);
const DOWN: Duration = Duration::from_secs(60);

/// Runs the demo until `shutdown` is cancelled.
pub async fn run(mut config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    // The demo's agent lives in this process, so the broker may move aside when another one
    // (a system Mosquitto, say) already has the usual port.
    if std::net::TcpListener::bind(config.broker.listen).is_err() {
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free port for the demo's MQTT broker")?;
        tracing::info!(taken = %config.broker.listen, using = %free, "demo: the MQTT port is taken; the embedded broker uses another");
        config.broker.listen = free;
    }
    let data = Path::new("./outpost-data/demo");
    let backups = data.join("backups");
    std::fs::create_dir_all(&backups).with_context(|| format!("creating {}", backups.display()))?;
    std::fs::write(backups.join("nightly.tar.gz"), vec![0u8; 64 * 1024])
        .context("writing the demo backup file")?;

    let printer = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("opening the demo printer port")?;
    let printer_addr = printer.local_addr().context("demo printer address")?;
    tokio::spawn(flaky_printer(printer, shutdown.clone()));

    let agent_toml = agent_config(&config, data, &backups, printer_addr);
    let agent = outpost_agent::config::Config::parse(Path::new("(demo agent)"), &agent_toml)
        .map_err(|e| anyhow::anyhow!("the demo agent's config is wrong: {e}"))?;
    let local = agent.local.listen;
    let http = config.http.listen;
    let collector = tokio::spawn(app::run(config, shutdown.clone()));
    // The agent's publisher retries until the embedded broker listens.
    let agent_task = tokio::spawn(outpost_agent::runtime::run(
        Arc::new(agent),
        shutdown.clone(),
    ));
    tracing::info!(
        "demo running — dashboard for IT: http://{http}/ · site page for the plant: http://{local}/ · \
         the label printer goes offline every {}s and comes back after {}s",
        (UP + DOWN).as_secs(),
        DOWN.as_secs()
    );
    let result = collector.await.context("the collector task failed")?;
    shutdown.cancel();
    match agent_task.await {
        Ok(Err(e)) => tracing::warn!(error = %e, "the demo agent stopped"),
        Err(e) => tracing::warn!(error = %e, "the demo agent task failed"),
        Ok(Ok(())) => {}
    }
    result
}

/// Accepts connections while "plugged in", refuses them while "unplugged".
async fn flaky_printer(listener: tokio::net::TcpListener, stop: CancellationToken) {
    let Ok(addr) = listener.local_addr() else {
        return;
    };
    let mut listener = Some(listener);
    loop {
        let phase = if listener.is_some() { UP } else { DOWN };
        let deadline = tokio::time::sleep(phase);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = &mut deadline => break,
                accepted = async { listener.as_ref().expect("select arm only runs while plugged in").accept().await }, if listener.is_some() => {
                    drop(accepted);
                }
            }
        }
        listener = match listener.take() {
            Some(open) => {
                drop(open);
                tracing::info!("demo: the label printer was unplugged");
                None
            }
            None => match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => {
                    tracing::info!("demo: the label printer is back");
                    Some(l)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "demo: cannot reopen the printer port");
                    None
                }
            },
        };
    }
}

fn agent_config(
    config: &Config,
    data: &Path,
    backups: &Path,
    printer: std::net::SocketAddr,
) -> String {
    let broker = config.broker.listen;
    let http = config.http.listen;
    format!(
        r#"site = "demo-plant"
agent = "office-pc"

[mqtt]
url = "mqtt://{broker}"

[local]
listen = "127.0.0.1:9470"

[outbox]
dir = "{outbox}"
max_size = "16MB"
max_age = "1d"

[[check]]
id = "router"
kind = "ping"
title = "Internet router"
target = "127.0.0.1"
interval = "10s"
count = 3
local_window = "15m"
runbook = ["Look at the router's lights: is the power light on?", "Switch the router off, wait 30 seconds, switch it on."]

[[check]]
id = "label-printer"
kind = "tcp"
title = "Label printer on line 3"
target = "{printer}"
interval = "5s"
timeout = "2s"
fail_after = 3
recover_after = 2
local_window = "20s"
depends_on = ["router"]
runbook = ["Check that the printer's display is lit and shows READY.", "Check the blue network cable at the back is plugged in.", "Switch the printer off and on, then wait one minute."]

[[check]]
id = "head-office-web"
kind = "http"
title = "Head office web page"
url = "http://{http}/healthz"
interval = "15s"
depends_on = ["router"]

[[check]]
id = "backup"
kind = "backup"
title = "Nightly backup"
path = "{backups}"
pattern = "*.tar.gz"
max_age = "26h"
min_size = "1KB"
interval = "1m"

[[check]]
id = "disk"
kind = "resources"
title = "This computer's disk and memory"
disk_path = "/"
interval = "30s"

[[check]]
id = "uptime"
kind = "uptime"
title = "This computer"
interval = "1m"
"#,
        outbox = data.join("outbox").display(),
        backups = backups.display(),
    )
}
