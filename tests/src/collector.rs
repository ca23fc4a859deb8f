//! The built `outpost-collector` binary as a child process with a generated config, which a
//! test can kill (-9) and restart with the same store.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::process::{Listening, bin_path, free_port, wait_for_own_port};

/// A collector process; killed on drop.
pub struct CollectorProcess {
    dir: tempfile::TempDir,
    http_port: u16,
    child: Option<Child>,
}

impl CollectorProcess {
    /// Writes `config` (TOML; `{dir}` and `{http}` are replaced by the data folder and the HTTP
    /// listen address) and starts the collector; waits until its HTTP port answers.
    pub fn start(config: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the collector");
        let mut collector = Self {
            dir,
            http_port: 0,
            child: None,
        };
        // Another test may take the same free port between our pick and the collector's bind.
        for _ in 0..5 {
            collector.http_port = free_port();
            let text = config
                .replace("{dir}", &collector.dir.path().display().to_string())
                .replace("{http}", &format!("127.0.0.1:{}", collector.http_port));
            std::fs::write(collector.dir.path().join("collector.toml"), text)
                .expect("writing collector.toml");
            if collector.launch() != Listening::Taken {
                break;
            }
            collector.kill();
        }
        collector.wait_ready();
        collector
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The collector's folder (config, store, log).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("collector.log")).unwrap_or_default()
    }

    /// The body of `GET /healthz` (empty when it does not answer).
    pub fn health(&self) -> String {
        use std::io::{Read as _, Write as _};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.http_port)) else {
            return String::new();
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n");
        let mut body = String::new();
        let _ = stream.read_to_string(&mut body);
        body
    }

    /// SIGKILL: no goodbye, no flush.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait (graceful shutdown).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            for _ in 0..200 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// (Re)starts it with the same config and data.
    pub fn restart(&mut self) {
        self.launch();
        self.wait_ready();
    }

    /// Starts the process and waits until it (not another process) serves HTTP on its port.
    fn launch(&mut self) -> Listening {
        self.kill();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("collector.log"))
            .expect("collector log");
        let child = Command::new(bin_path("outpost-collector"))
            .args(["run", "--config"])
            .arg(self.dir.path().join("collector.toml"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("starting outpost-collector");
        let child = self.child.insert(child);
        wait_for_own_port(child, self.http_port, Duration::from_secs(30))
    }

    /// Waits until it serves HTTP itself and is subscribed on MQTT.
    fn wait_ready(&mut self) {
        let own = self.child.as_mut().is_some_and(|c| {
            wait_for_own_port(c, self.http_port, Duration::from_secs(1)) == Listening::Own
        });
        assert!(
            own,
            "the collector does not serve HTTP on {} itself: {}",
            self.http_port,
            self.log()
        );
        // Ready means subscribed: records published before that would be lost (not retained).
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !self.health().contains("\"mqtt\":\"ready\"") {
            assert!(
                std::time::Instant::now() < deadline,
                "the collector did not get ready on MQTT: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for CollectorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
