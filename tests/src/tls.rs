//! A Mosquitto with the shipped production setup (TLS, client certificates, passwords and
//! `deploy/mosquitto/acl`), built by `deploy/mosquitto/make-test-ca.sh` into a temp dir and
//! started on a free port; plus rumqttc clients that connect to it with any identity.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, TlsConfiguration, Transport};

use crate::{
    broker::mosquitto_path,
    process::{Listening, free_port, wait_for_own_port},
};

/// The site ids enrolled by [`TlsBroker::start`].
pub const SITES: [&str; 2] = ["site-a", "site-b"];

/// The collector's MQTT user (and certificate CN).
pub const COLLECTOR_USER: &str = "outpost-collector";

/// What is missing for the TLS tests, if anything (`mosquitto`, `mosquitto_passwd`, `openssl`).
pub fn missing_tools() -> Option<String> {
    let missing: Vec<&str> = ["mosquitto", "mosquitto_passwd", "openssl"]
        .into_iter()
        .filter(|tool| {
            !Command::new("sh")
                .args([
                    "-c",
                    &format!("command -v {tool} || test -x /usr/sbin/{tool}"),
                ])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// Mosquitto on 127.0.0.1 with client certificate AND password required; killed on drop.
pub struct TlsBroker {
    dir: tempfile::TempDir,
    port: u16,
    identity_port: u16,
    child: Option<Child>,
}

impl TlsBroker {
    /// Generates the test CA and config and starts Mosquitto; `None` (after printing why) when
    /// mosquitto or openssl is not installed, so the caller can skip.
    pub fn start() -> Option<Self> {
        if let Some(missing) = missing_tools() {
            eprintln!("SKIPPED: the TLS tests need {missing} (apt-get install mosquitto openssl)");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir for the test CA");
        let (port, identity_port) = (free_port(), free_port());
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/mosquitto/make-test-ca.sh");
        let mut command = Command::new("bash");
        command
            .arg(&script)
            .arg(dir.path())
            .args(["--port", &port.to_string()])
            .args(["--identity-port", &identity_port.to_string()]);
        for site in SITES {
            command.args(["--site", site]);
        }
        let out = command.output().expect("running make-test-ca.sh");
        assert!(
            out.status.success(),
            "make-test-ca.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mosquitto = mosquitto_path().unwrap_or_else(|| PathBuf::from("mosquitto"));
        let child = Command::new(mosquitto)
            .arg("-c")
            .arg(dir.path().join("mosquitto.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting mosquitto");
        let mut broker = Self {
            dir,
            port,
            identity_port,
            child: Some(child),
        };
        // Its own listeners, not another test's process that took the same free port.
        for p in [port, identity_port] {
            let own = broker.child.as_mut().is_some_and(|c| {
                wait_for_own_port(c, p, Duration::from_secs(15)) == Listening::Own
            });
            assert!(
                own,
                "mosquitto does not listen on {p} itself: {}",
                broker.log()
            );
        }
        Some(broker)
    }

    /// The certificate-and-password port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The certificate-only port (`use_identity_as_username`: the CN is the user).
    pub fn identity_port(&self) -> u16 {
        self.identity_port
    }

    /// `mqtts://localhost:PORT` (the server certificate names localhost).
    pub fn url(&self) -> String {
        format!("mqtts://localhost:{}", self.port)
    }

    /// The generated folder (layout documented in make-test-ca.sh).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The test CA.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// `user`'s client certificate and key (`user` is a site id or [`COLLECTOR_USER`]).
    pub fn client_cert(&self, user: &str) -> (PathBuf, PathBuf) {
        let base = self.dir.path().join("clients");
        (
            base.join(format!("{user}.crt")),
            base.join(format!("{user}.key")),
        )
    }

    /// The first site's certificate that expired in 2020.
    pub fn expired_cert(&self) -> (PathBuf, PathBuf) {
        let base = self.dir.path().join("expired");
        (
            base.join(format!("{}.crt", SITES[0])),
            base.join(format!("{}.key", SITES[0])),
        )
    }

    /// The first site's CN signed by an unrelated CA.
    pub fn wrong_ca_cert(&self) -> (PathBuf, PathBuf) {
        let base = self.dir.path().join("wrong-ca");
        (
            base.join(format!("{}.crt", SITES[0])),
            base.join(format!("{}.key", SITES[0])),
        )
    }

    /// `user`'s username and password files.
    pub fn credential_files(&self, user: &str) -> (PathBuf, PathBuf) {
        let base = self.dir.path().join("creds");
        (
            base.join(format!("{user}.username")),
            base.join(format!("{user}.password")),
        )
    }

    /// `user`'s MQTT password.
    pub fn password(&self, user: &str) -> String {
        std::fs::read_to_string(self.credential_files(user).1).expect("reading a test password")
    }

    /// The `[mqtt]` table for `user` with every TLS and credential file (collector and agent
    /// use the same key names).
    pub fn mqtt_table(&self, user: &str) -> String {
        let (cert, key) = self.client_cert(user);
        let (username, password) = self.credential_files(user);
        format!(
            "[mqtt]\nurl = \"{}\"\nca_file = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n\
             username_file = \"{}\"\npassword_file = \"{}\"\n",
            self.url(),
            self.ca_file().display(),
            cert.display(),
            key.display(),
            username.display(),
            password.display()
        )
    }

    /// Mosquitto's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Who a test client claims to be.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// Client certificate and key (PEM files).
    pub cert: Option<(PathBuf, PathBuf)>,
    /// MQTT username and password.
    pub credentials: Option<(String, String)>,
}

impl Identity {
    /// `user`'s own certificate and password from `broker`.
    pub fn of(broker: &TlsBroker, user: &str) -> Self {
        Self {
            cert: Some(broker.client_cert(user)),
            credentials: Some((user.to_owned(), broker.password(user))),
        }
    }
}

/// rumqttc options for a TLS client of `broker` on `port`, trusting the test CA.
pub fn options(broker: &TlsBroker, port: u16, client_id: &str, who: &Identity) -> MqttOptions {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut opts = MqttOptions::new(client_id, "localhost", port);
    opts.set_keep_alive(Duration::from_secs(10));
    opts.set_max_packet_size(1 << 20, 1 << 20);
    if let Some((user, pass)) = &who.credentials {
        opts.set_credentials(user, pass);
    }
    let read = |p: &Path| std::fs::read(p).expect("reading a test certificate");
    let tls = TlsConfiguration::Simple {
        ca: read(&broker.ca_file()),
        alpn: None,
        client_auth: who.cert.as_ref().map(|(c, k)| (read(c), read(k))),
    };
    opts.set_transport(Transport::tls_with_config(tls));
    opts
}

/// Connects and waits (up to 10 s) for the broker's CONNACK: the client and its event loop,
/// or why the connection was refused.
pub async fn connect(opts: MqttOptions) -> Result<(AsyncClient, EventLoop), String> {
    let (client, mut eventloop) = AsyncClient::new(opts, 1000);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let event = tokio::time::timeout_at(deadline, eventloop.poll())
            .await
            .map_err(|_| "no CONNACK within 10 s".to_owned())?;
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack)))
                if ack.code == rumqttc::ConnectReturnCode::Success =>
            {
                return Ok((client, eventloop));
            }
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                return Err(format!("refused: {:?}", ack.code));
            }
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}
