//! Config files: a full valid file, and mistakes that must name the file, the line and the key
//! and say what would be valid.

use std::path::Path;

use outpost_agent::config::{Config, MqttScheme};

const HEAD: &str = "site = \"plant-leeds\"\nagent = \"line3-pc\"\ntimezone = \"Europe/London\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\n";

#[test]
fn the_design_example_is_valid() {
    let text = r#"
site = "plant-leeds"
agent = "line3-pc"
[mqtt]
url = "mqtts://broker.example.invalid"
ca_file = "/etc/outpost/ca.pem"
[local]
listen = "0.0.0.0:9470"
token_file = "/etc/outpost/token"
[outbox]
dir = "/var/lib/outpost/outbox"
max_size = "256MB"
max_age = "7d"
[[check]]
id = "router"
kind = "ping"
title = "Main router"
target = "192.168.1.1"
interval = "10s"
fail_after = 3
local_window = "15m"
runbook = ["Look at the router's lights: is the power light on?",
           "Switch the router off, wait 30 seconds, switch it on."]
[[check]]
id = "nas"
kind = "tcp"
target = "192.168.1.20:445"
depends_on = ["router"]
[[check]]
id = "cages"
kind = "checklist"
title = "Robot cages locked"
due = "18:00"
days = ["mon", "tue", "wed", "thu", "fri"]
"#;
    let config = Config::parse(Path::new("agent.toml"), text).expect("valid");
    assert_eq!(config.client_id(), "plant-leeds.line3-pc");
    assert_eq!(config.mqtt.scheme, MqttScheme::Tls);
    assert_eq!(
        (config.mqtt.host.as_str(), config.mqtt.port),
        ("broker.example.invalid", 8883)
    );
    assert!(!config.mqtt.is_loopback());
    assert_eq!(config.local.listen.port(), 9470);
    assert_eq!(config.outbox.max_size.bytes(), 256_000_000);
    let catalogue = config.catalogue();
    assert_eq!(catalogue.len(), 3);
    let router = &catalogue[0];
    assert_eq!((router.fail_after, router.recover_after), (3, 2));
    assert_eq!(router.local_window.to_string(), "15m");
    assert_eq!(router.runbook.len(), 2);
    assert_eq!(router.thresholds.get("fail_loss_pct"), Some(&100.0));
    assert_eq!(catalogue[1].title, "nas", "title defaults to the id");
    assert_eq!(catalogue[1].depends_on[0].as_str(), "router");
}

#[test]
fn the_agent_id_defaults_to_the_host_name() {
    let text = "site = \"s\"\n[mqtt]\nurl = \"mqtt://localhost\"\n";
    let config = Config::parse(Path::new("a.toml"), text).expect("valid");
    assert!(!config.agent.as_str().is_empty());
    assert!(config.mqtt.is_loopback());
    assert_eq!(config.mqtt.port, 1883);
}

