//! The site report for IT managers: per site over a period, availability, incidents, who fixed
//! them, time to repair, checklists and backups on time. Computed from stored history (pure).

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Write,
};

use outpost_shared::{AgentId, CheckId, EscalationKind, FixedBy, SiteId, Timestamp};
use serde::Serialize;

use crate::{engine::Escalation, store::StatusCounts};

/// What the report is computed from, for one site.
#[derive(Debug, Default)]
pub struct SiteHistory {
    /// Escalations opened in the period or still open in it (historical ones included: they
    /// are incidents too).
    pub escalations: Vec<Escalation>,
    /// Hourly status counts `(agent, check, hour, counts)`.
    pub hourly: Vec<(AgentId, CheckId, Timestamp, StatusCounts)>,
    /// Check kinds by `(agent, check)` (from births).
    pub kinds: HashMap<(AgentId, CheckId), String>,
    /// Agents of the site.
    pub agents: usize,
}

/// Availability of one check over the period.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CheckAvailability {
    /// Agent.
    pub agent: AgentId,
    /// Check.
    pub check: CheckId,
    /// Share of results that were ok or warn (0..=1).
    pub availability: f64,
    /// Results counted.
    pub results: u64,
}

/// One site's figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SiteReport {
    /// The site.
    pub site: SiteId,
    /// Share of the period the site's agents were reachable (0..=1).
    pub link_availability: f64,
    /// Per check.
    pub checks: Vec<CheckAvailability>,
    /// Escalations opened in the period, or opened before and still open in it.
    pub incidents: usize,
    /// Fixed inside the site team's window.
    pub fixed_by_site_team: usize,
    /// Reached IT.
    pub escalated_to_it: usize,
    /// Median time to repair, seconds (resolved incidents).
    pub repair_median_s: Option<u64>,
    /// 90th percentile time to repair, seconds.
    pub repair_p90_s: Option<u64>,
    /// Share of checklist results that were ok (done on time).
    pub checklists_on_time: Option<f64>,
    /// Share of backup results that were ok (fresh).
    pub backups_on_time: Option<f64>,
    /// Higher needs more attention.
    pub attention: f64,
}

/// The fleet's figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FleetSummary {
    /// Sites in the report.
    pub sites: usize,
    /// Incidents over all sites.
    pub incidents: usize,
    /// Fixed by site teams.
    pub fixed_by_site_team: usize,
    /// Reached IT.
    pub escalated_to_it: usize,
    /// Share fixed by site teams (of resolved incidents that someone fixed).
    pub site_team_share: Option<f64>,
    /// Median time to repair, seconds.
    pub repair_median_s: Option<u64>,
    /// 90th percentile time to repair, seconds.
    pub repair_p90_s: Option<u64>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// Period start.
    pub since: Timestamp,
    /// Period end.
    pub until: Timestamp,
    /// Fleet summary.
    pub fleet: FleetSummary,
    /// Sites, those needing attention first.
    pub sites: Vec<SiteReport>,
}

/// Nearest-rank percentile of sorted values (`p` in 0..=100).
fn percentile(sorted: &[u64], p: u64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as u64).div_ceil(100).max(1);
    sorted.get(rank as usize - 1).copied()
}

fn repair_times(escalations: &[&Escalation]) -> Vec<u64> {
    let mut times: Vec<u64> = escalations
        .iter()
        .filter_map(|e| {
            let end = e.resolved_at?;
            u64::try_from(end.duration_since(e.opened_at).as_secs()).ok()
        })
        .collect();
    times.sort_unstable();
    times
}

fn share(counts: &StatusCounts) -> (u64, u64) {
    let total = counts.ok + counts.warn + counts.fail + counts.unknown;
    (counts.ok + counts.warn, total)
}

