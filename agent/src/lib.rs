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
pub mod systemd;

/// Installs rustls' `ring` provider once for the process (MQTT over TLS and HTTPS checks).
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Secrets readable by every local user deserve a warning at start (the content is never
/// logged, only the path). The collector uses it too.
pub fn warn_if_world_readable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o004 != 0
    {
        tracing::warn!(
            file = %path.display(),
            "this secret is readable by every user on the machine: chmod 600 it (owned by the outpost user)"
        );
    }
}

/// The agent's version, as sent in the birth message.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
