//! How ingest connects and batches, built from the config (credential and TLS files read here).

use std::{path::Path, sync::Arc, time::Duration};

use outpost_shared::{Presence, encode, topic::COLLECTOR_STATE};
use rumqttc::{LastWill, MqttOptions, QoS, TlsConfiguration, Transport};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use crate::config::{BrokerUrl, Config};

/// Why ingest cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A credential or TLS file could not be read.
    #[error("cannot read {what} {}: {reason}", path.display())]
    File {
        /// Which setting.
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The broker URL is not usable.
    #[error("[mqtt] url: {0}")]
    Url(String),
    /// TLS could not be set up with the given files.
    #[error("TLS for MQTT: {0}")]
    Tls(String),
}

/// Everything ingest needs to connect and batch.
#[derive(Clone)]
pub struct IngestSettings {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// MQTT client id (one persistent session per id).
    pub client_id: String,
    /// The shared-subscription group records are split through, when several collectors run.
    pub shared_group: Option<String>,
    /// Username and password, when configured.
    pub credentials: Option<(String, String)>,
    /// TLS, for mqtts.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Larger payloads are dropped as `oversize`.
    pub max_payload: usize,
    /// Records per second each site may send on average; beyond it messages are `rate`.
    pub site_rate: u32,
    /// Records each site may send at once above `site_rate`.
    pub site_burst: u32,
    /// How long the writer gathers messages before a store write.
    pub batch_window: Duration,
    /// A store write is started once this many records are gathered.
    pub batch_records: usize,
    /// Room (payload bytes plus a fixed overhead each) of the queue between the MQTT loop
    /// and the writer: enough for a few store writes of one-record messages, so the loop
    /// reads on while a write commits.
    pub queue_bytes: usize,
    /// MQTT keep-alive.
    pub keep_alive: Duration,
}

impl std::fmt::Debug for IngestSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("shared_group", &self.shared_group)
            .field("tls", &self.tls.is_some())
            .field("max_payload", &self.max_payload)
            .field("site_rate", &self.site_rate)
            .field("site_burst", &self.site_burst)
            .finish_non_exhaustive()
    }
}

impl IngestSettings {
    /// Plain MQTT to `host:port` with the default limits (tests, embedded broker).
    pub fn plain(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            client_id: "outpost-collector".into(),
            shared_group: None,
            credentials: None,
            tls: None,
            max_payload: 1 << 20,
            site_rate: crate::config::DEFAULT_SITE_RATE,
            site_burst: crate::config::DEFAULT_SITE_BURST,
            batch_window: Duration::from_millis(5),
            batch_records: crate::config::DEFAULT_BATCH_RECORDS as usize,
            queue_bytes: queue_bytes(crate::config::DEFAULT_BATCH_RECORDS),
            keep_alive: Duration::from_secs(30),
        }
    }

    /// From the config: `[mqtt]` when present, else the embedded broker's `[broker] listen`
    /// (an unspecified address is reached over loopback).
    pub fn from_config(config: &Config) -> Result<Self, IngestError> {
        let mut settings = match &config.mqtt {
            None => {
                let listen = config.broker.listen;
                let host = if listen.ip().is_unspecified() {
                    if listen.is_ipv4() { "127.0.0.1" } else { "::1" }.to_owned()
                } else {
                    listen.ip().to_string()
                };
                Self::plain(host, listen.port())
            }
            Some(mqtt) => {
                let url = BrokerUrl::parse(&mqtt.url).map_err(IngestError::Url)?;
                if !url.tls && !is_loopback(&url.host) {
                    tracing::warn!(
                        url = %mqtt.url,
                        "plain MQTT to another machine: results and the MQTT password cross the \
                         network unencrypted; use mqtts://"
                    );
                }
                for secret in [&mqtt.password_file, &mqtt.key_file].into_iter().flatten() {
                    outpost_agent::warn_if_world_readable(secret);
                }
                let mut s = Self::plain(url.host, url.port);
                s.client_id.clone_from(&mqtt.client_id);
                s.shared_group.clone_from(&mqtt.shared_group);
                if let Some(user_file) = &mqtt.username_file {
                    let user = read_secret("username_file", user_file)?;
                    let pass = match &mqtt.password_file {
                        Some(p) => read_secret("password_file", p)?,
                        None => String::new(),
                    };
                    s.credentials = Some((user, pass));
                }
                if url.tls {
                    s.tls = Some(Arc::new(tls_config(
                        mqtt.ca_file.as_deref(),
                        mqtt.cert_file.as_deref().zip(mqtt.key_file.as_deref()),
                    )?));
                }
                s
            }
        };
        settings.max_payload =
            usize::try_from(config.ingest.max_payload.bytes()).unwrap_or(usize::MAX);
        settings.site_rate = config.ingest.site_rate;
        settings.site_burst = config.ingest.site_burst;
        settings.batch_records = config.ingest.batch_records as usize;
        settings.queue_bytes = queue_bytes(config.ingest.batch_records);
        Ok(settings)
    }

    /// rumqttc options: persistent session, manual acks, the collector's Last Will. With a
    /// shared group the session is clean: a broker would otherwise keep handing a stopped
    /// collector its share of the records; the others take them, and agents resend whatever
    /// no collector acknowledged.
    pub fn mqtt_options(&self) -> MqttOptions {
        let mut options = MqttOptions::new(&self.client_id, &self.host, self.port);
        options
            .set_clean_session(self.shared_group.is_some())
            .set_manual_acks(true)
            // While this many of its own QoS 1 publishes (ack watermarks, escalation lists)
            // await the broker's PUBACK, rumqttc takes no request at all, PUBACKs included:
            // at the default of 100 a burst of one-record messages left most of them
            // unacknowledged. One ack per agent written fits several writes of a large fleet.
            .set_inflight(4096)
            .set_keep_alive(self.keep_alive)
            .set_last_will(LastWill::new(
                COLLECTOR_STATE,
                encode(&Presence::OFFLINE),
                QoS::AtLeastOnce,
                true,
            ));
        // A packet over rumqttc's own limit would break the connection and be redelivered
        // forever; accept well beyond max_payload so oversize is counted and dropped instead.
        let incoming = self.max_payload.saturating_mul(4).max(16 << 20);
        options.set_max_packet_size(incoming, 1 << 20);
        if let Some((user, pass)) = &self.credentials {
            options.set_credentials(user, pass);
        }
        if let Some(tls) = &self.tls {
            options.set_transport(Transport::Tls(TlsConfiguration::Rustls(tls.clone())));
        }
        options
    }
}

