//! The collector's HTTP API (axum): sites, escalations, results, reports, the live stream,
//! health and metrics. Reads come from the engine (memory) and the stores; actions go to the
//! decision task as commands, so one task owns every write.

mod auth;
mod error;
mod escalations;
mod maintenance;
mod report;
mod sites;

use std::sync::{Arc, RwLock};

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request},
    http::{HeaderValue, header},
    middleware::{self, Next},
    response::Response,
    routing::{get, post},
};
use tokio::sync::{broadcast, mpsc};

pub use auth::Tokens;
pub use error::ApiError;

use crate::{
    cluster::Role,
    decide::{Command, DecisionLog, StreamEvent},
    engine::Engine,
    store::Store,
};

/// Renders `/metrics` (Prometheus text).
pub type MetricsRenderer = Arc<dyn Fn() -> String + Send + Sync>;

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    /// The engine (read-only here).
    pub engine: Arc<RwLock<Engine>>,
    /// Escalation history and notification log.
    pub log: Arc<dyn DecisionLog>,
    /// Telemetry: agents, results, notes.
    pub store: Arc<dyn Store>,
    /// Actions for the decision task.
    pub commands: mpsc::Sender<Command>,
    /// Live escalation changes.
    pub hub: broadcast::Sender<StreamEvent>,
    /// API tokens.
    pub tokens: Tokens,
    /// `/metrics`.
    pub metrics: MetricsRenderer,
    /// Whether ingest is connected and subscribed (reported by `/healthz`).
    pub mqtt_ready: Arc<std::sync::atomic::AtomicBool>,
    /// Whether this collector decides; API calls go to the one that does.
    pub role: Arc<Role>,
}

impl ApiState {
    pub(crate) fn engine(&self) -> std::sync::RwLockReadGuard<'_, Engine> {
        self.engine
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Largest request body the API accepts.
pub const MAX_BODY: usize = 64 * 1024;

/// The API router (mount the dashboard beside it).
pub fn router(state: ApiState) -> Router {
    let api = Router::new()
        .route("/sites", get(sites::list))
        .route("/sites/{site}", get(sites::detail))
        .route(
            "/sites/{site}/agents/{agent}/planned-work/end",
            post(maintenance::end_planned_work),
        )
        .route("/results", get(sites::results))
        .route("/escalations", get(escalations::list))
        .route("/escalations/{id}", get(escalations::detail))
        .route("/escalations/{id}/ack", post(escalations::acknowledge))
        .route("/escalations/{id}/resolve", post(escalations::resolve))
        .route(
            "/maintenance",
            get(maintenance::list).post(maintenance::create),
        )
        .route("/maintenance/{id}/end", post(maintenance::end))
        .route("/stream", get(escalations::stream))
        .route("/report", get(report::json))
        .route("/report.csv", get(report::csv))
        .fallback(error::no_such_endpoint)
        .layer(middleware::from_fn_with_state(state.clone(), auth::require))
        .layer(middleware::from_fn(error::json_errors));
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::cluster::forward,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Everything the collector serves over HTTP: the API and the dashboard. Open without tokens
/// (then it listens on loopback only), it answers only requests that name loopback, so a web
/// page in a browser on the same host cannot reach it through DNS rebinding.
pub fn app(state: ApiState) -> Router {
    let open = !state.tokens.any();
    router(state.clone())
        .merge(crate::dashboard::router().with_state(state))
        .layer(middleware::from_fn(move |request: Request, next: Next| async move {
            if open && !outpost_agent::loopback_host(request.headers()) {
                return axum::response::IntoResponse::into_response(ApiError::forbidden(
                    "without API tokens the collector answers only at http://127.0.0.1 or \
                     http://localhost; set read_token_file and write_token_file to serve other names",
                ));
            }
            next.run(request).await
        }))
}

/// Liveness and readiness: always 200 while the process serves; `mqtt` says whether ingest is
/// connected and subscribed (`ready`) or still trying (`connecting`); `role` whether this
/// collector decides (`leader`) or stores and passes API calls on (`follower`).
async fn healthz(
    axum::extract::State(state): axum::extract::State<ApiState>,
) -> axum::Json<serde_json::Value> {
    let mqtt = if state.mqtt_ready.load(std::sync::atomic::Ordering::Relaxed) {
        "ready"
    } else {
        "connecting"
    };
    axum::Json(serde_json::json!({"status": "ok", "mqtt": mqtt, "role": state.role.name()}))
}

async fn metrics(axum::extract::State(state): axum::extract::State<ApiState>) -> Response {
    let mut response = Response::new((state.metrics)().into());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

/// Security headers on every answer.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
        ));
    response
}

/// Checks a free-text field from a person: present, not too long.
pub(crate) fn text_field(name: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ApiError::bad_request(format!(
            "`{name}` is empty; say who you are / what you did"
        )));
    }
    if value.chars().count() > max {
        return Err(ApiError::bad_request(format!(
            "`{name}` is longer than {max} characters"
        )));
    }
    Ok(value.to_owned())
}