/// (name, text after HEAD or whole file, line, key in the message, words in the message)
fn cases() -> Vec<(&'static str, String, usize, &'static str, &'static str)> {
    let h = |rest: &str| format!("{HEAD}{rest}");
    let ping = "[[check]]\nid = \"router\"\nkind = \"ping\"\ntarget = \"10.0.0.1\"\n";
    vec![
        (
            "typo in a check key",
            h("[[check]]\nid = \"router\"\nkind = \"ping\"\ntargt = \"10.0.0.1\"\n"),
            9,
            "targt",
            "expected one of `target`",
        ),
        (
            "typo in a top-level key",
            format!("{HEAD}[outbx]\ndir = \"/x\"\n"),
            6,
            "",
            "unknown field `outbx`",
        ),
        (
            "typo in mqtt",
            "site = \"s\"\n[mqtt]\nurl = \"mqtt://h\"\nuser_file = \"/x\"\n".into(),
            4,
            "",
            "`username_file`",
        ),
        (
            "a keep-alive MQTT cannot carry",
            "site = \"s\"\n[mqtt]\nurl = \"mqtt://h\"\nkeep_alive = \"2h\"\n".into(),
            4,
            "mqtt.keep_alive",
            "expected \"1s\" to \"1h\"",
        ),
        (
            "protected reads without a token",
            format!("{HEAD}[local]\nprotect_reads = true\n"),
            7,
            "local.protect_reads",
            "set token_file too",
        ),
        (
            "a threshold that is not a number",
            h(&format!("{ping}warn_rtt_ms = nan\n")),
            10,
            "warn_rtt_ms",
            "expected a finite number",
        ),
        (
            "unknown kind",
            h("[[check]]\nid = \"x\"\nkind = \"pong\"\n"),
            8,
            "kind",
            "expected one of ping, tcp, http",
        ),
        (
            "bad duration",
            h(&format!("{ping}interval = \"10x\"\n")),
            10,
            "interval",
            "expected a number with a unit",
        ),
        (
            "bad site id",
            "site = \"Plant Leeds\"\n[mqtt]\nurl = \"mqtt://h\"\n".into(),
            1,
            "site",
            "expected a-z, 0-9",
        ),
        (
            "bad url",
            "site = \"s\"\n[mqtt]\nurl = \"http://h\"\n".into(),
            3,
            "mqtt.url",
            "expected mqtt://host:port or mqtts://host:port",
        ),
        (
            "bad listen",
            h("[local]\nlisten = \"everywhere\"\n"),
            7,
            "local.listen",
            "expected like \"127.0.0.1:9470\"",
        ),
        (
            "bad time zone",
            "site = \"s\"\ntimezone = \"Mars/Olympus\"\n[mqtt]\nurl = \"mqtt://h\"\n".into(),
            2,
            "timezone",
            "IANA name",
        ),
        (
            "duplicate id",
            h(&format!("{ping}{ping}")),
            11,
            "id",
            "already the id of check[0]",
        ),
        (
            "missing dependency",
            h(&format!("{ping}depends_on = [\"modem\"]\n")),
            10,
            "depends_on",
            "\"modem\" is not a check on this agent; expected one of \"router\"",
        ),
        (
            "self dependency",
            h(&format!("{ping}depends_on = [\"router\"]\n")),
            10,
            "depends_on",
            "depends on itself",
        ),
        (
            "dependency loop",
            h(
                "[[check]]\nid = \"a\"\nkind = \"uptime\"\ndepends_on = [\"b\"]\n[[check]]\nid = \"b\"\nkind = \"uptime\"\ndepends_on = [\"a\"]\n",
            ),
            9,
            "depends_on",
            "the dependencies loop: a → b → a",
        ),
        (
            "warn above fail",
            h(&format!("{ping}warn_loss_pct = 60\nfail_loss_pct = 50\n")),
            10,
            "warn_loss_pct",
            "must be the lower one",
        ),
        (
            "timeout above interval",
            h(&format!("{ping}interval = \"5s\"\ntimeout = \"10s\"\n")),
            11,
            "timeout",
            "longer than the interval 5s",
        ),
        (
            "checklist due",
            h("[[check]]\nid = \"cages\"\nkind = \"checklist\"\ndue = \"6pm\"\n"),
            9,
            "due",
            "expected \"HH:MM\"",
        ),
        (
            "checklist day",
            h(
                "[[check]]\nid = \"cages\"\nkind = \"checklist\"\ndue = \"18:00\"\ndays = [\"monday\"]\n",
            ),
            10,
            "days",
            "expected some of mon, tue",
        ),
        (
            "missing target",
            h("[[check]]\nid = \"router\"\nkind = \"ping\"\n"),
            6,
            "target",
            "missing field `target`",
        ),
        (
            "wrong type",
            h(&format!("{ping}count = \"five\"\n")),
            10,
            "count",
            "invalid type",
        ),
        (
            "missing id",
            h("[[check]]\nkind = \"ping\"\n"),
            6,
            "id",
            "missing field `id`",
        ),
        (
            "bad tcp target",
            h("[[check]]\nid = \"plc\"\nkind = \"tcp\"\ntarget = \"plc.local\"\n"),
            9,
            "target",
            "expected like \"192.168.1.20:502\"",
        ),
        (
            "bad http url",
            h("[[check]]\nid = \"web\"\nkind = \"http\"\nurl = \"printer\"\n"),
            9,
            "url",
            "is not a web address",
        ),
        (
            "bad backup pattern",
            h(
                "[[check]]\nid = \"b\"\nkind = \"backup\"\npath = \"/b\"\npattern = \"[\"\nmax_age = \"1d\"\n",
            ),
            10,
            "pattern",
            "is not a file pattern",
        ),
        (
            "fail_after zero",
            h(&format!("{ping}fail_after = 0\n")),
            10,
            "fail_after",
            "expected 1 or more",
        ),
        ("toml syntax", format!("{HEAD}[[check]\n"), 6, "", ""),
    ]
}

#[test]
fn mistakes_name_file_line_and_key() {
    for (name, text, line, key, words) in cases() {
        let err = Config::parse(Path::new("/etc/outpost/agent.toml"), &text)
            .err()
            .unwrap_or_else(|| panic!("{name}: should be refused"));
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("/etc/outpost/agent.toml:{line}")),
            "{name}: {message}"
        );
        assert_eq!(err.line(), Some(line), "{name}: {message}");
        assert!(
            message.contains(key),
            "{name}: key {key:?} not in: {message}"
        );
        assert!(
            message.contains(words),
            "{name}: {words:?} not in: {message}"
        );
    }
}

#[test]
fn an_unreadable_file_names_the_file() {
    let err = Config::load(Path::new("/nonexistent/agent.toml")).expect_err("missing");
    assert!(err.to_string().contains("/nonexistent/agent.toml"), "{err}");
}
