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
pub mod state_file;
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

/// Whether a request's `Host` names this machine's loopback (`localhost`, `127.0.0.1`,
/// `[::1]`, any port). A server open without a token (it listens on loopback only) accepts
/// nothing else: a web page the host's browser opened cannot reach it through DNS rebinding
/// (its own name resolving to 127.0.0.1).
pub fn loopback_host(headers: &axum::http::HeaderMap) -> bool {
    let Some(host) = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The agent's version, as sent in the birth message.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(test)]
mod tests {
    use super::loopback_host;

    #[test]
    fn only_loopback_names_are_loopback_hosts() {
        let host = |h: &str| {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert(axum::http::header::HOST, h.parse().expect("header value"));
            loopback_host(&headers)
        };
        for yes in [
            "127.0.0.1:9470",
            "localhost:9470",
            "LOCALHOST",
            "[::1]:9480",
            "127.0.0.2",
        ] {
            assert!(host(yes), "{yes}");
        }
        for no in [
            "evil.example:9470",
            "192.168.1.20:9470",
            "[fe80::1]:9470",
            "localhost.evil",
        ] {
            assert!(!host(no), "{no}");
        }
        assert!(
            !loopback_host(&axum::http::HeaderMap::new()),
            "no Host at all"
        );
    }
}