/// True for `localhost` and loopback addresses, where plain MQTT never leaves the machine.
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn read_secret(what: &'static str, path: &Path) -> Result<String, IngestError> {
    let text = std::fs::read_to_string(path).map_err(|e| IngestError::File {
        what,
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

fn file_err(
    what: &'static str,
    path: &Path,
) -> impl Fn(rustls::pki_types::pem::Error) -> IngestError + use<> {
    let path = path.to_owned();
    move |e| IngestError::File {
        what,
        path: path.clone(),
        reason: format!("{e}; expected PEM"),
    }
}

fn tls_config(
    ca_file: Option<&Path>,
    client: Option<(&Path, &Path)>,
) -> Result<rustls::ClientConfig, IngestError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path).map_err(file_err("ca_file", path))? {
                let cert = cert.map_err(file_err("ca_file", path))?;
                roots
                    .add(cert)
                    .map_err(|e| IngestError::Tls(format!("ca_file {}: {e}", path.display())))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    match client {
        None => Ok(builder.with_no_client_auth()),
        Some((cert_path, key_path)) => {
            let certs = CertificateDer::pem_file_iter(cert_path)
                .map_err(file_err("cert_file", cert_path))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(file_err("cert_file", cert_path))?;
            let key =
                PrivateKeyDer::from_pem_file(key_path).map_err(file_err("key_file", key_path))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| IngestError::Tls(format!("client certificate: {e}")))
        }
    }
}

/// Room of the queue between the MQTT loop and the writer for writes of `batch_records`:
/// 2 KiB per record (about 16 MB at the default 8000), at least 1 MiB. A one-record message
/// costs its payload plus the queue's 512-byte overhead, so this holds two to four writes.
fn queue_bytes(batch_records: u32) -> usize {
    (batch_records as usize * 2048).max(1 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_read_but_never_shown() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (user, pass) = (dir.path().join("user"), dir.path().join("pass"));
        std::fs::write(&user, "outpost-collector\n").expect("write");
        std::fs::write(&pass, "s3cret-pa55\n").expect("write");
        let text = format!(
            "[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\nusername_file = \"{}\"\npassword_file = \"{}\"\n",
            user.display(),
            pass.display()
        );
        let config = Config::parse(&text, Path::new("c.toml")).expect("valid");
        let settings = IngestSettings::from_config(&config).expect("settings");
        assert_eq!(
            settings.credentials,
            Some(("outpost-collector".into(), "s3cret-pa55".into()))
        );
        assert!(!format!("{settings:?}").contains("s3cret"));
    }

    #[test]
    fn loopback_hosts() {
        for (host, local) in [
            ("localhost", true),
            ("127.0.0.1", true),
            ("::1", true),
            ("10.0.0.5", false),
            ("mqtt.example.com", false),
        ] {
            assert_eq!(is_loopback(host), local, "{host}");
        }
    }
}
