//! The Outpost edge agent: runs the site's checks, keeps every result in a durable outbox and
//! publishes it to the collector over MQTT.
//!
//! Data flows one way: [`config`] → [`checks`] → [`scheduler`] → [`outbox`] → [`publisher`],
//! with [`live`] holding what the site page shows.

pub mod checks;
pub mod config;
pub mod live;
pub mod outbox;
pub mod outbox_handle;
pub mod publisher;
pub mod runtime;
pub mod scheduler;
pub mod site_page;

/// Installs rustls' `ring` provider once for the process (MQTT over TLS and HTTPS checks).
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The agent's version, as sent in the birth message.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
