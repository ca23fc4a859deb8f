//! `GET /api/v1/report?since=` (JSON) and `GET /api/v1/report.csv?since=`.

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::{Query, State},
    http::header,
    response::IntoResponse,
};
use outpost_shared::Timestamp;
use serde::Deserialize;

use super::{
    ApiState,
    error::{ApiError, blocking},
    escalations::parse_since,
};
use crate::report::{Report, SiteHistory, report, to_csv};

/// Report period.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// Start: RFC 3339, or a duration back from now ("7d"); default 7 days.
    since: Option<String>,
}

async fn build(state: &ApiState, q: &ReportQuery) -> Result<Report, ApiError> {
    let since = parse_since(
        q.since.as_deref(),
        std::time::Duration::from_secs(7 * 86_400),
    )?;
    let until = Timestamp::now();
    let log = state.log.clone();
    let store = state.store.clone();
    let histories = blocking(move || {
        let mut histories: BTreeMap<_, SiteHistory> = BTreeMap::new();
        for agent in store.agents().map_err(|e| e.to_string())? {
            let h = histories.entry(agent.site.clone()).or_default();
            h.agents += 1;
            for spec in agent.birth.iter().flat_map(|b| b.checks.iter()) {
                h.kinds
                    .insert((agent.agent.clone(), spec.id.clone()), spec.kind.clone());
            }
        }
        for (site, h) in &mut histories {
            h.hourly = store
                .hourly_counts(site, since)
                .map_err(|e| e.to_string())?;
        }
        for e in log.escalations_since(since).map_err(|e| e.to_string())? {
            if e.opened_at >= since || e.resolved_at.is_none_or(|r| r >= since) {
                histories
                    .entry(e.site.clone())
                    .or_default()
                    .escalations
                    .push(e);
            }
        }
        Ok::<_, String>(histories)
    })
    .await?;
    Ok(report(&histories, since, until))
}

pub async fn json(
    State(state): State<ApiState>,
    Query(q): Query<ReportQuery>,
) -> Result<Json<Report>, ApiError> {
    Ok(Json(build(&state, &q).await?))
}

pub async fn csv(
    State(state): State<ApiState>,
    Query(q): Query<ReportQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let report = build(&state, &q).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"outpost-report.csv\"",
            ),
        ],
        to_csv(&report),
    ))
}
