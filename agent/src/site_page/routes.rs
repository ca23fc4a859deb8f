//! The request handlers: the page, the status JSON, metrics, and the writes (notes, heartbeat
//! reports, checklist confirmations). No handler can change configuration or stop a check.

use axum::{
    Json,
    extract::{Path, Query, Request, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use jiff::Timestamp;
use outpost_shared::{CheckId, NoteAction, Status};
use serde::Deserialize;

use super::{
    PageState, access,
    forms::Forms,
    html, input,
    input::{ApiError, Format},
    memory::{SiteNote, parse_until},
    metrics, view,
};
use crate::{live::LiveError, outbox_handle::SharedOutbox};

const NOTE_SHAPE: &str = r#"{"by": "Sam", "text": "Restarted the router", "action": "note"} (action: note, working_on_it, planned_work with "until": "15:00", planned_work_ended)"#;
const CHECKLIST_SHAPE: &str = r#"{"by": "Sam"}"#;
const HEARTBEAT_SHAPE: &str = r#"{"status": "ok"} or {"status": "fail", "msg": "disk full"}"#;

/// `?sent=` after a form post.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    sent: Option<String>,
}

/// `GET /`.
pub async fn page(State(state): State<PageState>, Query(query): Query<PageQuery>) -> Response {
    let view = state.view(Timestamp::now());
    let forms = Forms {
        needs_token: state.inner.access.needs_token(),
    };
    let body = html::page(&view, &state.inner.place, forms, query.sent.as_deref());
    ([(header::CACHE_CONTROL, "no-store")], Html(body)).into_response()
}

/// `GET /api/v1/status`: the live snapshot, plus the page's words (`view`), planned work,
/// the site team's notes and the outbox figures.
pub async fn status(State(state): State<PageState>) -> Response {
    let now = Timestamp::now();
    let snapshot = state.inner.live.snapshot();
    let mut value = serde_json::to_value(&snapshot).unwrap_or_default();
    if let serde_json::Value::Object(map) = &mut value {
        let planned = state.memory().all_planned(now);
        let planned: Vec<_> = planned
            .into_iter()
            .map(|(check, work)| serde_json::json!({"check": check, "work": work}))
            .collect();
        map.insert("planned_work".into(), serde_json::json!(planned));
        if let Some(stats) = state.inner.live.outbox().map(SharedOutbox::stats) {
            map.insert(
                "outbox".into(),
                serde_json::json!({
                    "pending": stats.pending,
                    "bytes": stats.bytes,
                    "oldest_pending": stats.oldest_pending,
                    "dropped_total": stats.dropped_total,
                }),
            );
        }
        map.insert("view".into(), serde_json::json!(state.view(now)));
    }
    ([(header::CACHE_CONTROL, "no-store")], Json(value)).into_response()
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<PageState>) -> Response {
    let snapshot = state.inner.live.snapshot();
    let stats = state.inner.live.outbox().map(SharedOutbox::stats);
    let planned = state.memory().all_planned(Timestamp::now()).len();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::render(&snapshot, stats.as_ref(), planned),
    )
        .into_response()
}

/// A note, as JSON or form fields.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NoteInput {
    by: String,
    text: String,
    action: Option<String>,
    until: Option<String>,
    token: Option<String>,
}

