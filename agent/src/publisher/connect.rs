//! Building the MQTT connection: client id, Last Will, credentials from files, TLS; and the
//! birth message with the host's facts.

use std::{path::Path, sync::Arc, time::Duration};

use outpost_shared::{AgentTopic, Birth, HostFacts, PROTOCOL_VERSION, Presence, TopicKind, encode};
use rumqttc::{LastWill, MqttOptions, QoS, TlsConfiguration, Transport};

use crate::config::{Config, MqttConfig, MqttScheme};

/// Why the connection could not be set up (before any network traffic).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A credentials or certificate file could not be read.
    #[error("cannot read {what} {}: {source}", path.display())]
    File {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, SetupError> {
    std::fs::read(path).map_err(|source| SetupError::File {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// A secret file's content without the trailing newline editors add.
fn read_secret(what: &'static str, path: &Path) -> Result<String, SetupError> {
    let bytes = read(what, path)?;
    Ok(String::from_utf8_lossy(&bytes)
        .trim_end_matches(['\r', '\n'])
        .to_owned())
}

/// MQTT options for this agent: persistent session, Last Will "offline", TLS and credentials.
pub fn mqtt_options(
    mqtt: &MqttConfig,
    client_id: &str,
    state_topic: &str,
    keep_alive: Duration,
) -> Result<MqttOptions, SetupError> {
    let mut opts = MqttOptions::new(client_id, mqtt.host.clone(), mqtt.port);
    opts.set_clean_session(false);
    opts.set_keep_alive(keep_alive);
    // Batches of a few hundred records are a few hundred KB; escalation lists are smaller.
    opts.set_max_packet_size(4 << 20, 16 << 20);
    opts.set_last_will(LastWill::new(
        state_topic,
        encode(&Presence::OFFLINE),
        QoS::AtLeastOnce,
        true,
    ));
    if let Some(user_file) = &mqtt.username_file {
        let user = read_secret("the MQTT user name file", user_file)?;
        let password = match &mqtt.password_file {
            Some(p) => {
                crate::warn_if_world_readable(p);
                read_secret("the MQTT password file", p)?
            }
            None => String::new(),
        };
        opts.set_credentials(user, password);
    }
    if mqtt.scheme == MqttScheme::Tls {
        crate::install_tls_provider();
        let tls = if let Some(ca_file) = &mqtt.ca_file {
            let client_auth = match (&mqtt.cert_file, &mqtt.key_file) {
                (Some(cert), Some(key)) => {
                    crate::warn_if_world_readable(key);
                    Some((
                        read("the client certificate file", cert)?,
                        read("the client key file", key)?,
                    ))
                }
                _ => None,
            };
            TlsConfiguration::Simple {
                ca: read("the CA file", ca_file)?,
                alpn: None,
                client_auth,
            }
        } else {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            TlsConfiguration::Rustls(Arc::new(
                rustls::ClientConfig::builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            ))
        };
        opts.set_transport(Transport::tls_with_config(tls));
    }
    Ok(opts)
}

/// The host's facts for the birth message.
pub fn host_facts(timezone: &str) -> HostFacts {
    let mut system = sysinfo::System::new();
    system.refresh_memory();
    HostFacts {
        hostname: sysinfo::System::host_name().unwrap_or_default(),
        os: sysinfo::System::long_os_version().unwrap_or_default(),
        kernel: sysinfo::System::kernel_version().unwrap_or_default(),
        arch: sysinfo::System::cpu_arch(),
        cpus: std::thread::available_parallelism()
            .map_or(1, std::num::NonZero::get)
            .try_into()
            .unwrap_or(u32::MAX),
        memory_bytes: system.total_memory(),
        timezone: timezone.to_owned(),
    }
}

/// The retained birth message.
pub fn birth(config: &Config, epoch: u64, started_at: jiff::Timestamp) -> Birth {
    let boot = i64::try_from(sysinfo::System::boot_time()).unwrap_or(0);
    Birth {
        v: PROTOCOL_VERSION,
        site: config.site.clone(),
        agent: config.agent.clone(),
        version: crate::VERSION.to_owned(),
        epoch,
        boot_time: jiff::Timestamp::from_second(boot).unwrap_or(jiff::Timestamp::UNIX_EPOCH),
        started_at,
        host: host_facts(&config.timezone_name),
        checks: config.catalogue(),
    }
}

/// This agent's topic of `kind`.
pub fn topic(config: &Config, kind: TopicKind) -> String {
    AgentTopic::new(&config.site, &config.agent, kind).to_string()
}

/// A connection error in words, with what to do.
pub fn explain(mqtt: &MqttConfig, err: &rumqttc::ConnectionError) -> String {
    use rumqttc::{ConnectReturnCode as Code, ConnectionError as E};
    let at = format!("{}:{}", mqtt.host, mqtt.port);
    match err {
        E::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("The broker at {at} refused the connection (is it running?)")
        }
        E::Io(io) => format!("Cannot reach the broker at {at}: {io}"),
        E::NetworkTimeout => format!("The broker at {at} did not answer in time"),
        E::Tls(tls) => format!("The secure connection to {at} failed: {tls}"),
        E::ConnectionRefused(Code::BadUserNamePassword | Code::NotAuthorized) => format!(
            "The broker at {at} refused this agent's user name or password (see username_file, password_file)"
        ),
        E::ConnectionRefused(code) => {
            format!("The broker at {at} refused the connection: {code:?}")
        }
        other => format!("Connection to the broker at {at} lost: {other}"),
    }
}
