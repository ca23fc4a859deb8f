//! HTTP delivery of rendered requests, with a retry schedule.

use std::time::Duration;

use super::Request;

/// Why a delivery failed; all are retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// No answer (connection refused, timeout, DNS).
    #[error("could not reach {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The receiver answered with an error status.
    #[error("{url} answered {status}: {body}")]
    Rejected {
        url: String,
        status: u16,
        body: String,
    },
}

/// Sends notifier requests over one pooled HTTP client.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
}

impl Sender {
    /// A sender with a per-request timeout.
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        // rustls needs a process-wide crypto provider; installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("outpost-collector/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client })
    }

    /// POSTs the request's JSON body; a 2xx answer is success.
    pub async fn send(&self, request: &Request) -> Result<(), DeliveryError> {
        let response = self
            .client
            .post(&request.url)
            .json(&request.body)
            .send()
            .await
            .map_err(|source| DeliveryError::Unreachable {
                url: request.url.clone(),
                source,
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        Err(DeliveryError::Rejected {
            url: request.url.clone(),
            status: status.as_u16(),
            body: body.chars().take(300).collect(),
        })
    }
}

/// Delay before retry number `attempt` (1-based): 1 s doubling, capped at 5 minutes.
pub fn backoff(attempt: u32) -> Duration {
    let secs = 1u64 << attempt.saturating_sub(1).min(9);
    Duration::from_secs(secs.min(300))
}
