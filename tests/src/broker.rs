//! A real MQTT broker for one test: Mosquitto when installed, else the embedded rumqttd,
//! each in its own process on a free port, so a test can stop, kill and restart it.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::process::{Listening, bin_path, free_port, wait_for_own_port};

/// Which broker implementation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// Eclipse Mosquitto (`/usr/sbin/mosquitto`).
    Mosquitto,
    /// rumqttd, as embedded in the collector, in a helper process.
    Embedded,
}

impl BrokerKind {
    /// Mosquitto when installed, unless `OUTPOST_TEST_BROKER=embedded` says otherwise.
    pub fn preferred() -> Self {
        match std::env::var("OUTPOST_TEST_BROKER").as_deref() {
            Ok("embedded") => Self::Embedded,
            Ok("mosquitto") => Self::Mosquitto,
            _ if mosquitto_path().is_some() => Self::Mosquitto,
            _ => Self::Embedded,
        }
    }
}

pub(crate) fn mosquitto_path() -> Option<PathBuf> {
    [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// A broker process on 127.0.0.1:`port`, killed on drop.
pub struct Broker {
    kind: BrokerKind,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Another address Mosquitto also listens on (a test site's side of a veth link).
    also_on: Option<std::net::Ipv4Addr>,
}

impl Broker {
    /// Starts the preferred broker on a free port.
    pub fn start() -> Self {
        Self::start_kind(BrokerKind::preferred())
    }

    /// Starts a broker of `kind` on a free port.
    pub fn start_kind(kind: BrokerKind) -> Self {
        Self::start_with(kind, None)
    }

    /// Starts Mosquitto on a free port of 127.0.0.1 and of `addr` too (the host's address on
    /// a test site's link), so an agent inside that site's namespace reaches it.
    pub fn start_also_on(addr: std::net::Ipv4Addr) -> Self {
        Self::start_with(BrokerKind::Mosquitto, Some(addr))
    }

    fn start_with(kind: BrokerKind, also_on: Option<std::net::Ipv4Addr>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the broker");
        let mut broker = Self {
            kind,
            port: free_port(),
            dir,
            child: None,
            also_on,
        };
        // Another test may take the same free port between our pick and the broker's bind.
        for _ in 0..5 {
            if broker.launch() != Listening::Taken {
                break;
            }
            broker.kill();
            broker.port = free_port();
        }
        broker.assert_listening();
        broker
    }

    /// The broker's kind.
    pub fn kind(&self) -> BrokerKind {
        self.kind
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mqtt://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// The broker's own folder (config, persistence, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Stops the broker gracefully (SIGTERM; Mosquitto saves its persistence file).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            for _ in 0..100 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the broker with SIGKILL: no goodbye, no persistence flush.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// (Re)starts the broker on the same port and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.launch();
        self.assert_listening();
    }

    fn assert_listening(&mut self) {
        let own = self.child.as_mut().is_some_and(|c| {
            wait_for_own_port(c, self.port, Duration::from_secs(1)) == Listening::Own
        });
        assert!(
            own,
            "{:?} broker does not listen on {} itself (log: {})",
            self.kind,
            self.port,
            std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default()
        );
    }

    /// Starts the process and waits until it (not another process) listens on the port.
    fn launch(&mut self) -> Listening {
        self.stop();
        let log =
            std::fs::File::create(self.dir.path().join("broker.log")).expect("broker log file");
        let mut command = match self.kind {
            BrokerKind::Mosquitto => {
                let conf = self.dir.path().join("mosquitto.conf");
                let mut text = mosquitto_config(self.port, self.dir.path());
                if let Some(addr) = self.also_on {
                    use std::fmt::Write as _;
                    let _ = writeln!(text, "listener {} {addr}", self.port);
                }
                std::fs::write(&conf, text).expect("writing mosquitto.conf");
                let mut c = Command::new(mosquitto_path().expect("mosquitto is installed"));
                c.arg("-c").arg(conf);
                c
            }
            BrokerKind::Embedded => {
                let mut c = Command::new(bin_path("outpost-test-broker"));
                c.arg(format!("127.0.0.1:{}", self.port));
                c
            }
        };
        let stderr = log.try_clone().expect("log file handle");
        let child = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .expect("starting the broker");
        // A port just released may take a moment; the broker retries nothing, so we wait.
        let child = self.child.insert(child);
        wait_for_own_port(child, self.port, Duration::from_secs(15))
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn mosquitto_config(port: u16, dir: &Path) -> String {
    format!(
        "listener {port} 127.0.0.1\n\
         allow_anonymous true\n\
         persistence true\n\
         persistence_location {}/\n\
         autosave_interval 1\n\
         max_queued_messages 1000000\n\
         max_inflight_messages 100\n\
         log_dest stderr\n\
         log_type error\n\
         log_type warning\n",
        dir.display()
    )
}