/// `POST /api/v1/notes`: a note about the whole site (planned work, mostly).
pub async fn site_note(State(state): State<PageState>, request: Request) -> Response {
    note(&state, None, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /api/v1/checks/{id}/notes`.
pub async fn check_note(
    State(state): State<PageState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    note(&state, Some(id), request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn note(
    state: &PageState,
    check: Option<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let headers = request.headers().clone();
    let (format, body): (Format, NoteInput) = input::read(request, NOTE_SHAPE).await?;
    state.guard(&headers, body.token.as_deref(), format)?;
    let check = check.map(|id| state.check(&id, None, format)).transpose()?;
    let action = match body.action.as_deref().unwrap_or("note") {
        "note" => NoteAction::Note,
        "working_on_it" => NoteAction::WorkingOnIt,
        "planned_work" => NoteAction::PlannedWork,
        "planned_work_ended" => NoteAction::PlannedWorkEnded,
        "checklist_done" => {
            return Err(ApiError::bad(
                "confirm a checklist with POST /api/v1/checklist/{id}",
                format,
            ));
        }
        other => {
            return Err(ApiError::bad(
                format!(
                    "{:?} is not an action; expected note, working_on_it, planned_work or \
                     planned_work_ended",
                    other.chars().take(40).collect::<String>()
                ),
                format,
            ));
        }
    };
    let by = input::name(&body.by, format)?;
    let mut text = input::text(&body.text, format)?;
    let now = Timestamp::now();
    let until = match action {
        NoteAction::PlannedWork => {
            if text.is_empty() {
                return Err(ApiError::bad(
                    "Say what work is planned, for example \"router replaced\".",
                    format,
                ));
            }
            let until = body.until.as_deref().unwrap_or_default();
            Some(
                parse_until(until, &state.inner.timezone, now)
                    .map_err(|m| ApiError::bad(m, format))?,
            )
        }
        _ => None,
    };
    if text.is_empty() {
        text = match action {
            NoteAction::WorkingOnIt => "Working on it.".to_owned(),
            NoteAction::PlannedWorkEnded => "Planned work finished.".to_owned(),
            _ => {
                return Err(ApiError::bad(
                    "The note is empty; write what you tried or what you see.",
                    format,
                ));
            }
        };
    }
    let seq = state
        .inner
        .live
        .submit_note(
            check.as_ref().map(CheckId::as_str),
            &by,
            &text,
            action,
            until,
        )
        .await
        .map_err(|e| ApiError::from_live(&e, format))?;
    let anchor = check
        .as_ref()
        .map_or_else(|| "planned-work".to_owned(), |c| format!("check-{c}"));
    state.remember(
        check,
        SiteNote {
            ts: now,
            by,
            text,
            action,
        },
        until,
    );
    Ok(input::done(
        format,
        action.as_str(),
        &anchor,
        serde_json::json!({"ok": true, "seq": seq, "until": until}),
    ))
}

/// `?status=fail&msg=...` (or the same fields in a body).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeartbeatInput {
    status: Option<String>,
    msg: Option<String>,
    token: Option<String>,
}

/// `POST /api/v1/heartbeat/{id}`: a job reports in (`curl -X POST .../heartbeat/nightly-backup`).
pub async fn heartbeat(
    State(state): State<PageState>,
    Path(id): Path<String>,
    query: Result<Query<HeartbeatInput>, axum::extract::rejection::QueryRejection>,
    request: Request,
) -> Response {
    let format = input::format_of(request.headers());
    let result = async {
        let Query(query) = query
            .map_err(|e| ApiError::bad(format!("expected ?status=ok|fail&msg=...: {e}"), format))?;
        let headers = request.headers().clone();
        let (format, body): (Format, HeartbeatInput) =
            input::read(request, HEARTBEAT_SHAPE).await?;
        state.guard(&headers, body.token.as_deref(), format)?;
        let id = state.check(&id, Some("heartbeat"), format)?;
        let status = match body.status.or(query.status).as_deref().unwrap_or("ok") {
            "ok" => Status::Ok,
            "fail" => Status::Fail,
            other => {
                return Err(ApiError::bad(
                    format!(
                        "{:?} is not a heartbeat status; expected ok or fail",
                        other.chars().take(40).collect::<String>()
                    ),
                    format,
                ));
            }
        };
        let message = body
            .msg
            .or(query.msg)
            .map(|m| input::text(&m, format))
            .transpose()?
            .filter(|m| !m.is_empty());
        state
            .inner
            .live
            .report_heartbeat(id.as_str(), status, message)
            .map_err(|e| ApiError::from_live(&e, format))?;
        Ok::<_, ApiError>(input::done(
            format,
            "heartbeat",
            &format!("check-{id}"),
            serde_json::json!({"ok": true, "check": id, "status": status}),
        ))
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

/// Who confirms a checklist duty.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChecklistInput {
    by: String,
    token: Option<String>,
}

/// `POST /api/v1/checklist/{id}`: a person confirms the duty is done.
pub async fn checklist(
    State(state): State<PageState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let result = async {
        let headers = request.headers().clone();
        let (format, body): (Format, ChecklistInput) =
            input::read(request, CHECKLIST_SHAPE).await?;
        state.guard(&headers, body.token.as_deref(), format)?;
        let id = state.check(&id, Some("checklist"), format)?;
        let by = input::name(&body.by, format)?;
        let seq = state
            .inner
            .live
            .confirm_checklist(id.as_str(), &by)
            .await
            .map_err(|e| ApiError::from_live(&e, format))?;
        state.remember(
            Some(id.clone()),
            SiteNote {
                ts: Timestamp::now(),
                by,
                text: "Confirmed done.".into(),
                action: NoteAction::ChecklistDone,
            },
            None,
        );
        Ok::<_, ApiError>(input::done(
            format,
            "checklist_done",
            &format!("check-{id}"),
            serde_json::json!({"ok": true, "seq": seq}),
        ))
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

/// Anything else: 404 in JSON.
pub async fn not_found(request: Request) -> Response {
    let path: String = request.uri().path().chars().take(100).collect();
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({
            "error": format!("there is nothing at {path}; the status page is at / and the API under /api/v1/")
        })),
    )
        .into_response()
}

impl PageState {
    /// Refuses writes from other web sites, and without the token when one is set.
    fn guard(
        &self,
        headers: &HeaderMap,
        token: Option<&str>,
        format: Format,
    ) -> Result<(), ApiError> {
        if access::cross_site(headers) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "this page only accepts posts from its own forms or from scripts",
                format,
            ));
        }
        if !self.inner.access.allows(headers, token) {
            let message = match format {
                Format::Form => "The site code is missing or wrong. Ask IT for the site code.",
                Format::Json => {
                    "missing or wrong token: send `Authorization: Bearer <token>` with the token \
                     from [local] token_file"
                }
            };
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, message, format));
        }
        Ok(())
    }

    /// The check `id`, of kind `kind` when given (404 for an unknown id, 400 for another kind).
    fn check(
        &self,
        id: &str,
        kind: Option<&'static str>,
        format: Format,
    ) -> Result<CheckId, ApiError> {
        let spec = self
            .inner
            .live
            .catalogue()
            .iter()
            .find(|c| c.id.as_str() == id)
            .ok_or_else(|| {
                ApiError::from_live(
                    &LiveError::UnknownCheck(id.chars().take(64).collect()),
                    format,
                )
            })?;
        match kind {
            Some(expected) if spec.kind != expected => Err(ApiError::from_live(
                &LiveError::WrongKind {
                    check: id.to_owned(),
                    kind: spec.kind.clone(),
                    expected,
                },
                format,
            )),
            _ => Ok(spec.id.clone()),
        }
    }

    /// The page's words at `now`.
    fn view(&self, now: Timestamp) -> view::PageView {
        let snapshot = self.inner.live.snapshot();
        let stats = self.inner.live.outbox().map(SharedOutbox::stats);
        view::build(
            &snapshot,
            stats.as_ref(),
            &self.memory(),
            &self.inner.timezone,
            now,
        )
    }
}
