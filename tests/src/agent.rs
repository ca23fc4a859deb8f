//! The built `outpost-agent run` binary as a child process with a generated config, which a
//! test can stop, `kill -9` and restart with the same outbox.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::Duration,
};

use crate::process::{bin_path, free_port};

/// An agent process; killed on drop.
pub struct AgentProcess {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Runs inside this network namespace (a test site), not on the host.
    netns: Option<String>,
}

impl AgentProcess {
    /// Writes `config` (TOML; `{outbox}` and `{local}` are replaced by the outbox folder and a
    /// free loopback address for the site page) and starts the agent.
    pub fn start(config: &str) -> Self {
        let mut agent = Self::prepare(config);
        agent.restart();
        agent
    }

    /// Writes the config like [`AgentProcess::start`] but does not start the process.
    pub fn prepare(config: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the agent");
        let text = config
            .replace("{outbox}", &dir.path().join("outbox").display().to_string())
            .replace("{local}", &format!("127.0.0.1:{}", free_port()));
        std::fs::write(dir.path().join("agent.toml"), text).expect("writing agent.toml");
        Self {
            dir,
            child: None,
            netns: None,
        }
    }

    /// Like [`AgentProcess::start`], inside the network namespace `netns` (`ip netns exec`,
    /// which becomes the agent: signals reach it).
    pub fn start_in(netns: &str, config: &str) -> Self {
        let mut agent = Self::prepare(config);
        agent.netns = Some(netns.to_owned());
        agent.restart();
        agent
    }

    /// The agent's folder (config, log, outbox).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The outbox folder (`outbox` inside [`AgentProcess::dir`]).
    pub fn outbox_dir(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }

    /// Bytes of all files in the outbox folder right now.
    pub fn outbox_bytes(&self) -> u64 {
        dir_bytes(&self.outbox_dir())
    }

    /// Its log so far (all runs).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// Whether a process was started and not stopped or killed by the test.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// If the process ended on its own, how.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGKILL: no goodbye, no flush.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait (graceful: it says `offline` and disconnects); returns the exit status.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        for _ in 0..300 {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    /// (Re)starts it with the same config and outbox (kills a running one first).
    pub fn restart(&mut self) {
        self.kill();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("agent.log"))
            .expect("agent log");
        let mut command = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(bin_path("outpost-agent"));
                c
            }
            None => Command::new(bin_path("outpost-agent")),
        };
        let child = command
            .args(["run", "--config"])
            .arg(self.dir.path().join("agent.toml"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("starting outpost-agent");
        self.child = Some(child);
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Bytes of the regular files directly in `dir` (0 when it does not exist).
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter_map(|e| e.metadata().ok())
            .filter(std::fs::Metadata::is_file)
            .map(|m| m.len())
            .sum()
    })
}
