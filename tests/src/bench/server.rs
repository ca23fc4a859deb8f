//! Local servers the scenarios need: a TCP port and a web page for the agent's checks, and a
//! webhook receiver that timestamps each call as it arrives.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Instant,
};

use anyhow::Context;
use axum::{Json, Router, http::StatusCode, routing::get, routing::post};

/// Accepts TCP connections on a loopback port and closes them (the `tcp` checks' target).
pub async fn tcp_listener() -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a loopback TCP port")?;
    let addr = listener.local_addr().context("listener address")?;
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    Ok(addr)
}

/// Serves `GET /` with a small page containing "ready" (the `http` checks' target).
pub async fn web_page() -> anyhow::Result<SocketAddr> {
    let app = Router::new().route("/", get(|| async { "<html><body>ready</body></html>" }));
    serve(app).await
}

async fn serve(app: Router) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a loopback HTTP port")?;
    let addr = listener.local_addr().context("listener address")?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// A webhook that notes when the first call about each `site/agent/check` arrived.
#[derive(Clone)]
pub struct Webhook {
    addr: SocketAddr,
    arrivals: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Webhook {
    /// Starts the receiver on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        let arrivals: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let sink = arrivals.clone();
        let app = Router::new().fallback(post(move |Json(body): Json<serde_json::Value>| {
            let at = Instant::now();
            let sink = sink.clone();
            async move {
                let field = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
                let key = format!("{}/{}/{}", field("site"), field("agent"), field("check"));
                sink.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .entry(key)
                    .or_insert(at);
                StatusCode::OK
            }
        }));
        let addr = serve(app).await?;
        Ok(Self { addr, arrivals })
    }

    /// `http://127.0.0.1:PORT/hook`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// When the first call about `site/agent/check` arrived.
    pub fn arrived(&self, check_path: &str) -> Option<Instant> {
        self.arrivals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(check_path)
            .copied()
    }

    /// How many distinct checks were called about.
    pub fn count(&self) -> usize {
        self.arrivals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}
