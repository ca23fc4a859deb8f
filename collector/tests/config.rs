//! Collector config: defaults, a full valid file, and bad files whose errors must name the
//! file, the line, the key and what would be valid.

use std::path::Path;

use outpost_collector::config::{Config, ConfigError, DEFAULT_STORE_URL};

#[test]
fn no_config_means_embedded_everything() {
    let config = Config::parse("", Path::new("empty.toml")).expect("empty is valid");
    assert_eq!(config, Config::default());
    assert!(config.mqtt.is_none());
    assert_eq!(config.broker.listen.to_string(), "127.0.0.1:1883");
    assert_eq!(config.store.url, DEFAULT_STORE_URL);
    assert_eq!(config.store.retention.to_string(), "30d");
    assert_eq!(config.http.listen.to_string(), "127.0.0.1:9480");
    assert_eq!(config.ingest.max_payload.bytes(), 1 << 20);
    assert_eq!(
        (config.ingest.site_rate, config.ingest.site_burst),
        (10_000, 200_000)
    );
    assert_eq!(config.ingest.batch_records, 8000);
}

#[test]
fn full_config_parses() {
    let dir = tempfile::tempdir().expect("temp dir");
    for name in ["read", "write", "user", "pass"] {
        std::fs::write(dir.path().join(name), "secret\n").expect("write");
    }
    let d = dir.path().display();
    let text = format!(
        r#"
offline_after = "5m"
[mqtt]
url = "mqtt://broker.internal:1884"
username_file = "{d}/user"
password_file = "{d}/pass"
[store]
url = "postgres://outpost@db.internal/outpost"
retention = "90d"
[ingest]
max_payload = "2MiB"
site_rate = 500
site_burst = 5000
batch_records = 6000
[http]
listen = "0.0.0.0:9480"
read_token_file = "{d}/read"
write_token_file = "{d}/write"
[[notifier]]
kind = "webhook"
url = "http://127.0.0.1:9099/hook"
[[notifier]]
kind = "pagerduty"
url = "https://events.pagerduty.com/v2/enqueue"
routing_key = "abc"
reminder = "30m"
"#
    );
    let config = Config::parse(&text, Path::new("collector.toml")).expect("valid");
    assert_eq!(
        config.offline_after.map(|d| d.to_string()).as_deref(),
        Some("5m")
    );
    assert_eq!(
        config.mqtt.as_ref().map(|m| m.url.as_str()),
        Some("mqtt://broker.internal:1884")
    );
    assert_eq!(
        (config.ingest.site_rate, config.ingest.site_burst),
        (500, 5000)
    );
    assert_eq!(config.ingest.batch_records, 6000);
    assert_eq!(config.notifiers.len(), 2);
    assert_eq!(config.notifiers[1].routing_key.as_deref(), Some("abc"));
    assert_eq!(
        config.notifiers[1]
            .reminder
            .map(|d| d.to_string())
            .as_deref(),
        Some("30m")
    );
}

