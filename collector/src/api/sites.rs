//! Sites: the fleet overview (worst first), one site in detail, and raw results.

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::{Path, Query, State},
};
use outpost_shared::{AgentId, CheckId, EscalationState, SiteId, Status, Timestamp};
use serde::{Deserialize, Serialize};

use super::{
    ApiState,
    error::{ApiError, blocking},
    escalations::{self, EscalationOut, parse_since},
};
use crate::store::{ResultQuery, StoredResult};

/// One agent in the overview.
#[derive(Debug, Serialize)]
pub struct AgentSummary {
    agent: AgentId,
    online: bool,
    last_seen: Option<Timestamp>,
    version: Option<String>,
    planned_work_until: Option<Timestamp>,
}

/// One site in the overview.
#[derive(Debug, Serialize)]
pub struct SiteSummary {
    site: SiteId,
    /// Worst newest status over its checks.
    worst: Status,
    agents_online: usize,
    agents_total: usize,
    agents: Vec<AgentSummary>,
    /// Open escalations, newest first.
    escalations: Vec<EscalationOut>,
    /// Checks not ok right now.
    problems: usize,
}

impl SiteSummary {
    /// Sort key: escalated/acknowledged with IT first, then local windows, offline agents, worst status.
    fn rank(&self) -> (usize, usize, usize, u8) {
        let with_it = self
            .escalations
            .iter()
            .filter(|e| matches!(e.escalation.state, EscalationState::Escalated))
            .count();
        let other = self.escalations.len() - with_it;
        (
            with_it,
            other,
            self.agents_total - self.agents_online,
            self.worst.severity(),
        )
    }
}

fn summarize(
    state: &ApiState,
    agents: Vec<crate::store::StoredAgent>,
    latest: &[StoredResult],
) -> Vec<SiteSummary> {
    let engine = state.engine();
    let mut sites: BTreeMap<SiteId, SiteSummary> = BTreeMap::new();
    for stored in agents {
        let info = engine.agent(&stored.site, &stored.agent);
        let entry = sites
            .entry(stored.site.clone())
            .or_insert_with(|| SiteSummary {
                site: stored.site.clone(),
                worst: Status::Ok,
                agents_online: 0,
                agents_total: 0,
                agents: Vec::new(),
                escalations: Vec::new(),
                problems: 0,
            });
        let online = info.map_or(stored.online, |i| i.online);
        entry.agents_total += 1;
        entry.agents_online += usize::from(online);
        entry.agents.push(AgentSummary {
            agent: stored.agent.clone(),
            online,
            last_seen: info.and_then(|i| i.last_seen).or(stored.last_seen),
            version: stored.birth.as_ref().map(|b| b.version.clone()),
            planned_work_until: info.and_then(|i| i.planned_until),
        });
    }
    // A site that has not reported a single result is not known to be fine.
    let reporting: std::collections::BTreeSet<&SiteId> = latest.iter().map(|r| &r.site).collect();
    for (id, site) in &mut sites {
        if !reporting.contains(id) {
            site.worst = Status::Unknown;
        }
    }
    for r in latest {
        if let Some(site) = sites.get_mut(&r.site) {
            if r.result.status.severity() > site.worst.severity() {
                site.worst = r.result.status;
            }
            site.problems += usize::from(r.result.status != Status::Ok);
        }
    }
    for e in engine
        .escalations()
        .filter(|e| e.is_open() && !e.historical)
    {
        if let Some(site) = sites.get_mut(&e.site) {
            site.escalations
                .push(escalations::titled(&engine, e.clone()));
        }
    }
    let mut list: Vec<SiteSummary> = sites.into_values().collect();
    for s in &mut list {
        s.escalations
            .sort_by_key(|e| std::cmp::Reverse(e.escalation.id));
    }
    list.sort_by(|a, b| b.rank().cmp(&a.rank()).then_with(|| a.site.cmp(&b.site)));
    list
}

pub async fn list(State(state): State<ApiState>) -> Result<Json<Vec<SiteSummary>>, ApiError> {
    let store = state.store.clone();
    let (agents, latest) = blocking(move || {
        Ok::<_, crate::store::StoreError>((store.agents()?, store.latest_results(None, None)?))
    })
    .await?;
    Ok(Json(summarize(&state, agents, &latest)))
}

/// One check of one agent, now and over the last 24 hours.
#[derive(Debug, Serialize)]
pub struct CheckOut {
    agent: AgentId,
    check: CheckId,
    title: String,
    kind: String,
    status: Option<Status>,
    summary: Option<String>,
    ts: Option<Timestamp>,
    metrics: BTreeMap<String, f64>,
    failing: bool,
    /// 24 entries, oldest first: the worst status of each hour (`null` = no data).
    strip: Vec<Option<Status>>,
}

/// One agent in detail.
#[derive(Debug, Serialize)]
pub struct AgentOut {
    agent: AgentId,
    online: bool,
    last_seen: Option<Timestamp>,
    birth: Option<outpost_shared::Birth>,
    planned_work_until: Option<Timestamp>,
    /// Planned work the site team declared on single checks: check → until.
    planned_work_checks: std::collections::BTreeMap<outpost_shared::CheckId, Timestamp>,
}

