//! The site's router in a network namespace: its cable is pulled (one escalation, after the
//! site team's window; the web check behind it stays quiet), and its link flaps (one flapping
//! escalation, not a stream). Needs root and iproute2; skips with a message otherwise.

use std::time::{Duration, Instant};

use outpost_tests::{AgentProcess, Receiver, netns::Router};

use super::support::{Store, agent_config, hook_events, plant, wait_for};

/// The rig, or `None` (with a message) where namespaces cannot be made.
fn router() -> Option<Router> {
    if let Some(why) = outpost_tests::netns::unavailable() {
        eprintln!("SKIPPED: {why}");
        return None;
    }
    Some(Router::create().unwrap_or_else(|e| panic!("building the router namespace: {e}")))
}

fn at(body: &serde_json::Value) -> jiff::Timestamp {
    body["at"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("every notification has a time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_router_down_escalates_once_and_holds_dependents() {
    let Some(mut router) = router() else { return };
    router.serve_http(8080).expect("the router's web page");
    let (broker, hook, collector) = plant("offline_after = \"15s\"", "").await;
    let addr = router.addr();
    let checks = format!(
        "[[check]]\nid = \"router\"\nkind = \"ping\"\ntitle = \"Main router\"\ntarget = \"{addr}\"\n\
         count = 2\ninterval = \"1s\"\ntimeout = \"1s\"\nfail_after = 2\nrecover_after = 3\n\
         local_window = \"3s\"\nrunbook = [\"Look at the router's lights.\"]\n\
         [[check]]\nid = \"web\"\nkind = \"http\"\ntitle = \"Router web page\"\n\
         url = \"http://{addr}:8080/\"\ninterval = \"1s\"\ntimeout = \"1s\"\nfail_after = 3\n\
         recover_after = 1\nlocal_window = \"0s\"\ndepends_on = [\"router\"]\n"
    );
    let agent = AgentProcess::start(&agent_config(&broker, "256MB", &checks));
    let store = Store::open(&collector);
    wait_for(
        "ok results of both checks",
        30,
        || {
            let epochs = store.epochs();
            epochs.first().is_some_and(|e| {
                let results = store.results(*e);
                ["router", "web"]
                    .iter()
                    .all(|c| results.iter().any(|r| r.check == *c))
            })
        },
        || agent.log(),
    )
    .await;
    assert!(
        hook.bodies().is_empty(),
        "all is well at first: {:?}\n{}",
        hook.bodies(),
        collector.log()
    );

    router.link_down().expect("pull the router's cable");
    let escalated = |h: &Receiver| {
        hook_events(h, "router")
            .iter()
            .any(|(e, _)| e == "escalated")
    };
    wait_for(
        "the router escalation",
        30,
        || escalated(&hook),
        || format!("{:?}\n{}", hook.events(), collector.log()),
    )
    .await;
    router.link_up().expect("plug the cable back in");
    wait_for(
        "the router escalation to resolve",
        30,
        || {
            hook_events(&hook, "router")
                .iter()
                .any(|(e, _)| e == "resolved")
        },
        || format!("{:?}", hook.events()),
    )
    .await;
    // Anything late (a dependent released, a repeat) would arrive within a few runs.
    tokio::time::sleep(Duration::from_secs(4)).await;

    let events = hook_events(&hook, "router");
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names, ["opened", "escalated", "resolved"], "{events:?}");
    assert!(
        events.iter().all(|(_, k)| *k == events[0].1),
        "one dedup key"
    );
    let bodies = hook.bodies();
    let (opened, escalated) = (at(&bodies[0]), at(&bodies[1]));
    let window = escalated.duration_since(opened);
    assert!(
        window >= jiff::SignedDuration::from_millis(2900)
            && window <= jiff::SignedDuration::from_secs(6),
        "the site team had its 3 s window: {window:?}"
    );
    assert!(
        hook_events(&hook, "web").is_empty(),
        "the web page behind the router is held under it: {:?}",
        hook.events()
    );
    assert_eq!(bodies.len(), 3, "nothing else: {:?}", hook.events());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_flapping_link_gives_one_flapping_escalation() {
    let Some(router) = router() else { return };
    let (broker, hook, collector) = plant(
        "offline_after = \"15s\"",
        "flap_limit = 4\nflap_window = \"60s\"",
    )
    .await;
    let checks = format!(
        "[[check]]\nid = \"router\"\nkind = \"ping\"\ntitle = \"Main router\"\ntarget = \"{}\"\n\
         count = 1\ninterval = \"500ms\"\ntimeout = \"500ms\"\nfail_after = 1\nrecover_after = 1\n\
         local_window = \"2s\"\n",
        router.addr()
    );
    let agent = AgentProcess::start(&agent_config(&broker, "256MB", &checks));
    let store = Store::open(&collector);
    wait_for(
        "the first router result",
        30,
        || !store.epochs().is_empty(),
        || agent.log(),
    )
    .await;

    // ~24 s of a loose cable: down and up every 1.5 s.
    let started = Instant::now();
    let mut down = false;
    while started.elapsed() < Duration::from_secs(24) {
        down = !down;
        if down {
            router.link_down().expect("link down");
        } else {
            router.link_up().expect("link up");
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    router.link_up().expect("link up at the end");
    tokio::time::sleep(Duration::from_secs(3)).await;

    let bodies = hook.bodies();
    let keys = |kind: &str| {
        let mut keys: Vec<&str> = bodies
            .iter()
            .filter(|b| b["escalation"]["kind"] == kind)
            .filter_map(|b| b["dedup_key"].as_str())
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    };
    assert_eq!(
        keys("flapping").len(),
        1,
        "one flapping escalation: {:?}",
        hook.events()
    );
    // Before the limit is reached the check opens an ordinary escalation per outage (two for
    // four changes, three if a short outage fell between two pings); after it, none speaks.
    assert!(
        keys("check").len() <= 3,
        "no stream of check escalations: {:?}",
        keys("check")
    );
    assert!(
        bodies.iter().all(|b| b["check"] == "router"),
        "{:?}",
        bodies
            .iter()
            .map(|b| (
                b["event"].clone(),
                b["check"].clone(),
                b["escalation"]["kind"].clone()
            ))
            .collect::<Vec<_>>()
    );
}
