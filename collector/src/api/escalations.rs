//! Escalations: list, detail (with notification history and the site's notes), acknowledge,
//! resolve, and the live stream of changes.

use std::{convert::Infallible, time::Duration};

use axum::{
    Json,
    extract::{Path, Query, State},
    response::sse::{Event, KeepAlive, Sse},
};
use outpost_shared::{CheckId, EscalationState, SiteId, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio_stream::{Stream, StreamExt, wrappers::BroadcastStream};

use super::{
    ApiState,
    error::{ApiError, blocking},
    text_field,
};
use crate::{
    decide::{Command, NotificationLogEntry},
    engine::Escalation,
    store::StoredNote,
};

/// An escalation as the API shows it.
#[derive(Debug, Serialize)]
pub struct EscalationOut {
    /// The escalation.
    #[serde(flatten)]
    pub escalation: Escalation,
    /// `outpost:{site}:{agent}:{check}:{id}`.
    pub dedup_key: String,
    /// Why it waits, in words.
    pub held_because: Option<String>,
    /// The check's title from the agent's birth, where known (lists only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_title: Option<String>,
}

impl From<Escalation> for EscalationOut {
    fn from(escalation: Escalation) -> Self {
        Self {
            dedup_key: escalation.dedup_key(),
            held_because: escalation.held.as_ref().map(crate::engine::Hold::describe),
            check_title: None,
            escalation,
        }
    }
}

/// `GET /api/v1/escalations` filters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `open`, or one lifecycle state.
    state: Option<String>,
    /// Only this site.
    site: Option<String>,
    /// Opened (or still open) since; default 7 days.
    since: Option<String>,
}

pub(crate) fn parse_since(since: Option<&str>, default: Duration) -> Result<Timestamp, ApiError> {
    match since {
        None => Ok(crate::engine::sub(Timestamp::now(), default)),
        Some(text) => {
            if let Ok(ts) = text.parse::<Timestamp>() {
                return Ok(ts);
            }
            text.parse::<outpost_shared::HumanDuration>()
                .map(|d| crate::engine::sub(Timestamp::now(), d.get()))
                .map_err(|_| ApiError::bad_request(format!("since={text:?}: expected an RFC 3339 time (2026-11-29T10:00:00Z) or a duration back from now (24h, 7d)")))
        }
    }
}

pub async fn list(
    State(state): State<ApiState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<EscalationOut>>, ApiError> {
    let wanted: Option<Option<EscalationState>> = match q.state.as_deref() {
        None => None,
        Some("open") => Some(None),
        Some(s) => {
            Some(Some(s.parse().map_err(|e: String| {
                ApiError::bad_request(format!("{e}, or open"))
            })?))
        }
    };
    let site = q
        .site
        .map(SiteId::new)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let since = parse_since(q.since.as_deref(), Duration::from_secs(7 * 86_400))?;
    let log = state.log.clone();
    let mut all = blocking(move || log.escalations_since(since)).await?;
    // Memory is newest for open ones (the log is written after each step, but read it anyway).
    {
        let engine = state.engine();
        for e in &mut all {
            if let Some(live) = engine.escalation(e.id) {
                live.clone_into(e);
            }
        }
    }
    all.retain(|e| {
        site.as_ref().is_none_or(|s| &e.site == s)
            && match wanted {
                None => true,
                Some(None) => e.is_open(),
                Some(Some(st)) => e.state == st,
            }
    });
    all.sort_by_key(|e| std::cmp::Reverse(e.id));
    let engine = state.engine();
    Ok(Json(all.into_iter().map(|e| titled(&engine, e)).collect()))
}

/// An escalation for a list, with its check's title from the agent's birth where known.
pub(crate) fn titled(engine: &crate::engine::Engine, e: Escalation) -> EscalationOut {
    let title = CheckId::new(e.check.as_str())
        .ok()
        .and_then(|c| {
            engine
                .agent(&e.site, &e.agent)
                .and_then(|a| a.checks.get(&c))
                .map(|p| p.title.clone())
        })
        .filter(|t| !t.is_empty());
    EscalationOut {
        check_title: title,
        ..EscalationOut::from(e)
    }
}

/// One escalation with everything IT needs.
#[derive(Debug, Serialize)]
pub struct EscalationDetail {
    #[serde(flatten)]
    escalation: EscalationOut,
    check_title: String,
    runbook: Vec<String>,
    notifications: Vec<NotificationLogEntry>,
    notes: Vec<NoteOut>,
    recent: Vec<crate::notify::RecentResult>,
}

/// A site note.
#[derive(Debug, Serialize)]
pub struct NoteOut {
    ts: Timestamp,
    check: Option<CheckId>,
    by: String,
    text: String,
    action: String,
    until: Option<Timestamp>,
}

impl From<StoredNote> for NoteOut {
    fn from(n: StoredNote) -> Self {
        Self {
            ts: n.ts,
            check: n.note.check,
            by: n.note.by,
            text: n.note.text,
            action: n.note.action.as_str().to_owned(),
            until: n.note.until,
        }
    }
}

pub async fn detail(
    State(state): State<ApiState>,
    Path(id): Path<u64>,
) -> Result<Json<EscalationDetail>, ApiError> {
    let live = state.engine().escalation(id).cloned();
    let log = state.log.clone();
    let escalation = match live {
        Some(e) => e,
        None => blocking(move || log.escalation(id))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("escalation {id} does not exist")))?,
    };
    let (title, runbook) = {
        let engine = state.engine();
        CheckId::new(escalation.check.as_str())
            .ok()
            .and_then(|c| {
                engine
                    .agent(&escalation.site, &escalation.agent)
                    .and_then(|a| a.checks.get(&c))
                    .cloned()
            })
            .map(|p| (p.title, p.runbook))
            .unwrap_or_default()
    };
    let log = state.log.clone();
    let notifications = blocking(move || log.notifications_of(id)).await?;
    let store = state.store.clone();
    let (site, agent, check) = (
        escalation.site.clone(),
        escalation.agent.clone(),
        CheckId::new(escalation.check.as_str()).ok(),
    );
    let since = crate::engine::sub(escalation.opened_at, Duration::from_secs(3600));
    let check_for_notes = check.clone();
    let (s, a) = (site.clone(), agent.clone());
    let notes = blocking(move || store.notes(&s, &a, check_for_notes.as_ref(), since)).await?;
    let store = state.store.clone();
    let recent = blocking(move || {
        store.results(&crate::store::ResultQuery {
            site: Some(site),
            agent: Some(agent),
            check,
            since: None,
            limit: 60,
        })
    })
    .await?;
    Ok(Json(EscalationDetail {
        check_title: if title.is_empty() {
            escalation.check.clone()
        } else {
            title
        },
        runbook,
        notifications,
        notes: notes.into_iter().map(NoteOut::from).collect(),
        recent: recent
            .into_iter()
            .map(|r| crate::notify::RecentResult {
                ts: r.ts,
                status: r.result.status,
                summary: r.result.summary,
                metrics: r.result.metrics,
            })
            .collect(),
        escalation: escalation.into(),
    }))
}

