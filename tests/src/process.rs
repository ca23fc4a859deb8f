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
