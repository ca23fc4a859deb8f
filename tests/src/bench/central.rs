//! The release collector under test: started with a generated config against the bench's
//! broker, found by pid for sampling, and read through its `/metrics`.

use anyhow::Context;

use crate::{CollectorProcess, TempDb};

/// Which store the collector writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// A SQLite file in the collector's temp folder.
    Sqlite,
    /// A fresh database on the local PostgreSQL (127.0.0.1:5432).
    Postgres,
}

/// A running collector and what it needs to live (its PostgreSQL database).
pub struct Central {
    /// The process.
    pub process: CollectorProcess,
    /// Its pid, for `/proc` sampling.
    pub pid: u32,
    _db: Option<TempDb>,
}

impl Central {
    /// Starts the collector against the broker on `broker_port`; `extra` is appended to the
    /// config (notifiers, escalation settings).
    pub fn start(broker_port: u16, store: StoreKind, extra: &str) -> anyhow::Result<Self> {
        let db = match store {
            StoreKind::Sqlite => None,
            StoreKind::Postgres => Some(TempDb::create("outpost_bench")),
        };
        let store_url = db
            .as_ref()
            .map_or_else(|| "sqlite://{dir}/outpost.db".to_owned(), TempDb::url);
        let config = format!(
            "[mqtt]\nurl = \"mqtt://127.0.0.1:{broker_port}\"\n[store]\nurl = \"{store_url}\"\n\
             [http]\nlisten = \"{{http}}\"\n[escalation]\nreminder = \"0s\"\n{extra}"
        );
        let process = CollectorProcess::start(&config);
        let needle = process.dir().join("collector.toml").display().to_string();
        let pid = super::proc::find_pid(&needle)
            .with_context(|| format!("no process runs with {needle}"))?;
        Ok(Self {
            process,
            pid,
            _db: db,
        })
    }

    /// The collector's `/metrics` text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        reqwest::get(format!("{}/metrics", self.process.url()))
            .await
            .context("GET /metrics")?
            .text()
            .await
            .context("reading /metrics")
    }
}

impl Central {
    /// Waits until the collector has stored `records` new records (its own counter); returns
    /// when it saw so. Independent of ack delivery, which a large fleet can outrun.
    pub async fn wait_stored(
        &self,
        records: u64,
        timeout: std::time::Duration,
    ) -> anyhow::Result<std::time::Instant> {
        let deadline = std::time::Instant::now() + timeout;
        let mut stored = 0.0;
        while std::time::Instant::now() < deadline {
            if let Ok(text) = self.metrics().await {
                stored = metric(&text, "outpost_collector_records_stored_total").unwrap_or(0.0);
                if stored >= records as f64 {
                    return Ok(std::time::Instant::now());
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        anyhow::bail!("the collector stored {stored} of {records} records within {timeout:?}")
    }
}

/// The value of an unlabelled metric line `name value` in Prometheus text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Where the writer's time went: store batches, their mean size and mean commit time.
pub fn store_summary(text: &str) -> Option<(f64, f64, f64)> {
    let batches = metric(text, "outpost_collector_store_batch_seconds_count")?;
    let seconds = metric(text, "outpost_collector_store_batch_seconds_sum")?;
    let stored = metric(text, "outpost_collector_records_stored_total")?;
    Some((
        batches,
        stored / batches.max(1.0),
        seconds / batches.max(1.0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_unlabelled_metrics() {
        let text = "# HELP x\nfoo_total 12\nfoo_total_other 3\nbar_sum 1.5\n";
        assert_eq!(metric(text, "foo_total"), Some(12.0));
        assert_eq!(metric(text, "bar_sum"), Some(1.5));
        assert_eq!(metric(text, "baz"), None);
    }
}
