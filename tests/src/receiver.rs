//! A real HTTP receiver for notifier tests: records every JSON body POSTed to it.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// A webhook receiver on 127.0.0.1; stops with the runtime.
pub struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Receiver {
    /// Starts listening on a free port (call inside a tokio runtime).
    pub async fn start() -> Self {
        use axum::{Json, Router, http::StatusCode, routing::post};
        let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let sink = got.clone();
        let app = Router::new().fallback(post(move |Json(v): Json<serde_json::Value>| {
            let sink = sink.clone();
            async move {
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
        Self { addr, got }
    }

    /// `http://127.0.0.1:PORT/hook`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
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
