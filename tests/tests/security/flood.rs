//! One site's flood against another site's escalation.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use outpost_tests::AgentProcess;
use rumqttc::QoS;

use super::support::{
    agent_config, batch, plant, records_topic, rejected, site_client, wait_stored,
};

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_from_one_site_does_not_hold_up_another_sites_escalation() {
    let Some((broker, hook, collector)) = plant("site_rate = 500\nsite_burst = 1000").await else {
        return;
    };
    // Site B's real agent watches a port the test holds open, then closes.
    let watched = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let target = watched.local_addr().expect("addr");
    let checks = format!(
        "[[check]]\nid = \"erp\"\nkind = \"tcp\"\ntitle = \"The ERP server\"\ntarget = \"{target}\"\n\
         interval = \"1s\"\ntimeout = \"1s\"\nfail_after = 1\nlocal_window = \"0s\"\n"
    );
    let _agent_b = AgentProcess::start(&agent_config(&broker, "site-b", "office-pc", &checks));
    wait_stored(&collector, "site-b", "office-pc", 1, 30).await;

    // Site A floods its own records topic with single-record batches, as fast as it can.
    let flooder = site_client(&broker, "site-a", "site-a.flood").await;
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let (sent, stop) = (sent.clone(), stop.clone());
        tokio::spawn(async move {
            for seq in 1..=200_000u64 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let topic = records_topic("site-a", "flood");
                if flooder
                    .publish(
                        topic,
                        QoS::AtLeastOnce,
                        false,
                        batch("site-a", "flood", seq, 1),
                    )
                    .await
                    .is_err()
                {
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while sent.load(Ordering::Relaxed) < 5_000 || rejected(&collector, "rate").await == 0 {
        assert!(
            Instant::now() < deadline,
            "the flood did not get going: {} sent",
            sent.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Mid-flood, site B's server goes away: IT must hear of it within seconds.
    drop(watched);
    let failed_at = Instant::now();
    let escalated = hook
        .wait_until(Duration::from_secs(15), |bodies| {
            bodies
                .iter()
                .any(|b| b["event"] == "escalated" && b["site"] == "site-b")
        })
        .await;
    let took = failed_at.elapsed();
    let during = sent.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let _ = flood.await;
    assert!(
        escalated,
        "site B's escalation did not arrive within 15 s of the failure (flood: {during} sent): {:?}\n{}",
        hook.events(),
        collector.log()
    );
    let limited = rejected(&collector, "rate").await;
    eprintln!(
        "escalation {:.1} s after the failure, {during} flood messages sent by then, {limited} limited",
        took.as_secs_f64()
    );
    assert!(limited > 0, "site A was limited");
    assert!(
        collector
            .log()
            .matches("site site-a sends more than")
            .count()
            == 1,
        "the limit is logged once per site:\n{}",
        collector.log()
    );
    // Site B itself was never limited: all its results are stored.
    assert!(!collector.log().contains("site site-b sends more than"));
}