#[test]
fn bad_files_name_file_line_and_key() {
    // (file content, line, key, words the message must contain)
    let cases: &[(&str, usize, Option<&str>, &[&str])] = &[
        (
            "[store]\nurl = \"mysql://x\"\n",
            2,
            Some("store.url"),
            &["sqlite://", "postgres://"],
        ),
        (
            "[store]\nretention = \"30 days\"\n",
            2,
            Some("store.retention"),
            &["\"15m\""],
        ),
        (
            "[store]\nretention = \"10m\"\n",
            2,
            Some("store.retention"),
            &["at least"],
        ),
        (
            "[mqtt]\nurl = \"http://broker\"\n",
            2,
            Some("mqtt.url"),
            &["mqtt://HOST:PORT"],
        ),
        (
            "[mqtt]\nurl = \"mqtt://b:99999\"\n",
            2,
            Some("mqtt.url"),
            &["port"],
        ),
        (
            "[mqtt]\nurl = \"mqtt://b\"\nusername_file = \"/nonexistent/u\"\n",
            3,
            Some("mqtt.username_file"),
            &["does not exist"],
        ),
        (
            "[mqtt]\nurll = \"mqtt://b\"\n",
            2,
            Some("mqtt.urll"),
            &["unknown field", "url"],
        ),
        (
            "[mqtt]\nclient_id = \"x\"\n",
            1,
            Some("mqtt"),
            &["missing field `url`"],
        ),
        (
            "[broker]\nlisten = \"localhost\"\n",
            2,
            Some("broker.listen"),
            &["address"],
        ),
        (
            "[http]\nlisten = \"0.0.0.0:9480\"\n",
            2,
            Some("http.listen"),
            &["read_token_file", "127.0.0.1"],
        ),
        (
            "[ingest]\nmax_payload = \"10\"\n",
            2,
            Some("ingest.max_payload"),
            &["at least"],
        ),
        (
            "[ingest]\nsite_rate = 0\n",
            2,
            Some("ingest.site_rate"),
            &["at least 1", "10000"],
        ),
        (
            "[ingest]\nmax_payload = \"1MiB\"\nsite_burst = 0\n",
            3,
            Some("ingest.site_burst"),
            &["at least 1", "200000"],
        ),
        (
            "[ingest]\nbatch_records = 0\n",
            2,
            Some("ingest.batch_records"),
            &["1 to 100000", "8000"],
        ),
        (
            "[ingest]\nbatch_records = 500000\n",
            2,
            Some("ingest.batch_records"),
            &["500000", "1 to 100000"],
        ),
        (
            "[ingest]\nmax_payload = \"lots\"\n",
            2,
            Some("ingest.max_payload"),
            &["256MB"],
        ),
        (
            "[[notifier]]\nkind = \"email\"\nurl = \"http://x\"\n",
            2,
            Some("notifier[0].kind"),
            &["webhook", "pagerduty"],
        ),
        (
            "[[notifier]]\nkind = \"webhook\"\nurl = \"http://x\"\n[[notifier]]\nkind = \"pagerduty\"\nurl = \"https://x\"\n",
            5,
            Some("notifier[1].kind"),
            &["routing_key"],
        ),
        (
            "[[notifier]]\nkind = \"slack\"\nurl = \"ftp://x\"\n",
            3,
            Some("notifier[0].url"),
            &["http://"],
        ),
        (
            "colour = \"blue\"\n",
            1,
            Some("colour"),
            &["unknown field", "store"],
        ),
        ("[store\nurl = 1\n", 1, None, &[]),
        (
            "[[maintenance]]\nsite = \"plant-leeds\"\ndays = [\"sat\", \"sunday\"]\nfrom = \"02:00\"\nto = \"04:00\"\nreason = \"ISP\"\n",
            3,
            Some("maintenance[0].days"),
            &["\"sunday\" is not a day", "mon, tue"],
        ),
        (
            "[[maintenance]]\nsite = \"plant-leeds\"\nfrom = \"2am\"\nto = \"04:00\"\nreason = \"ISP\"\n",
            3,
            Some("maintenance[0].from"),
            &["like \"02:00\""],
        ),
        (
            "[[maintenance]]\nsite = \"plant-leeds\"\nfrom = \"02:00\"\nto = \"04:00\"\ntimezone = \"Mars/Olympus\"\nreason = \"ISP\"\n",
            5,
            Some("maintenance[0].timezone"),
            &["IANA"],
        ),
    ];
    for (text, line, key, words) in cases {
        let err = Config::parse(text, Path::new("/etc/outpost/collector.toml"))
            .expect_err(&format!("{text:?} must be refused"));
        let message = err.to_string();
        let ConfigError::Invalid {
            line: got_line,
            key: got_key,
            ..
        } = &err
        else {
            panic!("{text:?}: unexpected error {message}");
        };
        assert_eq!(
            (got_line, got_key.as_deref()),
            (line, *key),
            "{text:?}: {message}"
        );
        assert!(
            message.starts_with(&format!("/etc/outpost/collector.toml:{line}:")),
            "{message}"
        );
        if let Some(key) = key {
            assert!(message.contains(&format!("key `{key}`")), "{message}");
        }
        for word in *words {
            assert!(
                message.contains(word),
                "{text:?}: {message:?} lacks {word:?}"
            );
        }
    }
}

#[test]
fn missing_file_is_a_read_error() {
    let err = Config::load(Path::new("/nonexistent/collector.toml")).expect_err("missing");
    assert!(
        err.to_string().contains("/nonexistent/collector.toml"),
        "{err}"
    );
}

#[test]
fn recurring_maintenance_windows_reach_the_engine() {
    let text = "[[maintenance]]\nsite = \"plant-leeds\"\ncheck = \"router\"\ndays = [\"sat\"]\n\
                from = \"23:00\"\nto = \"01:00\"\ntimezone = \"Europe/London\"\n\
                reason = \"Weekly ISP maintenance\"\n";
    let config = Config::parse(text, Path::new("collector.toml")).expect("valid");
    let settings = config.engine_settings();
    let [window] = settings.scheduled.as_slice() else {
        panic!("one window: {:?}", settings.scheduled);
    };
    assert_eq!(
        window.days,
        [false, false, false, false, false, true, false]
    );
    assert_eq!(window.reason, "Weekly ISP maintenance");
    assert_eq!(
        window.check.as_ref().map(outpost_shared::CheckId::as_str),
        Some("router")
    );
}
