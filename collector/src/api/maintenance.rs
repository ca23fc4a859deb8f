//! Maintenance windows set by IT, and ending a site's planned work early.

use axum::{
    Json,
    extract::{Path, State},
};
use outpost_shared::{AgentId, CheckId, HumanDuration, SiteId, Timestamp};
use serde::Deserialize;
use tokio::sync::oneshot;

use super::{ApiState, error::ApiError, escalations::send, text_field};
use crate::{decide::Command, engine::Maintenance};

pub async fn list(State(state): State<ApiState>) -> Json<Vec<Maintenance>> {
    let now = Timestamp::now();
    let engine = state.engine();
    Json(
        engine
            .maintenance_windows()
            .filter(|m| m.ends_at > now)
            .cloned()
            .collect(),
    )
}

/// `POST /api/v1/maintenance` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    site: String,
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    check: Option<String>,
    #[serde(default)]
    starts_at: Option<Timestamp>,
    #[serde(default)]
    ends_at: Option<Timestamp>,
    /// Instead of `ends_at`: how long from the start ("2h").
    #[serde(default)]
    duration: Option<HumanDuration>,
    reason: String,
    by: String,
}

pub async fn create(
    State(state): State<ApiState>,
    body: Result<Json<CreateBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Maintenance>, ApiError> {
    let Json(b) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "{}; expected {{\"site\", \"agent\"?, \"check\"?, \"starts_at\"?, \"ends_at\" or \"duration\", \"reason\", \"by\"}}",
            e.body_text()
        ))
    })?;
    let bad = |e: outpost_shared::IdError| ApiError::bad_request(e.to_string());
    let starts_at = b.starts_at.unwrap_or_else(Timestamp::now);
    let ends_at = match (b.ends_at, b.duration) {
        (Some(end), None) => end,
        (None, Some(d)) => crate::engine::add(starts_at, d.get()),
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of `ends_at` (RFC 3339) or `duration` (\"2h\")",
            ));
        }
    };
    if ends_at <= starts_at {
        return Err(ApiError::bad_request("the window ends before it starts"));
    }
    let window = Maintenance {
        id: 0,
        site: SiteId::new(b.site).map_err(bad)?,
        agent: b.agent.map(AgentId::new).transpose().map_err(bad)?,
        check: b.check.map(CheckId::new).transpose().map_err(bad)?,
        starts_at,
        ends_at,
        reason: text_field("reason", &b.reason, 500)?,
        by: text_field("by", &b.by, 100)?,
    };
    let (reply, answer) = oneshot::channel();
    send(&state, Command::SetMaintenance { window, reply }).await?;
    Ok(Json(answer.await.map_err(|_| {
        ApiError::unavailable("the decision task stopped")
    })??))
}

pub async fn end(
    State(state): State<ApiState>,
    Path(id): Path<u64>,
) -> Result<Json<Maintenance>, ApiError> {
    let (reply, answer) = oneshot::channel();
    send(&state, Command::EndMaintenance { id, reply }).await?;
    Ok(Json(answer.await.map_err(|_| {
        ApiError::unavailable("the decision task stopped")
    })??))
}

pub async fn end_planned_work(
    State(state): State<ApiState>,
    Path((site, agent)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let bad = |e: outpost_shared::IdError| ApiError::bad_request(e.to_string());
    let site = SiteId::new(site).map_err(bad)?;
    let agent = AgentId::new(agent).map_err(bad)?;
    if state.engine().agent(&site, &agent).is_none() {
        return Err(ApiError::not_found(format!(
            "agent {agent} at site {site} is not known"
        )));
    }
    let (reply, answer) = oneshot::channel();
    send(&state, Command::EndPlannedWork { site, agent, reply }).await?;
    answer
        .await
        .map_err(|_| ApiError::unavailable("the decision task stopped"))??;
    Ok(Json(serde_json::json!({"planned_work": "ended"})))
}
