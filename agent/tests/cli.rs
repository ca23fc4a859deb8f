//! The built `outpost-agent` binary: `check --json`, `validate` and `status` exit codes.

use std::process::Command;

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_outpost-agent"))
}

fn write_config(dir: &std::path::Path, checks: &str) -> std::path::PathBuf {
    let path = dir.join("agent.toml");
    let text = format!(
        "site = \"plant-leeds\"\nagent = \"line3-pc\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:1\"\n\
         [outbox]\ndir = \"{}\"\n{checks}",
        dir.join("outbox").display()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

#[test]
fn check_json_prints_every_result_and_exits_by_status() {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let ok_checks = format!(
        "[[check]]\nid = \"plc\"\nkind = \"tcp\"\ntitle = \"The PLC\"\ntarget = \"127.0.0.1:{port}\"\n\
         [[check]]\nid = \"host\"\nkind = \"uptime\"\n"
    );
    let config = write_config(dir.path(), &ok_checks);
    let out = agent()
        .args(["check", "--json", "--config"])
        .arg(&config)
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let results = results.as_array().expect("an array");
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["check"], "plc");
    assert_eq!(results[0]["kind"], "tcp");
    assert_eq!(results[0]["status"], "ok");
    assert!(results[0]["metrics"]["connect_ms"].is_number());
    assert_eq!(results[1]["check"], "host");

    let failing = format!(
        "{ok_checks}[[check]]\nid = \"backup\"\nkind = \"backup\"\npath = \"{}\"\nmax_age = \"1d\"\n",
        dir.path().join("missing").display()
    );
    let config = write_config(dir.path(), &failing);
    let out = agent()
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("FAIL") && text.contains("is missing"),
        "{text}"
    );
}

#[test]
fn bad_config_exits_2_with_file_line_and_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        "[[check]]\nid = \"r\"\nkind = \"ping\"\ntarget = \"127.0.0.1\"\ncuont = 3\n",
    );
    for command in ["validate", "check", "run"] {
        let out = agent()
            .args([command, "--config"])
            .arg(&config)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{command}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{}:11", config.display())),
            "{command}: {err}"
        );
        assert!(
            err.contains("cuont") && err.contains("`count`"),
            "{command}: {err}"
        );
    }
    let good = write_config(dir.path(), "");
    let out = agent()
        .args(["validate", "--config"])
        .arg(&good)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn status_without_a_running_agent_says_so() {
    let port = outpost_tests::free_port();
    let out = agent()
        .args(["status", "--url", &format!("http://127.0.0.1:{port}")])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no agent answers"), "{err}");
}

#[test]
fn status_finds_the_page_from_the_config() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = outpost_tests::free_port();
    let config = write_config(dir.path(), "");
    let text = std::fs::read_to_string(&config).expect("read config");
    let text = format!("{text}\n[local]\nlisten = \"127.0.0.1:{port}\"\n");
    std::fs::write(&config, text).expect("write config");
    let out = agent()
        .args(["status", "--config"])
        .arg(&config)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("no agent answers at http://127.0.0.1:{port}")),
        "{err}"
    );
}

#[test]
fn run_tells_systemd_it_is_ready_and_alive() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("notify.sock");
    let listener = UnixDatagram::bind(&socket).expect("bind the notify socket");
    listener
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    let config = write_config(dir.path(), "");
    let text = std::fs::read_to_string(&config).expect("read config");
    let port = outpost_tests::free_port();
    std::fs::write(
        &config,
        format!("{text}\n[local]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .expect("write config");
    let mut child = agent()
        .args(["run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket)
        .env("WATCHDOG_USEC", "1000000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts");
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while got.len() < 2 {
        let Ok(n) = listener.recv(&mut buf) else {
            break;
        };
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        got,
        ["READY=1", "WATCHDOG=1"],
        "with the broker unreachable too"
    );
}
