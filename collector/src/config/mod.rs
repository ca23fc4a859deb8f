//! The collector's TOML configuration: parsed strictly (unknown keys are errors) and checked,
//! with every error naming the file, the line, the key and what would be valid.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use outpost_shared::{ByteSize, HumanDuration};
use serde::Deserialize;

use crate::notify::NotifierKind;

mod locate;
mod maintenance;

pub use maintenance::MaintenanceConfig;

use locate::{Seg, dotted, invalid_at, k, key_at, span_of};

/// Where the collector stores its data when no config says otherwise.
pub const DEFAULT_STORE_URL: &str = "sqlite://./outpost-data/outpost.db";

/// The whole collector configuration. `Config::default()` is the no-config setup:
/// embedded broker on 127.0.0.1:1883, SQLite under `./outpost-data/`, API on 127.0.0.1:9480.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Silence after which an agent counts as offline (`None`: the engine derives it).
    #[serde(default)]
    pub offline_after: Option<HumanDuration>,
    /// An external broker; `None` starts the embedded one on `[broker] listen`.
    #[serde(default)]
    pub mqtt: Option<MqttConfig>,
    /// The embedded broker, used when `[mqtt]` is absent.
    #[serde(default)]
    pub broker: BrokerConfig,
    /// Where results are stored.
    #[serde(default)]
    pub store: StoreConfig,
    /// What ingest accepts.
    #[serde(default)]
    pub ingest: IngestConfig,
    /// The HTTP API and dashboard.
    #[serde(default)]
    pub http: HttpConfig,
    /// Where escalations are sent (`[[notifier]]` tables).
    #[serde(default, rename = "notifier")]
    pub notifiers: Vec<NotifierConfig>,
    /// How escalations are run.
    #[serde(default)]
    pub escalation: EscalationConfig,
    /// Recurring maintenance windows (`[[maintenance]]` tables).
    #[serde(default)]
    pub maintenance: Vec<MaintenanceConfig>,
}

/// `[escalation]`: lifecycle settings that are the collector's, not a check's.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EscalationConfig {
    /// The site team's window for an agent-offline escalation (default 2m).
    #[serde(default)]
    pub offline_window: Option<HumanDuration>,
    /// How long an agent's Last Will must stand (no `online` after it) before agent-offline
    /// opens (default 5s; "0s" opens at once).
    #[serde(default)]
    pub offline_grace: Option<HumanDuration>,
    /// Re-send open, unacknowledged escalations this often (default 1h; "0s" never).
    #[serde(default)]
    pub reminder: Option<HumanDuration>,
    /// Good/bad changes inside `flap_window` that make a check flapping (default 6).
    #[serde(default)]
    pub flap_limit: Option<usize>,
    /// Flapping window (default 1h).
    #[serde(default)]
    pub flap_window: Option<HumanDuration>,
    /// Longest planned work a site team may declare (default 4h).
    #[serde(default)]
    pub max_planned_work: Option<HumanDuration>,
    /// The dashboard's public base URL, for links in notifications.
    #[serde(default)]
    pub dashboard_url: Option<String>,
}

impl Config {
    /// The engine settings this config asks for.
    pub fn engine_settings(&self) -> crate::engine::EngineSettings {
        let defaults = crate::engine::EngineSettings::default();
        let e = &self.escalation;
        // A notifier's own reminder, when set, tightens the global one.
        let reminder = e
            .reminder
            .map(HumanDuration::get)
            .or(defaults.reminder)
            .into_iter()
            .chain(
                self.notifiers
                    .iter()
                    .filter_map(|n| n.reminder.map(HumanDuration::get)),
            )
            .min()
            .filter(|d| !d.is_zero());
        crate::engine::EngineSettings {
            offline_after: self.offline_after.map(HumanDuration::get),
            offline_window: e
                .offline_window
                .map_or(defaults.offline_window, HumanDuration::get),
            offline_grace: e
                .offline_grace
                .map_or(defaults.offline_grace, HumanDuration::get),
            reminder,
            flap_limit: e.flap_limit.unwrap_or(defaults.flap_limit).max(2),
            flap_window: e
                .flap_window
                .map_or(defaults.flap_window, HumanDuration::get),
            max_planned_work: e
                .max_planned_work
                .map_or(defaults.max_planned_work, HumanDuration::get),
            keep_resolved: defaults.keep_resolved,
            // Checked at load (`Config::parse`): every window here is valid.
            scheduled: self
                .maintenance
                .iter()
                .filter_map(|m| m.window().ok())
                .collect(),
        }
    }
}

