//! A real HTTP receiver for notifier tests: records every JSON body POSTed to it.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// A webhook receiver on 127.0.0.1; stops with the runtime.
///
/// Its URL carries a path unique to this receiver, and only bodies posted to that path are
/// kept: a collector left over from another test that once had this port as its webhook
/// cannot slip notifications into this test's counts.
pub struct Receiver {
    addr: SocketAddr,
    path: String,
    got: Arc<Mutex<Vec<serde_json::Value>>>,
}

static RECEIVERS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Receiver {
    /// Starts listening on a free port (call inside a tokio runtime).
    pub async fn start() -> Self {
        use axum::{Json, Router, http::StatusCode, http::Uri, routing::post};
        let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let sink = got.clone();
        let n = RECEIVERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = format!("/hook/{}-{n}-{nanos:x}", std::process::id());
        let own = path.clone();
        let app =
            Router::new().fallback(post(move |uri: Uri, Json(v): Json<serde_json::Value>| {
                let (sink, own) = (sink.clone(), own.clone());
                async move {
                    if uri.path() != own {
                        return StatusCode::NOT_FOUND;
                    }
                    sink.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(v);
                    StatusCode::OK
                }
            }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port");
        let addr = listener
            .local_addr()
            .expect("bound listener has an address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, path, got }
    }

    /// `http://127.0.0.1:PORT/hook/UNIQUE`.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, self.path)
    }

    /// Everything received so far.
    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.got
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The `event` field of each body, in arrival order.
    pub fn events(&self) -> Vec<String> {
        self.bodies()
            .iter()
            .map(|b| b["event"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Waits until `pred` holds for the bodies, or `timeout` passes; returns whether it held.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        pred: impl Fn(&[serde_json::Value]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.bodies()) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