/// `POST /api/v1/escalations/{id}/ack` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckBody {
    by: String,
    #[serde(default)]
    note: Option<String>,
}

pub async fn acknowledge(
    State(state): State<ApiState>,
    Path(id): Path<u64>,
    body: Result<Json<AckBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<EscalationOut>, ApiError> {
    let Json(body) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "{}; expected {{\"by\": \"name\", \"note\": \"text\"}}",
            e.body_text()
        ))
    })?;
    let by = text_field("by", &body.by, 100)?;
    let note = body
        .note
        .as_deref()
        .map(|n| text_field("note", n, 2000))
        .transpose()?;
    let (reply, answer) = oneshot::channel();
    send(
        &state,
        Command::Acknowledge {
            id,
            by,
            note,
            reply,
        },
    )
    .await?;
    let escalation = answer
        .await
        .map_err(|_| ApiError::unavailable("the decision task stopped"))??;
    Ok(Json(escalation.into()))
}

/// `POST /api/v1/escalations/{id}/resolve` body (optional).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    #[serde(default)]
    by: Option<String>,
}

pub async fn resolve(
    State(state): State<ApiState>,
    Path(id): Path<u64>,
    body: Option<Json<ResolveBody>>,
) -> Result<Json<EscalationOut>, ApiError> {
    let by = body
        .and_then(|Json(b)| b.by)
        .map(|by| text_field("by", &by, 100))
        .transpose()?;
    let (reply, answer) = oneshot::channel();
    send(&state, Command::Resolve { id, by, reply }).await?;
    let escalation = answer
        .await
        .map_err(|_| ApiError::unavailable("the decision task stopped"))??;
    Ok(Json(escalation.into()))
}

pub(crate) async fn send(state: &ApiState, command: Command) -> Result<(), ApiError> {
    tokio::time::timeout(Duration::from_secs(10), state.commands.send(command))
        .await
        .map_err(|_| ApiError::unavailable("the decision task is busy; try again"))?
        .map_err(|_| ApiError::unavailable("the decision task stopped"))
}

pub async fn stream(
    State(state): State<ApiState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events = BroadcastStream::new(state.hub.subscribe()).filter_map(|item| {
        let event = item.ok()?;
        let data = serde_json::to_string(&event).ok()?;
        Some(Ok(Event::default().event("escalation").data(data)))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
