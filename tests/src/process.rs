//! Processes and ports: find a free port, wait for a listener, locate the workspace's binaries.

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let listener =
        TcpListener::bind("127.0.0.1:0").expect("binding port 0 on loopback always works");
    listener
        .local_addr()
        .expect("a bound listener has an address")
        .port()
}

/// Waits until something accepts TCP connections on `port` (loopback), or `timeout` passes.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// How waiting for a child's own listener ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listening {
    /// The child holds the listening socket.
    Own,
    /// Another process holds the port (another test took the same free port first), or the
    /// child exited (typically: address in use).
    Taken,
    /// Nobody listens on the port yet.
    TimedOut,
}

/// Waits until process `pid` itself listens on TCP `port`. A bare connect would also succeed
/// against another test's process that grabbed the same "free" port, and the test would
/// then talk to the wrong broker or collector.
pub fn wait_for_own_port(
    child: &mut std::process::Child,
    port: u16,
    timeout: Duration,
) -> Listening {
    let deadline = Instant::now() + timeout;
    let mut foreign_since: Option<Instant> = None;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return Listening::Taken;
        }
        let holders = listening_inodes(port);
        if !holders.is_empty() {
            if owns_socket(child.id(), &holders) {
                return Listening::Own;
            }
            // Someone else listens; give our child a moment to fail or to bind beside it.
            let since = *foreign_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_secs(2) {
                return Listening::Taken;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Listening::TimedOut
}

/// Inodes of the sockets listening on TCP `port` (IPv4 and IPv6), from `/proc/net/tcp*`.
fn listening_inodes(port: u16) -> Vec<String> {
    let wanted = format!(":{port:04X}");
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            if fields.len() > 9 && fields[1].ends_with(&wanted) && fields[3] == "0A" {
                out.push(fields[9].to_owned());
            }
        }
    }
    out
}

/// Whether process `pid` has one of the socket `inodes` open.
fn owns_socket(pid: u32, inodes: &[String]) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| {
            let target = target.to_string_lossy();
            inodes.iter().any(|i| target == format!("socket:[{i}]"))
        })
    })
}

/// The path of a binary built from this workspace (`target/debug/NAME`), building it if missing.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("a test knows its own executable");
    // target/debug/deps/test-xxxx → target/debug
    let dir = exe
        .ancestors()
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n == "debug" || n == "release")
        })
        .map_or_else(
            || exe.parent().expect("executable has a folder").to_path_buf(),
            PathBuf::from,
        );
    let path = dir.join(name);
    if !path.exists() {
        let package = match name {
            "outpost-agent" => "outpost-agent",
            "outpost-collector" => "outpost-collector",
            _ => "outpost-tests",
        };
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", package, "--bin", name])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building {name} failed");
    }
    path
}
