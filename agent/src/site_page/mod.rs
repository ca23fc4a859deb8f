//! The site page: the agent's local web server for the plant's own staff. It shows the live
//! state in plain words (`GET /`), serves it as JSON (`/api/v1/status`) and Prometheus metrics
//! (`/metrics`), and accepts what people and jobs say: notes, "working on it", planned work,
//! checklist confirmations and heartbeat reports. Nothing here can change the configuration,
//! stop a check or reach the network: it only reads the live state and appends notes.

mod access;
mod forms;
mod html;
mod input;
mod memory;
mod metrics;
mod routes;
mod view;

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request},
    http::{HeaderValue, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use jiff::tz::TimeZone;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use access::Access;
pub use input::{BODY_LIMIT, MAX_NAME, MAX_TEXT};
pub use memory::{MAX_PLANNED_WORK, PlannedWork, SiteNote};
pub use view::{CheckView, PageView};

use crate::{config::LocalConfig, live::Live};

/// The site page could not start.
#[derive(Debug, thiserror::Error)]
pub enum SitePageError {
    /// Listening beyond loopback without a token would let anyone on the network write.
    #[error(
        "[local] listen = \"{listen}\" is reachable from the network, so writes need a token: \
         set [local] token_file to a file holding a secret (at least 8 characters), or listen \
         on 127.0.0.1"
    )]
    TokenRequired {
        /// The configured address.
        listen: SocketAddr,
    },
    /// The token file could not be used.
    #[error("cannot use the site page token file {path}: {why}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The address could not be bound.
    #[error(
        "the site page cannot listen on {listen}: {source}. Is another agent running? Set \
         [local] listen to a free address"
    )]
    Bind {
        /// The configured address.
        listen: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
}

/// What the handlers share; clones share it.
#[derive(Clone)]
pub struct PageState {
    inner: Arc<Inner>,
}

struct Inner {
    live: Live,
    timezone: TimeZone,
    access: Access,
    place: String,
    memory: Mutex<SiteMemory>,
    /// Where the memory survives a restart (`None`: memory only).
    memory_file: Option<std::path::PathBuf>,
}

use memory::SiteMemory;

impl PageState {
    /// State for a page over `live`, showing times in `timezone`; `place` names the site
    /// ("plant-leeds · line3-pc") at the top of the page.
    pub fn new(live: Live, timezone: TimeZone, access: Access, place: impl Into<String>) -> Self {
        Self::build(live, timezone, access, place.into(), None)
    }

    /// Like [`PageState::new`], with the notes and planned work the page shows kept in
    /// `file` (read now, rewritten after each note): a restarted agent still shows the
    /// planned work under way and what the site team already tried.
    pub fn persistent(
        live: Live,
        timezone: TimeZone,
        access: Access,
        place: impl Into<String>,
        file: std::path::PathBuf,
    ) -> Self {
        Self::build(live, timezone, access, place.into(), Some(file))
    }

    fn build(
        live: Live,
        timezone: TimeZone,
        access: Access,
        place: String,
        memory_file: Option<std::path::PathBuf>,
    ) -> Self {
        let memory = memory_file
            .as_deref()
            .map(SiteMemory::load)
            .unwrap_or_default();
        Self {
            inner: Arc::new(Inner {
                live,
                timezone,
                access,
                place,
                memory: Mutex::new(memory),
                memory_file,
            }),
        }
    }

    /// Remembers a note that reached the outbox (and saves the memory, when it has a file).
    fn remember(
        &self,
        check: Option<outpost_shared::CheckId>,
        note: SiteNote,
        until: Option<jiff::Timestamp>,
    ) {
        let mut memory = self.memory();
        memory.remember(check, note, until);
        if let Some(file) = &self.inner.memory_file {
            // Under the lock: the file always holds the newest snapshot.
            memory.save(file);
        }
    }

    fn memory(&self) -> MutexGuard<'_, SiteMemory> {
        // Every update leaves the memory whole, so a poisoned lock is still usable.
        self.inner
            .memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Checks the `[local]` settings (a token beyond loopback) and binds the listener.
pub async fn bind(local: &LocalConfig) -> Result<(TcpListener, Access), SitePageError> {
    let access = Access::from_config(local)?;
    let listener = TcpListener::bind(local.listen)
        .await
        .map_err(|source| SitePageError::Bind {
            listen: local.listen,
            source,
        })?;
    Ok((listener, access))
}

/// The page's routes, with the body limit and security headers on every response.
pub fn router(state: PageState) -> Router {
    Router::new()
        .route("/", get(routes::page))
        .route("/site.css", get(css))
        .route("/site.js", get(js))
        .route("/api/v1/status", get(routes::status))
        .route("/metrics", get(routes::metrics))
        .route("/api/v1/notes", post(routes::site_note))
        .route("/api/v1/checks/{id}/notes", post(routes::check_note))
        .route("/api/v1/heartbeat/{id}", post(routes::heartbeat))
        .route("/api/v1/checklist/{id}", post(routes::checklist))
        .fallback(routes::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), reads))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Serves the page on `listener` until `cancel` fires.
pub async fn serve(
    listener: TcpListener,
    state: PageState,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!("site page on {}", access::describe(addr));
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
}

/// Who may read: with no token (loopback only), requests that name loopback; with
/// `[local] protect_reads`, those carrying the site code: the browser asks for it once (HTTP
/// Basic, any user name) and sends it from then on. Writes check the code anyway.
async fn reads(
    axum::extract::State(state): axum::extract::State<PageState>,
    request: Request,
    next: Next,
) -> Response {
    // Open without a token (loopback only): only requests that name loopback.
    if !state.inner.access.needs_token() && !crate::loopback_host(request.headers()) {
        return (
            axum::http::StatusCode::FORBIDDEN,
            "This page answers only at http://127.0.0.1 or http://localhost.\n",
        )
            .into_response();
    }
    if request.method() != axum::http::Method::GET
        || state.inner.access.allows_read(request.headers())
    {
        return next.run(request).await;
    }
    (
        axum::http::StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Outpost site page\", charset=\"UTF-8\""),
        )],
        "This page needs the site code: ask IT. Any user name; the site code as the password.\n",
    )
        .into_response()
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; style-src 'self' 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("assets/site.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("assets/site.js"),
    )
        .into_response()
}
