//! Several collectors on one PostgreSQL. Every collector stores what the broker gives it (the
//! sites' records are shared out through an MQTT shared subscription); exactly one of them,
//! the holder of the decision log's lock, decides and notifies. The others queue their new
//! records for it in the store and pass IT's API calls on to it over HTTP.

use std::{
    sync::{
        RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderName, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{
    api::{ApiError, ApiState, MAX_BODY},
    decide::Leadership,
};

/// This collector's part: deciding (leading) or storing and forwarding (following).
#[derive(Debug)]
pub struct Role {
    leading: AtomicBool,
    /// The leader's advertised HTTP base URL, while following.
    leader: RwLock<Option<String>>,
    /// Passes API calls on to the leader.
    client: reqwest::Client,
}

impl Role {
    /// A collector that does not decide (yet).
    pub fn following() -> Result<Self, reqwest::Error> {
        // rustls needs a process-wide crypto provider; installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ok(Self {
            leading: AtomicBool::new(false),
            leader: RwLock::new(None),
            client: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(3))
                .build()?,
        })
    }

    /// Whether this collector decides now.
    pub fn leading(&self) -> bool {
        self.leading.load(Ordering::Acquire)
    }

    /// Where the deciding collector answers, when another one decides and said so.
    pub fn leader(&self) -> Option<String> {
        self.leader
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Takes the outcome of [`crate::decide::DecisionLog::lead`].
    pub(crate) fn set(&self, leadership: &Leadership) {
        let (leading, leader) = match leadership {
            Leadership::Leading => (true, None),
            Leadership::Following { leader } => (false, leader.clone()),
        };
        *self
            .leader
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = leader;
        self.leading.store(leading, Ordering::Release);
    }

    /// The word for `/healthz` and the log.
    pub fn name(&self) -> &'static str {
        if self.leading() { "leader" } else { "follower" }
    }
}

/// Headers that belong to one hop and are not passed on.
const HOP_BY_HOP: [HeaderName; 4] = [
    header::CONNECTION,
    header::HOST,
    header::TRANSFER_ENCODING,
    header::CONTENT_LENGTH,
];

/// Middleware on `/api/v1`: a collector that does not decide passes the call, with its
/// credentials, to the one that does, and streams the answer back (also the live stream).
pub async fn forward(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    if state.role.leading() || !request.uri().path().starts_with("/api/v1/") {
        return next.run(request).await;
    }
    let Some(leader) = state.role.leader() else {
        return ApiError::unavailable(
            "no collector decides at the moment (one is taking over); try again in a few seconds",
        )
        .into_response();
    };
    match pass_on(&state.role.client, &leader, request).await {
        Ok(response) => response,
        Err(message) => ApiError::unavailable(message).into_response(),
    }
}

async fn pass_on(
    client: &reqwest::Client,
    leader: &str,
    request: Request,
) -> Result<Response, String> {
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", axum::http::uri::PathAndQuery::as_str);
    let url = format!("{}{path}", leader.trim_end_matches('/'));
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|e| format!("reading the request to pass on: {e}"))?;
    let mut outgoing = client.request(parts.method, &url).body(body);
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = outgoing.send().await.map_err(|e| {
        format!("the deciding collector at {leader} does not answer ({e}); try again shortly")
    })?;
    let mut response = Response::builder()
        .status(StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY));
    for (name, value) in answer.headers() {
        if !HOP_BY_HOP.contains(name) {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .map_err(|e| format!("passing the answer back: {e}"))
}