/// `[mqtt]`: an external MQTT 3.1.1/5 broker.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// `mqtt://host:port` or `mqtts://host:port`.
    pub url: String,
    /// MQTT client id; one collector per id (default `outpost-collector`).
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// PEM CA bundle for mqtts (default: the public web roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key for mutual TLS.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// File holding the MQTT username.
    #[serde(default)]
    pub username_file: Option<PathBuf>,
    /// File holding the MQTT password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Several collectors on one PostgreSQL: the MQTT shared-subscription group they split
    /// the sites' records through (`$share/{group}/...`; Mosquitto 2, EMQX, any MQTT 5
    /// broker). Each collector needs its own `client_id`.
    #[serde(default)]
    pub shared_group: Option<String>,
}

fn default_client_id() -> String {
    "outpost-collector".to_owned()
}

/// `[broker]`: the embedded broker.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// Listen address (default 127.0.0.1:1883).
    #[serde(default = "default_broker_listen")]
    pub listen: SocketAddr,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            listen: default_broker_listen(),
        }
    }
}

fn default_broker_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 1883))
}

/// `[store]`: the database.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://PATH` or `postgres://USER@HOST/DB`.
    #[serde(default = "default_store_url")]
    pub url: String,
    /// Raw results older than this are folded into hourly counts and deleted (default 30d).
    #[serde(default = "default_retention")]
    pub retention: HumanDuration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: default_store_url(),
            retention: default_retention(),
        }
    }
}

fn default_store_url() -> String {
    DEFAULT_STORE_URL.to_owned()
}

fn default_retention() -> HumanDuration {
    HumanDuration::from_secs(30 * 86_400)
}

/// `[ingest]`: limits on what agents may send.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Larger payloads are counted as `oversize` and dropped (default 1MiB).
    #[serde(default = "default_max_payload")]
    pub max_payload: ByteSize,
    /// Records per second each site may send on average; beyond it (and its burst) messages
    /// are counted as `rate` and dropped, so one site cannot crowd out the others (default
    /// 10000). Dropped records are not lost: the agent resends from its watermark when the
    /// watermark stalls, but only after `stall_after` and with back-off, so keep this well above
    /// what a site replaying a backlog sends.
    #[serde(default = "default_site_rate")]
    pub site_rate: u32,
    /// Records a site may send at once above `site_rate`, e.g. a backlog after an outage
    /// (default 200000: a 50-check site's 11 hours offline at one result per check per 10 s).
    #[serde(default = "default_site_burst")]
    pub site_burst: u32,
    /// Records gathered into one store transaction at most (default 8000). Larger writes
    /// cost less per record (each commit rewrites the index pages it touched) but hold more
    /// memory: the queue from the MQTT loop holds a few writes' worth of messages.
    #[serde(default = "default_batch_records")]
    pub batch_records: u32,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_payload: default_max_payload(),
            site_rate: default_site_rate(),
            site_burst: default_site_burst(),
            batch_records: default_batch_records(),
        }
    }
}

fn default_max_payload() -> ByteSize {
    ByteSize::new(1 << 20)
}

/// Default `[ingest] site_rate`: far above a site's normal few records per second, and a
/// fifth of what one 2-core collector stores (BENCHMARKS.md).
pub const DEFAULT_SITE_RATE: u32 = 10_000;

/// Default `[ingest] site_burst`.
pub const DEFAULT_SITE_BURST: u32 = 200_000;

/// Default `[ingest] batch_records`.
pub const DEFAULT_BATCH_RECORDS: u32 = 8000;

/// Largest `[ingest] batch_records`: beyond it a write's memory grows with no gain to show.
pub const MAX_BATCH_RECORDS: u32 = 100_000;

fn default_batch_records() -> u32 {
    DEFAULT_BATCH_RECORDS
}

fn default_site_rate() -> u32 {
    DEFAULT_SITE_RATE
}

fn default_site_burst() -> u32 {
    DEFAULT_SITE_BURST
}

/// `[http]`: the API and dashboard.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address (default 127.0.0.1:9480).
    #[serde(default = "default_http_listen")]
    pub listen: SocketAddr,
    /// File holding the bearer token for read calls.
    #[serde(default)]
    pub read_token_file: Option<PathBuf>,
    /// File holding the bearer token for write calls.
    #[serde(default)]
    pub write_token_file: Option<PathBuf>,
    /// Where the other collectors on the same PostgreSQL reach this one's API while it
    /// decides (default `http://` + `listen`).
    #[serde(default)]
    pub advertise_url: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: default_http_listen(),
            read_token_file: None,
            write_token_file: None,
            advertise_url: None,
        }
    }
}

impl HttpConfig {
    /// The base URL other collectors use to pass API calls to this one.
    pub fn advertise_url(&self) -> String {
        if let Some(url) = &self.advertise_url {
            return url.trim_end_matches('/').to_owned();
        }
        let ip = self.listen.ip();
        let host = match ip {
            std::net::IpAddr::V4(v4) if v4.is_unspecified() => "127.0.0.1".to_owned(),
            std::net::IpAddr::V6(v6) if v6.is_unspecified() => "[::1]".to_owned(),
            std::net::IpAddr::V4(v4) => v4.to_string(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        };
        format!("http://{host}:{}", self.listen.port())
    }
}

fn default_http_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9480))
}

