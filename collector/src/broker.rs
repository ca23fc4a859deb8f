//! The embedded MQTT broker (rumqttd) used when the collector config has no `[mqtt]` section.

use std::{collections::HashMap, net::SocketAddr, thread};

/// Why the embedded broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The listen address is in use or not allowed.
    #[error(
        "cannot listen for MQTT on {addr}: {source}. Another broker (Mosquitto?) may be using it: \
         stop it, set [broker] listen to a free address, or point [mqtt] url at that broker"
    )]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// rumqttd refused its configuration.
    #[error("the embedded MQTT broker did not start: {0}")]
    Start(String),
}

/// Largest payload the embedded broker accepts (bytes); larger publishes are refused.
pub const MAX_PAYLOAD: usize = 1 << 20;

fn config(listen: SocketAddr) -> rumqttd::Config {
    let connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: MAX_PAYLOAD,
        max_inflight_count: 500,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = rumqttd::ServerSettings {
        name: "outpost-v4".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 0,
        connections,
    };
    rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: 20_000,
            max_outgoing_packet_count: 200,
            max_segment_size: 100 * 1024 * 1024,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: rumqttd::Strategy::default(),
        },
        v4: Some(HashMap::from([("1".to_owned(), server)])),
        ..rumqttd::Config::default()
    }
}

/// Starts rumqttd on `listen` in background threads; it runs until the process exits.
/// The address is tried first so a taken port gives a clear error instead of a log line.
pub fn start(listen: SocketAddr) -> Result<(), BrokerError> {
    drop(
        std::net::TcpListener::bind(listen).map_err(|source| BrokerError::Bind {
            addr: listen,
            source,
        })?,
    );
    let mut broker = rumqttd::Broker::new(config(listen));
    thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
        })
        .map_err(|e| BrokerError::Start(e.to_string()))?;
    Ok(())
}