/// `GET /api/v1/sites/{site}`.
#[derive(Debug, Serialize)]
pub struct SiteDetail {
    site: SiteId,
    agents: Vec<AgentOut>,
    checks: Vec<CheckOut>,
    escalations: Vec<EscalationOut>,
}

pub async fn detail(
    State(state): State<ApiState>,
    Path(site): Path<String>,
) -> Result<Json<SiteDetail>, ApiError> {
    let site = SiteId::new(site).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let store = state.store.clone();
    let s = site.clone();
    let now = Timestamp::now();
    let day_ago = crate::engine::sub(now, std::time::Duration::from_secs(86_400));
    let (agents, latest, hourly) = blocking(move || {
        let agents: Vec<_> = store
            .agents()?
            .into_iter()
            .filter(|a| a.site == s)
            .collect();
        Ok::<_, crate::store::StoreError>((
            agents,
            store.latest_results(Some(&s), None)?,
            store.hourly_counts(&s, day_ago)?,
        ))
    })
    .await?;
    if agents.is_empty() {
        return Err(ApiError::not_found(format!(
            "site {site} has never reported"
        )));
    }
    let engine = state.engine();
    let mut checks = Vec::new();
    for stored in &agents {
        let catalogue = stored
            .birth
            .as_ref()
            .map(|b| b.checks.clone())
            .unwrap_or_default();
        for spec in catalogue {
            let last = latest
                .iter()
                .find(|r| r.agent == stored.agent && r.result.check == spec.id);
            let key = crate::engine::CheckKey::new(&site, &stored.agent, &spec.id);
            let mut strip = vec![None; 24];
            for (agent, check, hour, counts) in &hourly {
                if agent != &stored.agent || check != &spec.id {
                    continue;
                }
                let age_h = now.duration_since(*hour).as_secs() / 3600;
                if let Ok(age) = usize::try_from(age_h)
                    && age < 24
                {
                    let worst = if counts.fail > 0 {
                        Status::Fail
                    } else if counts.unknown > 0 {
                        Status::Unknown
                    } else if counts.warn > 0 {
                        Status::Warn
                    } else {
                        Status::Ok
                    };
                    strip[23 - age] = Some(worst);
                }
            }
            checks.push(CheckOut {
                agent: stored.agent.clone(),
                title: spec.title.clone(),
                kind: spec.kind.clone(),
                status: last.map(|r| r.result.status),
                summary: last.map(|r| r.result.summary.clone()),
                ts: last.map(|r| r.ts),
                metrics: last.map(|r| r.result.metrics.clone()).unwrap_or_default(),
                failing: engine.check(&key).is_some_and(|c| c.failing),
                check: spec.id,
                strip,
            });
        }
    }
    let agents_out = agents
        .into_iter()
        .map(|a| {
            let info = engine.agent(&a.site, &a.agent);
            AgentOut {
                online: info.map_or(a.online, |i| i.online),
                last_seen: info.and_then(|i| i.last_seen).or(a.last_seen),
                planned_work_until: info.and_then(|i| i.planned_until),
                planned_work_checks: info.map(|i| i.planned_checks.clone()).unwrap_or_default(),
                agent: a.agent,
                birth: a.birth,
            }
        })
        .collect();
    let mut escalations: Vec<EscalationOut> = engine
        .escalations()
        .filter(|e| e.site == site && !e.historical)
        .cloned()
        .map(|e| escalations::titled(&engine, e))
        .collect();
    escalations.sort_by_key(|e| std::cmp::Reverse(e.escalation.id));
    Ok(Json(SiteDetail {
        site,
        agents: agents_out,
        checks,
        escalations,
    }))
}

/// `GET /api/v1/results` filters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultsQuery {
    site: Option<String>,
    agent: Option<String>,
    check: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
}

/// One stored result.
#[derive(Debug, Serialize)]
pub struct ResultOut {
    site: SiteId,
    agent: AgentId,
    epoch: u64,
    seq: u64,
    ts: Timestamp,
    #[serde(flatten)]
    result: outpost_shared::ResultRecord,
}

pub async fn results(
    State(state): State<ApiState>,
    Query(q): Query<ResultsQuery>,
) -> Result<Json<Vec<ResultOut>>, ApiError> {
    let bad = |e: outpost_shared::IdError| ApiError::bad_request(e.to_string());
    let query = ResultQuery {
        site: q.site.map(SiteId::new).transpose().map_err(bad)?,
        agent: q.agent.map(AgentId::new).transpose().map_err(bad)?,
        check: q.check.map(CheckId::new).transpose().map_err(bad)?,
        since: q
            .since
            .as_deref()
            .map(|s| parse_since(Some(s), std::time::Duration::ZERO))
            .transpose()?,
        limit: q.limit.unwrap_or(1000).min(10_000),
    };
    let store = state.store.clone();
    let rows = blocking(move || store.results(&query)).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| ResultOut {
                site: r.site,
                agent: r.agent,
                epoch: r.epoch,
                seq: r.seq,
                ts: r.ts,
                result: r.result,
            })
            .collect(),
    ))
}