/// One `[[notifier]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifierConfig {
    /// webhook, alertmanager, slack or pagerduty.
    pub kind: NotifierKind,
    /// Where to send.
    pub url: String,
    /// PagerDuty Events v2 routing key (required for pagerduty).
    #[serde(default)]
    pub routing_key: Option<String>,
    /// Re-send open, unacknowledged escalations this often.
    #[serde(default)]
    pub reminder: Option<HumanDuration>,
}

/// Which store a URL selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection string (the URL as given).
    Postgres(String),
}

impl StoreUrl {
    /// Parses `sqlite://PATH` or `postgres://…` / `postgresql://…`.
    pub fn parse(url: &str) -> Result<Self, String> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(
                    "the sqlite:// URL has no path; expected sqlite://./outpost-data/outpost.db"
                        .into(),
                );
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        Err(format!(
            "{url:?} is not a store URL; expected sqlite://PATH (like {DEFAULT_STORE_URL}) or postgres://USER@HOST/DB"
        ))
    }
}

/// An MQTT broker address parsed from `[mqtt] url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Host name or address.
    pub host: String,
    /// TCP port (default 1883, or 8883 for mqtts).
    pub port: u16,
    /// TLS (`mqtts://`).
    pub tls: bool,
}

impl BrokerUrl {
    /// Parses `mqtt://host[:port]` or `mqtts://host[:port]`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let expected = "expected mqtt://HOST:PORT or mqtts://HOST:PORT, like mqtt://127.0.0.1:1883";
        let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtts://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("mqtt://") {
            (false, rest)
        } else {
            return Err(format!("{url:?} is not a broker URL; {expected}"));
        };
        let rest = rest.trim_end_matches('/');
        let default_port = if tls { 8883 } else { 1883 };
        // [v6]:port, host:port or host.
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| format!("{url:?} has port {port:?}, not a number; {expected}"))?;
                (host, port)
            }
            _ => (rest, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains('/') || host.contains('@') {
            return Err(format!("{url:?} has no usable host; {expected}"));
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            tls,
        })
    }
}

/// Why a config was refused. Displays as `FILE:LINE:COLUMN: key `KEY`: what is wrong`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read collector config {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid config.
    #[error("{}", invalid_message(path, *line, *column, key.as_deref(), message))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending key or value.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Dotted key path, like `store.url` or `notifier[1].kind`, when known.
        key: Option<String>,
        /// What is wrong and what would be valid.
        message: String,
    },
}

fn invalid_message(
    path: &Path,
    line: usize,
    column: usize,
    key: Option<&str>,
    message: &str,
) -> String {
    match key {
        Some(key) => format!("{}:{line}:{column}: key `{key}`: {message}", path.display()),
        None => format!("{}:{line}:{column}: {message}", path.display()),
    }
}

