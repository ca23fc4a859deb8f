//! The agent's TOML configuration: read, checked key by key, and validated as a whole.
//!
//! Parsing is two steps so every mistake points at a file, a line and a key: the top level is
//! read by `toml` with spans, then each `[[check]]` table is split into the keys every check
//! shares and the keys of its kind, and each part is read with `deny_unknown_fields`.

mod error;
mod raw;
mod sections;
mod validate;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
};

use outpost_shared::{AgentId, ByteSize, HumanDuration, SiteId};

use crate::checks::Check;

pub use error::ConfigError;
pub(crate) use raw::missing_field;

/// The whole agent configuration, validated.
pub struct Config {
    /// The file it came from (for messages).
    pub path: PathBuf,
    /// The site id.
    pub site: SiteId,
    /// This agent's id (default: the sanitized host name).
    pub agent: AgentId,
    /// The site's time zone; governs checklist times.
    pub timezone: jiff::tz::TimeZone,
    /// The IANA name of `timezone` (for the birth message), or `"UTC"`.
    pub timezone_name: String,
    /// How to reach the broker.
    pub mqtt: MqttConfig,
    /// The local site page.
    pub local: LocalConfig,
    /// The durable outbox.
    pub outbox: OutboxConfig,
    /// The checks, in file order.
    pub checks: Vec<Arc<dyn Check>>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("path", &self.path)
            .field("site", &self.site)
            .field("agent", &self.agent)
            .field("timezone", &self.timezone_name)
            .field("mqtt", &self.mqtt)
            .field("local", &self.local)
            .field("outbox", &self.outbox)
            .field("checks", &self.checks.len())
            .finish()
    }
}

/// Whether the broker connection is plain or TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttScheme {
    /// `mqtt://`, plain TCP.
    Plain,
    /// `mqtts://`, TLS (rustls).
    Tls,
}

/// The `[mqtt]` table.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    /// The URL as written.
    pub url: String,
    /// Plain or TLS.
    pub scheme: MqttScheme,
    /// Broker host name or address.
    pub host: String,
    /// Broker port (default 1883, or 8883 for TLS).
    pub port: u16,
    /// File holding the MQTT user name.
    pub username_file: Option<PathBuf>,
    /// File holding the MQTT password.
    pub password_file: Option<PathBuf>,
    /// PEM file with the CA certificates to trust (default: the public web roots).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS.
    pub cert_file: Option<PathBuf>,
    /// PEM private key for mutual TLS.
    pub key_file: Option<PathBuf>,
    /// MQTT keep-alive (default 30s): a dead link is noticed (and the broker sends the Last
    /// Will) within about 1.5 times this.
    pub keep_alive: std::time::Duration,
}

impl MqttConfig {
    /// True when the broker is on this machine (plain MQTT is then acceptable).
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// The `[local]` table: the site page.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Where the site page listens (default 127.0.0.1:9470).
    pub listen: SocketAddr,
    /// File holding the token required for writes when listening beyond loopback.
    pub token_file: Option<PathBuf>,
    /// Reading the page also needs the token (the browser asks for it once).
    pub protect_reads: bool,
}

/// The `[outbox]` table.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// Folder of the durable log.
    pub dir: PathBuf,
    /// Size bound (default 256MB).
    pub max_size: ByteSize,
    /// Age bound (default 7d).
    pub max_age: HumanDuration,
}

impl Config {
    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates config `text`; `path` is only used in messages and for
    /// resolving nothing else (relative paths stay relative to the working folder).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        raw::parse(path, text)
    }

    /// The MQTT client id, `{site}.{agent}`.
    pub fn client_id(&self) -> String {
        format!("{}.{}", self.site, self.agent)
    }

    /// The check catalogue sent in the birth message.
    pub fn catalogue(&self) -> Vec<outpost_shared::CheckSpec> {
        self.checks.iter().map(|c| c.spec()).collect()
    }
}