/// Computes one site's figures over `[since, until]`.
pub fn site_report(
    site: &SiteId,
    history: &SiteHistory,
    since: Timestamp,
    until: Timestamp,
) -> SiteReport {
    let period = until.duration_since(since).as_secs_f64().max(1.0);
    let mut per_check: BTreeMap<(AgentId, CheckId), (u64, u64)> = BTreeMap::new();
    let (mut checklist, mut backup) = ((0u64, 0u64), (0u64, 0u64));
    for (agent, check, _, counts) in &history.hourly {
        let (good, total) = share(counts);
        let entry = per_check.entry((agent.clone(), check.clone())).or_default();
        entry.0 += good;
        entry.1 += total;
        match history
            .kinds
            .get(&(agent.clone(), check.clone()))
            .map(String::as_str)
        {
            Some("checklist") => {
                checklist.0 += counts.ok;
                checklist.1 += total;
            }
            Some("backup") => {
                backup.0 += counts.ok;
                backup.1 += total;
            }
            _ => {}
        }
    }
    let incidents: Vec<&Escalation> = history.escalations.iter().collect();
    let offline_s: f64 = incidents
        .iter()
        .filter(|e| e.kind == EscalationKind::AgentOffline)
        .map(|e| {
            let start = e.opened_at.max(since);
            let end = e.resolved_at.unwrap_or(until).min(until);
            end.duration_since(start).as_secs_f64().max(0.0)
        })
        .sum();
    let agents = history.agents.max(1) as f64;
    let link_availability = (1.0 - offline_s / (period * agents)).clamp(0.0, 1.0);
    let fixed_by_site_team = incidents
        .iter()
        .filter(|e| e.fixed_by == Some(FixedBy::SiteTeam))
        .count();
    let escalated_to_it = incidents
        .iter()
        .filter(|e| e.escalated_at.is_some())
        .count();
    let times = repair_times(&incidents);
    let ratio = |(good, total): (u64, u64)| (total > 0).then(|| good as f64 / total as f64);
    let checks: Vec<CheckAvailability> = per_check
        .into_iter()
        .map(|((agent, check), (good, total))| CheckAvailability {
            agent,
            check,
            availability: ratio((good, total)).unwrap_or(1.0),
            results: total,
        })
        .collect();
    let worst_check = checks
        .iter()
        .map(|c| c.availability)
        .fold(1.0_f64, f64::min);
    SiteReport {
        site: site.clone(),
        link_availability,
        incidents: incidents.len(),
        fixed_by_site_team,
        escalated_to_it,
        repair_median_s: percentile(&times, 50),
        repair_p90_s: percentile(&times, 90),
        checklists_on_time: ratio(checklist),
        backups_on_time: ratio(backup),
        attention: escalated_to_it as f64 * 3.0
            + incidents.len() as f64
            + (1.0 - link_availability) * 100.0
            + (1.0 - worst_check) * 50.0,
        checks,
    }
}

/// Computes the report from per-site history.
pub fn report(
    histories: &BTreeMap<SiteId, SiteHistory>,
    since: Timestamp,
    until: Timestamp,
) -> Report {
    let mut sites: Vec<SiteReport> = histories
        .iter()
        .map(|(site, h)| site_report(site, h, since, until))
        .collect();
    sites.sort_by(|a, b| {
        b.attention
            .total_cmp(&a.attention)
            .then_with(|| a.site.cmp(&b.site))
    });
    let all: Vec<&Escalation> = histories
        .values()
        .flat_map(|h| h.escalations.iter())
        .collect();
    let times = repair_times(&all);
    let fixed_by_site_team: usize = sites.iter().map(|s| s.fixed_by_site_team).sum();
    let fixed_by_it = all
        .iter()
        .filter(|e| e.fixed_by == Some(FixedBy::It))
        .count();
    Report {
        since,
        until,
        fleet: FleetSummary {
            sites: sites.len(),
            incidents: sites.iter().map(|s| s.incidents).sum(),
            fixed_by_site_team,
            escalated_to_it: sites.iter().map(|s| s.escalated_to_it).sum(),
            site_team_share: (fixed_by_site_team + fixed_by_it > 0)
                .then(|| fixed_by_site_team as f64 / (fixed_by_site_team + fixed_by_it) as f64),
            repair_median_s: percentile(&times, 50),
            repair_p90_s: percentile(&times, 90),
        },
        sites,
    }
}

/// The report as CSV, one row per site.
pub fn to_csv(report: &Report) -> String {
    let mut out = String::from(
        "site,link_availability,incidents,fixed_by_site_team,escalated_to_it,repair_median_s,repair_p90_s,checklists_on_time,backups_on_time,attention\n",
    );
    let opt_u = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    let opt_f = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_default();
    for s in &report.sites {
        let _ = writeln!(
            out,
            "{},{:.4},{},{},{},{},{},{},{},{:.1}",
            s.site,
            s.link_availability,
            s.incidents,
            s.fixed_by_site_team,
            s.escalated_to_it,
            opt_u(s.repair_median_s),
            opt_u(s.repair_p90_s),
            opt_f(s.checklists_on_time),
            opt_f(s.backups_on_time),
            s.attention
        );
    }
    out
}

#[cfg(test)]
mod tests;
