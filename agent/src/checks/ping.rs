//! `ping`: ICMP echo to a router or host (IPv4 and IPv6): loss, round trip, jitter.

use std::{net::IpAddr, sync::Arc, time::Duration};

use outpost_shared::{Status, threshold::Limits, threshold::worst};
use serde::Deserialize;
use surge_ping::{Client, Config, ICMP, PingIdentifier, PingSequence, SurgeError};

use super::{Check, CheckCommon, CheckFuture, Outcome, RunContext, SettingError};

/// The message when raw ICMP sockets are not allowed.
pub const NO_ICMP_PERMISSION: &str = "Cannot send ICMP: the agent lacks CAP_NET_RAW. Run it as \
    the outpost service (it grants this) or `setcap cap_net_raw+ep /usr/bin/outpost-agent`, or \
    allow unprivileged ping with sysctl net.ipv4.ping_group_range.";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    target: String,
    #[serde(default = "default_count")]
    count: u16,
    warn_loss_pct: Option<f64>,
    fail_loss_pct: Option<f64>,
    warn_rtt_ms: Option<f64>,
    fail_rtt_ms: Option<f64>,
}

const fn default_count() -> u16 {
    5
}

struct Ping {
    common: CheckCommon,
    target: String,
    count: u16,
    loss: Limits,
    rtt: Limits,
}

pub(super) fn build(
    common: CheckCommon,
    table: toml::Table,
) -> Result<Arc<dyn Check>, SettingError> {
    let s: Settings = super::settings(table)?;
    if s.target.trim().is_empty() {
        return Err(SettingError::key(
            "target",
            "target is empty; expected a host name or IP address, like \"192.168.1.1\"",
        ));
    }
    if s.count == 0 || s.count > 100 {
        return Err(SettingError::key(
            "count",
            format!("count is {}; expected 1 to 100 pings", s.count),
        ));
    }
    // Defaults: any loss of 20 % or more needs a look; total loss is a failure.
    let loss = Limits::new(
        s.warn_loss_pct.or(Some(20.0)),
        s.fail_loss_pct.or(Some(100.0)),
    );
    let rtt = Limits::new(s.warn_rtt_ms, s.fail_rtt_ms);
    super::limits_in_order("loss_pct", loss)?;
    super::limits_in_order("rtt_ms", rtt)?;
    Ok(Arc::new(Ping {
        common,
        target: s.target,
        count: s.count,
        loss,
        rtt,
    }))
}

/// Round trips of one run, `None` for a lost probe.
#[derive(Debug, Clone, PartialEq)]
pub struct PingStats {
    /// Probes sent.
    pub sent: usize,
    /// Replies received.
    pub received: usize,
    /// Loss in percent.
    pub loss_pct: f64,
    /// Round trips in ms, (min, avg, max), when any reply came.
    pub rtt: Option<(f64, f64, f64)>,
    /// Mean absolute difference of consecutive round trips, in ms.
    pub jitter_ms: f64,
}

impl PingStats {
    /// Summarises the probes.
    pub fn from_probes(probes: &[Option<Duration>]) -> Self {
        let rtts: Vec<f64> = probes
            .iter()
            .flatten()
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        let sent = probes.len();
        let received = rtts.len();
        let loss_pct = if sent == 0 {
            100.0
        } else {
            (sent - received) as f64 * 100.0 / sent as f64
        };
        let rtt = (!rtts.is_empty()).then(|| {
            let min = rtts.iter().copied().fold(f64::INFINITY, f64::min);
            let max = rtts.iter().copied().fold(0.0, f64::max);
            (min, rtts.iter().sum::<f64>() / received as f64, max)
        });
        let jitter_ms = if rtts.len() < 2 {
            0.0
        } else {
            rtts.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / (rtts.len() - 1) as f64
        };
        Self {
            sent,
            received,
            loss_pct,
            rtt,
            jitter_ms,
        }
    }
}

/// When each probe of one run is sent and how long it may wait for its reply.
///
/// Probes go out `spacing` apart, like `ping -i 0.2`, and wait concurrently, so a run of lost
/// probes ends by the deadline instead of adding up: the run finishes inside the check's
/// `timeout` with a loss figure, never cut off as "took too long".
#[derive(Debug, Clone, Copy, PartialEq)]
struct ProbePlan {
    spacing: Duration,
    wait: Duration,
}

impl ProbePlan {
    /// Longest wait for one reply, as `ping -W 2`.
    const MAX_WAIT: Duration = Duration::from_secs(2);
    const MAX_SPACING: Duration = Duration::from_millis(200);

    fn new(budget: Duration, count: u16) -> Self {
        let count = u32::from(count.max(1));
        // Sending takes at most half the budget; the rest is for the last probe's reply.
        let spacing = (budget / (2 * count)).min(Self::MAX_SPACING);
        let wait = budget
            .saturating_sub(spacing * (count - 1))
            .min(Self::MAX_WAIT);
        Self { spacing, wait }
    }
}

