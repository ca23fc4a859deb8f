//! `latency`: from publishing the record that crosses a check's threshold to the webhook call
//! arriving, under a background load of ordinary results.

use std::time::{Duration, Instant};

use anyhow::bail;
use outpost_shared::{Status, TopicKind};
use rumqttc::QoS;

use super::{
    central::{Central, StoreKind},
    load::Load,
    mqtt::{AckWatch, publish_all, publishers},
    server::Webhook,
    sim::SimAgent,
    table::{Table, thousands},
};
use crate::Broker;

/// What the `latency` scenario is asked to do.
#[derive(Debug, Clone)]
pub struct LatencyArgs {
    /// Escalations to time (one simulated agent each).
    pub escalations: usize,
    /// Pause between two threshold-crossing records.
    pub spacing: Duration,
    /// Background results per second.
    pub background_rate: f64,
    /// Where the collector stores.
    pub store: StoreKind,
}

/// Times `escalations` escalations and prints p50/p99.
pub async fn run(args: &LatencyArgs) -> anyhow::Result<()> {
    let broker = tokio::task::block_in_place(Broker::start);
    let port = broker.port();
    let hook = Webhook::start().await?;
    let extra = format!(
        "[[notifier]]\nkind = \"webhook\"\nurl = \"{}\"\n",
        hook.url()
    );
    let central = tokio::task::block_in_place(|| Central::start(port, args.store, &extra))?;
    let acks = AckWatch::start(port).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The agents that will fail: births with fail_after = 1 and no local window, then one ok
    // result each, acked, so the collector knows them before the clock starts.
    let client = publishers(port, "bench-latency", 1).await?.remove(0);
    let mut agents: Vec<SimAgent> = (0..args.escalations)
        .map(|i| {
            let mut a = SimAgent::new("lat", i);
            a.fail_after = 1;
            a
        })
        .collect();
    for a in &mut agents {
        let ok = a.results(&[("router", Status::Ok)], false);
        for (kind, payload, retain) in [
            (
                TopicKind::State,
                outpost_shared::encode(&outpost_shared::Presence::ONLINE),
                true,
            ),
            (TopicKind::Birth, a.birth(), true),
            (TopicKind::Records, ok, false),
        ] {
            client
                .publish(a.topic(kind), QoS::AtLeastOnce, retain, payload)
                .await?;
        }
    }
    let known: Vec<(String, u64)> = agents.iter().map(|a| (a.key(), a.last_seq())).collect();
    acks.wait_all(&known, Duration::from_secs(60)).await?;

    // Background: ordinary results from other agents for the whole measurement.
    let span = args.spacing.as_secs_f64() * args.escalations as f64 + 5.0;
    let background = Load {
        agents: 50,
        connections: 10,
        records_per_agent: ((args.background_rate * span) / 50.0).ceil() as usize,
        batch: 10,
        fail_pct: 0.0,
        historical: false,
        fail_after: 3,
    };
    let plan = background.plan("bg");
    let bg_clients = publishers(port, "bench-background", plan.records.len()).await?;
    publish_all(&bg_clients, plan.hello, 0.0).await?;
    let rate = args.background_rate;
    let bg = tokio::spawn(async move { publish_all(&bg_clients, plan.records, rate).await });

    let mut sent = Vec::with_capacity(agents.len());
    for a in &mut agents {
        let fail = a.results(&[("router", Status::Fail)], false);
        let at = Instant::now();
        client
            .publish(a.topic(TopicKind::Records), QoS::AtLeastOnce, false, fail)
            .await?;
        sent.push((format!("{}/{}/router", a.site, a.agent), at));
        tokio::time::sleep(args.spacing).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while hook.count() < sent.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bg.abort();
    let mut delays: Vec<Duration> = sent
        .iter()
        .filter_map(|(path, at)| {
            hook.arrived(path)
                .map(|got| got.saturating_duration_since(*at))
        })
        .collect();
    if delays.is_empty() {
        bail!(
            "no webhook call arrived; collector log:\n{}",
            central.process.log()
        );
    }
    delays.sort();
    let mut t = Table::new(format!(
        "latency: {} escalations (fail_after = 1, local_window = 0s), background {} rec/s, store {:?}",
        args.escalations,
        thousands(args.background_rate),
        args.store
    ));
    t.row(
        "webhook calls received",
        format!("{} of {}", delays.len(), sent.len()),
        "",
    );
    t.row(
        "p50",
        format!("{:.0} ms", pct(&delays, 50.0).as_secs_f64() * 1e3),
        "",
    );
    t.row(
        "p99",
        format!("{:.0} ms", pct(&delays, 99.0).as_secs_f64() * 1e3),
        "target < 1 s",
    );
    t.row(
        "max",
        format!("{:.0} ms", pct(&delays, 100.0).as_secs_f64() * 1e3),
        "",
    );
    t.print();
    drop(broker);
    Ok(())
}

/// The `p`-th percentile (nearest rank) of sorted `values`.
pub fn pct(values: &[Duration], p: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(pct(&v, 50.0), Duration::from_millis(50));
        assert_eq!(pct(&v, 99.0), Duration::from_millis(99));
        assert_eq!(pct(&v, 100.0), Duration::from_millis(100));
        assert_eq!(pct(&[], 50.0), Duration::ZERO);
    }
}
