//! Mutual TLS end to end, and who the broker refuses.

use outpost_tests::{
    AgentProcess,
    tls::{self, COLLECTOR_USER, Identity, TlsBroker},
};

use super::support::{agent_config, plant, results, wait_stored};

#[tokio::test(flavor = "multi_thread")]
async fn real_agent_and_collector_over_mutual_tls() {
    let Some((broker, _hook, collector)) = plant("").await else {
        return;
    };
    let checks =
        "[[check]]\nid = \"up\"\nkind = \"uptime\"\ntitle = \"This computer\"\ninterval = \"1s\"\n";
    let agent = AgentProcess::start(&agent_config(&broker, "site-a", "line3-pc", checks));
    wait_stored(&collector, "site-a", "line3-pc", 2, 30).await;

    let stored = results(&collector, "site-a").await;
    assert!(
        stored.iter().all(|r| r["agent"] == "line3-pc"),
        "{stored:?}"
    );
    let (agent_log, collector_log) = (agent.log(), collector.log());
    // Secrets: world-readable files are named at start, their content never logged.
    for log in [&agent_log, &collector_log] {
        assert!(
            log.contains("readable by every user"),
            "warning about the world-readable password file:\n{log}"
        );
        for user in [COLLECTOR_USER, "site-a"] {
            assert!(
                !log.contains(&broker.password(user)),
                "a password leaked:\n{log}"
            );
        }
        assert!(
            !log.contains("unencrypted"),
            "mqtts:// must not warn about plain MQTT:\n{log}"
        );
    }
    // Mosquitto saw the TLS identities (not anonymous).
    let mosquitto = broker.log();
    assert!(
        mosquitto.contains("u'site-a'") && mosquitto.contains("u'outpost-collector'"),
        "{mosquitto}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_wrong_ca_and_expired_certificates_are_refused() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(broker) = TlsBroker::start() else {
        return;
    };
    let site = "site-a";
    let own = Identity::of(&broker, site);
    let password = own.credentials.clone();
    let cases: Vec<(&str, u16, Identity)> = vec![
        (
            "no certificate, no password",
            broker.port(),
            Identity::default(),
        ),
        (
            "certificate, no password (anonymous)",
            broker.port(),
            Identity {
                cert: own.cert.clone(),
                credentials: None,
            },
        ),
        (
            "password, no certificate",
            broker.port(),
            Identity {
                cert: None,
                credentials: password.clone(),
            },
        ),
        (
            "wrong password",
            broker.port(),
            Identity {
                cert: own.cert.clone(),
                credentials: Some((site.into(), "guess".into())),
            },
        ),
        (
            "another site's password",
            broker.port(),
            Identity {
                cert: own.cert.clone(),
                credentials: Some((site.into(), broker.password("site-b"))),
            },
        ),
        (
            "expired certificate",
            broker.port(),
            Identity {
                cert: Some(broker.expired_cert()),
                credentials: password.clone(),
            },
        ),
        (
            "certificate from another CA",
            broker.port(),
            Identity {
                cert: Some(broker.wrong_ca_cert()),
                credentials: password.clone(),
            },
        ),
        (
            "identity port: no certificate",
            broker.identity_port(),
            Identity::default(),
        ),
        (
            "identity port: expired certificate",
            broker.identity_port(),
            Identity {
                cert: Some(broker.expired_cert()),
                credentials: None,
            },
        ),
        (
            "identity port: certificate from another CA",
            broker.identity_port(),
            Identity {
                cert: Some(broker.wrong_ca_cert()),
                credentials: None,
            },
        ),
    ];
    for (what, port, who) in cases {
        let got = tls::connect(tls::options(&broker, port, "site-a.probe", &who)).await;
        assert!(got.is_err(), "{what}: the broker accepted it");
    }
    // The control: the site's own certificate and password, and its certificate alone on the
    // identity port, are accepted.
    let ok = tls::connect(tls::options(&broker, broker.port(), "site-a.ok", &own)).await;
    assert!(ok.is_ok(), "own identity: {:?}\n{}", ok.err(), broker.log());
    let cert_only = Identity {
        cert: own.cert.clone(),
        credentials: None,
    };
    let ok = tls::connect(tls::options(
        &broker,
        broker.identity_port(),
        "site-a.id",
        &cert_only,
    ))
    .await;
    assert!(
        ok.is_ok(),
        "certificate on the identity port: {:?}",
        ok.err()
    );
}