impl Ping {
    async fn probe(&self) -> Result<Vec<Option<Duration>>, Outcome> {
        let ip = resolve(&self.target).await?;
        let kind = if ip.is_ipv4() { ICMP::V4 } else { ICMP::V6 };
        let client = Client::new(&Config::builder().kind(kind).build()).map_err(|err| {
            if err.kind() == std::io::ErrorKind::PermissionDenied {
                Outcome::new(Status::Unknown, NO_ICMP_PERMISSION)
            } else {
                Outcome::new(Status::Unknown, format!("Cannot send ICMP: {err}."))
            }
        })?;
        let plan = ProbePlan::new(self.common.budget(), self.count);
        let ident = PingIdentifier(rand::random());
        let start = tokio::time::Instant::now();
        let mut running = tokio::task::JoinSet::new();
        for seq in 0..self.count {
            // One pinger per probe: replies are matched by (host, identifier, sequence).
            let mut pinger = client.pinger(ip, ident).await;
            pinger.timeout(plan.wait);
            let send_at = start + plan.spacing * u32::from(seq);
            running.spawn(async move {
                tokio::time::sleep_until(send_at).await;
                (seq, pinger.ping(PingSequence(seq), &[0u8; 56]).await)
            });
        }
        let mut probes = vec![None; usize::from(self.count)];
        while let Some(joined) = running.join_next().await {
            let Ok((seq, reply)) = joined else {
                continue; // a probe task that panicked counts as lost
            };
            match reply {
                Ok((_packet, rtt)) => probes[usize::from(seq)] = Some(rtt),
                Err(SurgeError::IOError(err))
                    if err.kind() == std::io::ErrorKind::PermissionDenied =>
                {
                    return Err(Outcome::new(Status::Unknown, NO_ICMP_PERMISSION));
                }
                Err(SurgeError::IOError(err)) => {
                    // "Network is unreachable": no route; the probe is lost.
                    tracing::debug!(target = %self.target, error = %err, "ping send failed");
                }
                // A timeout, or a reply we could not use: the probe is lost.
                Err(_) => {}
            }
        }
        Ok(probes)
    }

    fn judge(&self, stats: &PingStats) -> Outcome {
        let title = &self.common.title;
        let loss_status = self.loss.grade(stats.loss_pct);
        let rtt_status = stats
            .rtt
            .map_or(Status::Ok, |(_, avg, _)| self.rtt.grade(avg));
        let status = worst([loss_status, rtt_status]);
        let lost = stats.sent - stats.received;
        let summary = match stats.rtt {
            None => format!("{title} did not answer {lost} of {} pings.", stats.sent),
            Some(_) if lost > 0 => format!(
                "{title} did not answer {lost} of {} pings; the connection is unreliable.",
                stats.sent
            ),
            Some((_, avg, _)) if rtt_status != Status::Ok => {
                format!("{title} answers, but slowly: {avg:.0} ms on average.")
            }
            Some((_, avg, _)) => format!(
                "{title} answered all {} pings in {avg:.1} ms on average.",
                stats.sent
            ),
        };
        let mut outcome = Outcome::new(status, summary)
            .metric("sent", stats.sent as f64)
            .metric("received", stats.received as f64)
            .metric("loss_pct", stats.loss_pct)
            .metric("jitter_ms", stats.jitter_ms);
        if let Some((min, avg, max)) = stats.rtt {
            outcome = outcome
                .metric("rtt_min_ms", min)
                .metric("rtt_avg_ms", avg)
                .metric("rtt_max_ms", max);
        }
        outcome
    }
}

async fn resolve(target: &str) -> Result<IpAddr, Outcome> {
    if let Ok(ip) = target.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(ip);
    }
    let mut addrs = tokio::net::lookup_host((target, 0)).await.map_err(|err| {
        Outcome::new(
            Status::Fail,
            format!("The name {target} could not be found ({err})."),
        )
    })?;
    addrs
        .next()
        .map(|a| a.ip())
        .ok_or_else(|| Outcome::new(Status::Fail, format!("The name {target} has no address.")))
}

impl Check for Ping {
    fn common(&self) -> &CheckCommon {
        &self.common
    }

    fn thresholds(&self) -> std::collections::BTreeMap<String, f64> {
        let mut map = std::collections::BTreeMap::new();
        super::put_limits(&mut map, "loss_pct", self.loss);
        super::put_limits(&mut map, "rtt_ms", self.rtt);
        map.insert("count".into(), f64::from(self.count));
        map
    }

    fn run<'a>(&'a self, _ctx: &'a RunContext) -> CheckFuture<'a> {
        Box::pin(async move {
            match self.probe().await {
                Ok(probes) => self.judge(&PingStats::from_probes(&probes)),
                Err(outcome) => outcome,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_from_probes() {
        let ms = |n| Some(Duration::from_millis(n));
        let s = PingStats::from_probes(&[ms(10), None, ms(14), ms(12)]);
        assert_eq!((s.sent, s.received), (4, 3));
        assert!((s.loss_pct - 25.0).abs() < 1e-9);
        assert_eq!(s.rtt, Some((10.0, 12.0, 14.0)));
        // |14-10| + |12-14| over 2 differences
        assert!((s.jitter_ms - 3.0).abs() < 1e-9);
        let none = PingStats::from_probes(&[None, None]);
        assert_eq!((none.loss_pct, none.rtt), (100.0, None));
    }

    #[test]
    fn every_probe_plan_ends_inside_the_budget() {
        let (ms, us) = (Duration::from_millis, Duration::from_micros);
        // (budget, count) -> (spacing, wait)
        let table = [
            (ms(9_500), 5, ms(200), ms(2_000)),
            (ms(900), 2, ms(200), ms(700)),
            (ms(1_800), 5, ms(180), ms(1_080)),
            (ms(900), 100, us(4_500), us(454_500)),
            (ms(450), 1, ms(200), ms(450)),
        ];
        for (budget, count, spacing, wait) in table {
            let plan = ProbePlan::new(budget, count);
            assert_eq!(plan, ProbePlan { spacing, wait }, "{budget:?} x {count}");
            let last_reply_by = plan.spacing * u32::from(count - 1) + plan.wait;
            assert!(
                last_reply_by <= budget,
                "{budget:?} x {count}: {last_reply_by:?}"
            );
        }
    }
}