impl Config {
    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let source = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&source, path)
    }

    /// Parses and checks `source`; `path` is only used in error messages.
    pub fn parse(source: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(source).map_err(|err| {
            let offset = err.span().map_or(0, |s| s.start);
            let message = err.message().trim_end().replace('\n', " ");
            invalid_at(source, path, offset, key_at(source, offset), message)
        })?;
        config.check().map_err(|(key_path, message)| {
            let offset = span_of(source, &key_path).unwrap_or(0);
            invalid_at(source, path, offset, Some(dotted(&key_path)), message)
        })?;
        Ok(config)
    }

    /// Checks what serde cannot: URLs, file presence, token rules, notifier needs.
    fn check(&self) -> Result<(), (Vec<Seg>, String)> {
        let key = |parts: &[Seg]| parts.to_vec();
        if let Some(mqtt) = &self.mqtt {
            let url = BrokerUrl::parse(&mqtt.url).map_err(|m| (key(&[k("mqtt"), k("url")]), m))?;
            if !url.tls && (mqtt.ca_file.is_some() || mqtt.cert_file.is_some()) {
                return Err((
                    key(&[k("mqtt"), k("url")]),
                    "ca_file/cert_file are set but the URL is mqtt://; use mqtts:// for TLS".into(),
                ));
            }
            if mqtt.cert_file.is_some() != mqtt.key_file.is_some() {
                let missing = if mqtt.cert_file.is_some() {
                    "key_file"
                } else {
                    "cert_file"
                };
                return Err((
                    key(&[k("mqtt"), k(missing)]),
                    "client TLS needs both cert_file and key_file".into(),
                ));
            }
            let files = [
                ("ca_file", &mqtt.ca_file),
                ("cert_file", &mqtt.cert_file),
                ("key_file", &mqtt.key_file),
                ("username_file", &mqtt.username_file),
                ("password_file", &mqtt.password_file),
            ];
            for (name, file) in files {
                check_file(file.as_deref()).map_err(|m| (key(&[k("mqtt"), k(name)]), m))?;
            }
            if let Some(group) = &mqtt.shared_group {
                let bad = group.is_empty()
                    || group.len() > 64
                    || group
                        .chars()
                        .any(|c| matches!(c, '/' | '+' | '#') || c.is_whitespace());
                if bad {
                    return Err((
                        key(&[k("mqtt"), k("shared_group")]),
                        format!(
                            "{group:?} is not a shared-subscription group; expected a short name \
                             without '/', '+', '#' or spaces, like \"outpost\""
                        ),
                    ));
                }
                if !self.store.url.starts_with("postgres") {
                    return Err((
                        key(&[k("mqtt"), k("shared_group")]),
                        "collectors share the load only on one PostgreSQL store; with SQLite \
                         run one collector (remove shared_group or use a postgres:// store)"
                            .into(),
                    ));
                }
            }
        }
        if let Some(url) = &self.http.advertise_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err((
                key(&[k("http"), k("advertise_url")]),
                format!("{url:?} is not an http:// or https:// URL"),
            ));
        }
        StoreUrl::parse(&self.store.url).map_err(|m| (key(&[k("store"), k("url")]), m))?;
        if self.store.retention.get().as_secs() < 3600 {
            return Err((
                key(&[k("store"), k("retention")]),
                format!(
                    "{} is too short; raw results must be kept at least \"1h\" (default \"30d\")",
                    self.store.retention
                ),
            ));
        }
        if self.ingest.max_payload.bytes() < 1024 {
            return Err((
                key(&[k("ingest"), k("max_payload")]),
                "must be at least \"1KiB\" (default \"1MiB\")".into(),
            ));
        }
        if self.ingest.site_rate == 0 {
            return Err((
                key(&[k("ingest"), k("site_rate")]),
                format!("must be at least 1 record per second (default {DEFAULT_SITE_RATE})"),
            ));
        }
        if self.ingest.site_burst == 0 {
            return Err((
                key(&[k("ingest"), k("site_burst")]),
                format!("must be at least 1 record (default {DEFAULT_SITE_BURST})"),
            ));
        }
        if !(1..=MAX_BATCH_RECORDS).contains(&self.ingest.batch_records) {
            return Err((
                key(&[k("ingest"), k("batch_records")]),
                format!(
                    "{} is out of range; must be 1 to {MAX_BATCH_RECORDS} records \
                     (default {DEFAULT_BATCH_RECORDS})",
                    self.ingest.batch_records
                ),
            ));
        }
        let http = &self.http;
        for (name, file) in [
            ("read_token_file", &http.read_token_file),
            ("write_token_file", &http.write_token_file),
        ] {
            check_file(file.as_deref()).map_err(|m| (key(&[k("http"), k(name)]), m))?;
        }
        if !http.listen.ip().is_loopback()
            && (http.read_token_file.is_none() || http.write_token_file.is_none())
        {
            return Err((
                key(&[k("http"), k("listen")]),
                format!(
                    "{} is reachable from other hosts, but the API has no tokens; set read_token_file \
                     and write_token_file, or listen on 127.0.0.1",
                    http.listen
                ),
            ));
        }
        for (i, window) in self.maintenance.iter().enumerate() {
            window
                .window()
                .map_err(|(name, m)| (key(&[k("maintenance"), Seg::Index(i), k(name)]), m))?;
        }
        for (i, notifier) in self.notifiers.iter().enumerate() {
            let at = |name| key(&[k("notifier"), Seg::Index(i), k(name)]);
            if !(notifier.url.starts_with("http://") || notifier.url.starts_with("https://")) {
                return Err((
                    at("url"),
                    format!("{:?} is not an http:// or https:// URL", notifier.url),
                ));
            }
            if notifier.kind == NotifierKind::Pagerduty && notifier.routing_key.is_none() {
                return Err((
                    at("kind"),
                    "a pagerduty notifier needs routing_key (the Events v2 integration key)".into(),
                ));
            }
            if notifier.reminder.is_some_and(|r| r.get().as_secs() < 60) {
                return Err((at("reminder"), "must be at least \"1m\"".into()));
            }
        }
        Ok(())
    }
}

fn check_file(file: Option<&Path>) -> Result<(), String> {
    match file {
        Some(path) if !path.is_file() => Err(format!(
            "{} does not exist or is not a file; create it or fix the path",
            path.display()
        )),
        _ => Ok(()),
    }
}
