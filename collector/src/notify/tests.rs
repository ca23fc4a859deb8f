//! Rendering for every notifier, and delivery to a real local HTTP receiver.

use std::sync::{Arc, Mutex};

use outpost_shared::{AgentId, EscalationKind, EscalationState, FixedBy, SiteId, Timestamp};

use super::*;

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).expect("in range")
}

fn notification(event: NotifyEvent) -> Notification {
    let escalation = Escalation {
        id: 17,
        site: SiteId::new("plant-leeds").expect("valid"),
        agent: AgentId::new("line3-pc").expect("valid"),
        check: "router".into(),
        kind: EscalationKind::Check,
        state: if event == NotifyEvent::Resolved {
            EscalationState::Resolved
        } else {
            EscalationState::Escalated
        },
        opened_at: t(0),
        local_until: Some(t(900)),
        escalated_at: Some(t(900)),
        acknowledged_at: None,
        acknowledged_by: None,
        resolved_by: None,
        note: None,
        resolved_at: (event == NotifyEvent::Resolved).then(|| t(5400)),
        fixed_by: (event == NotifyEvent::Resolved).then_some(FixedBy::It),
        summary: "The router did not answer 5 of 5 pings.".into(),
        held: None,
        historical: false,
        last_notified_at: None,
    };
    Notification {
        dedup_key: escalation.dedup_key(),
        event,
        at: t(5400),
        escalation,
        check_title: "Main router".into(),
        runbook: vec!["Switch the router off and on.".into()],
        recent: vec![RecentResult {
            ts: t(890),
            status: outpost_shared::Status::Fail,
            summary: "The router did not answer 5 of 5 pings.".into(),
            metrics: std::collections::BTreeMap::from([("loss_pct".to_owned(), 100.0)]),
        }],
        notes: vec![SiteNote {
            ts: t(100),
            by: "Sam".into(),
            text: "I restarted the router".into(),
            action: "note".into(),
        }],
        dashboard_url: Some("http://127.0.0.1:9480/#/escalations/17".into()),
    }
}

fn target(kind: NotifierKind) -> NotifierTarget {
    NotifierTarget {
        kind,
        url: "http://127.0.0.1:9093/".into(),
        routing_key: Some("rk".into()),
    }
}

#[test]
fn dedup_key_is_stable() {
    assert_eq!(
        notification(NotifyEvent::Escalated).dedup_key,
        "outpost:plant-leeds:line3-pc:router:17"
    );
}

#[test]
fn resolve_says_how_long_and_who() {
    let n = notification(NotifyEvent::Resolved);
    assert_eq!(
        n.headline(),
        "Resolved: Main router at plant-leeds (line3-pc), down for 1h30m, fixed by IT"
    );
}

#[test]
fn every_notifier_renders_with_the_dedup_key() {
    let n = notification(NotifyEvent::Escalated);
    for kind in [
        NotifierKind::Webhook,
        NotifierKind::Alertmanager,
        NotifierKind::Slack,
        NotifierKind::Pagerduty,
    ] {
        let req = target(kind)
            .render(&n)
            .expect("escalations go to every notifier");
        assert!(
            req.body
                .to_string()
                .contains("outpost:plant-leeds:line3-pc:router:17"),
            "{kind:?}"
        );
    }
    let am = target(NotifierKind::Alertmanager)
        .render(&n)
        .expect("firing");
    assert_eq!(am.url, "http://127.0.0.1:9093/api/v2/alerts");
    assert!(am.body[0].get("endsAt").is_none());
    let pd = target(NotifierKind::Pagerduty).render(&n).expect("trigger");
    assert_eq!(pd.body["event_action"], "trigger");
    let recent = format!("{} fail: The router did not answer 5 of 5 pings.", t(890));
    assert_eq!(am.body[0]["annotations"]["recent"], recent.as_str());
    let slack = target(NotifierKind::Slack).render(&n).expect("escalated");
    let text = slack.body["text"].as_str().unwrap_or_default();
    assert!(
        text.contains(&format!("Recent results (newest first):\n• {recent}")),
        "{text}"
    );
    let webhook = target(NotifierKind::Webhook).render(&n).expect("all");
    assert_eq!(webhook.body["recent"][0]["metrics"]["loss_pct"], 100.0);
    assert_eq!(webhook.body["notes"][0]["text"], "I restarted the router");
    assert_eq!(webhook.body["runbook"][0], "Switch the router off and on.");
}

#[test]
fn resolve_ends_the_alert() {
    let n = notification(NotifyEvent::Resolved);
    let am = target(NotifierKind::Alertmanager)
        .render(&n)
        .expect("resolve");
    assert_eq!(am.body[0]["endsAt"], serde_json::json!(t(5400)));
    let pd = target(NotifierKind::Pagerduty).render(&n).expect("resolve");
    assert_eq!(pd.body["event_action"], "resolve");
}

#[test]
fn the_site_window_is_not_paged() {
    let n = notification(NotifyEvent::Opened);
    assert!(target(NotifierKind::Webhook).render(&n).is_some());
    for kind in [
        NotifierKind::Alertmanager,
        NotifierKind::Slack,
        NotifierKind::Pagerduty,
    ] {
        assert!(target(kind).render(&n).is_none(), "{kind:?}");
    }
}

#[test]
fn backoff_doubles_and_caps() {
    assert_eq!(backoff(1).as_secs(), 1);
    assert_eq!(backoff(4).as_secs(), 8);
    assert_eq!(backoff(40).as_secs(), 300);
}

#[tokio::test]
async fn delivers_to_a_real_receiver_and_reports_rejections() {
    use axum::{Json, Router, http::StatusCode, routing::post};
    let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let sink = got.clone();
    let app = Router::new()
        .route(
            "/hook",
            post(move |Json(v): Json<serde_json::Value>| {
                let sink = sink.clone();
                async move {
                    sink.lock().expect("test lock").push(v);
                    StatusCode::OK
                }
            }),
        )
        .route(
            "/broken",
            post(|| async { (StatusCode::SERVICE_UNAVAILABLE, "try later") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let sender = Sender::new(std::time::Duration::from_secs(5)).expect("client");
    let n = notification(NotifyEvent::Escalated);
    let mut hook = target(NotifierKind::Webhook);
    hook.url = format!("http://{addr}/hook");
    sender
        .send(&hook.render(&n).expect("rendered"))
        .await
        .expect("delivered");
    assert_eq!(got.lock().expect("test lock").len(), 1);
    assert_eq!(got.lock().expect("test lock")[0]["event"], "escalated");

    hook.url = format!("http://{addr}/broken");
    let err = sender
        .send(&hook.render(&n).expect("rendered"))
        .await
        .expect_err("503");
    assert!(
        matches!(err, DeliveryError::Rejected { status: 503, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("try later"));
}
