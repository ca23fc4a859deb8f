//! The site page in headless Chromium: the headline and runbook of a really failing check, a
//! note sent through the plain HTML form (it reaches the outbox), planned work declared
//! through its form, and one screenshot per state at phone (360 px) and desktop width under
//! `target/screenshots/site-*.png`. Skips with a message when Chromium is not installed.

use std::{path::PathBuf, sync::Arc, time::Duration};

use jiff::{SignedDuration, Timestamp, tz::TimeZone};
use outpost_agent::{
    checks::{RunContext, run_guarded},
    config::Config,
    live::Live,
    outbox::OutboxLimits,
    outbox_handle::SharedOutbox,
    site_page::{self, Access, PageState},
};
use outpost_shared::{
    AgentId, EscalationKind, EscalationList, EscalationState, EscalationView, NoteAction,
    RecordBody, SiteId,
};
use outpost_tests::browser::Browser;
use serde_json::json;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

/// A served page over a live state whose router check really runs against a local port:
/// open (the check works) or closed (it fails).
struct Site {
    url: String,
    live: Live,
    outbox: SharedOutbox,
    cancel: CancellationToken,
    _port: Option<std::net::TcpListener>,
    _dir: tempfile::TempDir,
}

impl Drop for Site {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn site(router_works: bool) -> Site {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let target = port.local_addr().expect("addr");
    let port = router_works.then_some(port);
    let text = format!(
        "site = \"plant-leeds\"\nagent = \"line3-pc\"\ntimezone = \"Europe/London\"\n\
         [mqtt]\nurl = \"mqtt://127.0.0.1:1\"\n\
         [[check]]\nid = \"router\"\nkind = \"tcp\"\ntitle = \"Main router\"\ntarget = \"{target}\"\n\
         local_window = \"15m\"\n\
         runbook = [\"Look at the router's lights: is the power light on?\", \
         \"Switch the router off, wait 30 seconds, switch it on.\", \
         \"Check that the blue cable is plugged into port 1.\"]\n\
         [[check]]\nid = \"host\"\nkind = \"uptime\"\ntitle = \"This computer\"\n\
         [[check]]\nid = \"backup-job\"\nkind = \"heartbeat\"\ntitle = \"Nightly backup\"\nperiod = \"1d\"\n"
    );
    let config = Config::parse(std::path::Path::new("agent.toml"), &text).expect("valid config");
    let outbox = SharedOutbox::open(
        &dir.path().join("outbox"),
        OutboxLimits {
            max_size: 16 << 20,
            max_age: Duration::from_secs(3600),
        },
    )
    .expect("outbox");
    let live = Live::new(config.catalogue(), Some(outbox.clone()));
    let ctx = RunContext {
        live: live.clone(),
        timezone: config.timezone.clone(),
        started_at: live.started_at(),
        state_dir: None,
    };
    for check in &config.checks {
        let outcome = run_guarded(Arc::clone(check), ctx.clone()).await;
        live.publish_result(&check.spec().id, Timestamp::now(), &outcome)
            .await
            .expect("result kept");
    }
    live.set_connected();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    let state = PageState::new(
        live.clone(),
        config.timezone.clone(),
        Access::open(),
        "plant-leeds · line3-pc",
    );
    let cancel = CancellationToken::new();
    tokio::spawn(site_page::serve(listener, state, cancel.clone()));
    Site {
        url,
        live,
        outbox,
        cancel,
        _port: port,
        _dir: dir,
    }
}

fn escalation(state: EscalationState) -> EscalationList {
    let now = Timestamp::now();
    EscalationList {
        v: 1,
        site: SiteId::new("plant-leeds").expect("id"),
        agent: AgentId::new("line3-pc").expect("id"),
        updated_at: now,
        planned_work_ended_at: None,
        escalations: vec![EscalationView {
            id: 1,
            kind: EscalationKind::Check,
            check: "router".into(),
            state,
            opened_at: now - SignedDuration::from_mins(3),
            local_until: Some(now + SignedDuration::from_secs(12 * 60 - 5)),
            escalated_at: Some(now - SignedDuration::from_mins(1)),
            acknowledged_at: Some(now),
            acknowledged_by: Some("Priya".into()),
            note: (state == EscalationState::Acknowledged)
                .then(|| "An engineer is on the way; leave the router switched on.".into()),
            resolved_at: None,
            fixed_by: None,
            summary: String::new(),
        }],
    }
}

fn screenshots() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
            PathBuf::from,
        )
        .join("screenshots")
}

/// Screenshots at phone width (tall, to show the whole card) and at desktop width.
async fn shoot(browser: &mut Browser, name: &str) -> anyhow::Result<()> {
    for (suffix, width, height, mobile) in [("360", 360, 1600, true), ("desktop", 1280, 900, false)]
    {
        browser
            .call(
                "Emulation.setDeviceMetricsOverride",
                json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
            )
            .await?;
        browser.evaluate("window.scrollTo(0, 0)").await?;
        browser
            .screenshot(&screenshots().join(format!("site-{name}-{suffix}.png")))
            .await?;
    }
    Ok(())
}

async fn text_has(browser: &mut Browser, words: &str) -> anyhow::Result<()> {
    browser
        .wait_for(
            &format!("document.body.innerText.includes({})", json!(words)),
            WAIT,
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_site_team_reads_the_page_and_answers_through_its_forms() -> anyhow::Result<()> {
    outpost_agent::install_tls_provider();
    let Some(mut browser) = Browser::launch().await? else {
        return Ok(());
    };

    // All well.
    let ok = site(true).await;
    browser.navigate(&ok.url).await?;
    text_has(&mut browser, "Everything is working").await?;
    text_has(&mut browser, "Connection to head office: Connected").await?;
    shoot(&mut browser, "ok").await?;

    // The router really fails; the collector gave the site team its window.
    let failing = site(false).await;
    failing
        .live
        .set_escalations(escalation(EscalationState::Local));
    browser.navigate(&failing.url).await?;
    let headline = browser
        .evaluate("document.getElementById('headline').textContent")
        .await?;
    assert_eq!(
        headline.as_str().map(str::trim),
        Some("✕ 1 problem needs attention")
    );
    let steps = browser
        .evaluate("Array.from(document.querySelectorAll('#check-router ol.runbook li')).map(li => li.innerText)")
        .await?;
    assert_eq!(
        steps,
        json!([
            "Look at the router's lights: is the power light on?",
            "Switch the router off, wait 30 seconds, switch it on.",
            "Check that the blue cable is plugged into port 1."
        ])
    );
    text_has(&mut browser, "Not working").await?;
    text_has(
        &mut browser,
        "You have 12 minutes to try these steps; after that IT is called automatically",
    )
    .await?;
    // Every field has a label.
    let unlabelled = browser
        .evaluate("Array.from(document.querySelectorAll('input:not([type=hidden]), textarea')).filter(el => !document.querySelector('label[for=\"' + el.id + '\"]')).length")
        .await?;
    assert_eq!(unlabelled, json!(0));
    shoot(&mut browser, "local").await?;

    // Tell IT what was tried, through the plain form.
    browser.click("#check-router details.note summary").await?;
    browser.type_text("#by-note-router", "Sam").await?;
    browser
        .type_text(
            "#text-router",
            "Switched the router off and on; <b>lights</b> are green.",
        )
        .await?;
    browser.click("#check-router details.note button").await?;
    text_has(&mut browser, "Thank you — your note was sent to IT.").await?;
    text_has(
        &mut browser,
        "Sam: Switched the router off and on; <b>lights</b> are green.",
    )
    .await?;
    let records = failing.outbox.pending(0, 100).await?;
    let notes: Vec<_> = records
        .iter()
        .filter_map(|r| match &r.body {
            RecordBody::Note(n) => Some(n),
            _ => None,
        })
        .collect();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].by, "Sam");
    assert_eq!(notes[0].action, NoteAction::Note);
    assert_eq!(
        notes[0].check.as_ref().map(outpost_shared::CheckId::as_str),
        Some("router")
    );
    assert!(notes[0].text.contains("<b>lights</b>"), "kept as typed");

    // IT acknowledged.
    failing
        .live
        .set_escalations(escalation(EscalationState::Acknowledged));
    browser.navigate(&failing.url).await?;
    text_has(&mut browser, "IT is on it: acknowledged by Priya at").await?;
    text_has(&mut browser, "An engineer is on the way").await?;
    shoot(&mut browser, "acknowledged").await?;

    // Planned work, declared through its form.
    let until = (Timestamp::now() + SignedDuration::from_hours(1))
        .to_zoned(TimeZone::get("Europe/London")?)
        .strftime("%H:%M")
        .to_string();
    browser.click("details.declare summary").await?;
    browser.type_text("#reason", "Router replaced").await?;
    browser.type_text("#until", &until).await?;
    browser.type_text("#by-planned", "Sam").await?;
    browser.click("details.declare button").await?;
    // "until 15:00", or "until Mon 7 Dec 00:30" when the end falls after midnight.
    text_has(&mut browser, "Planned work until ").await?;
    text_has(&mut browser, &format!("{until}: Router replaced")).await?;
    text_has(
        &mut browser,
        "Planned work is going on: IT will not be called",
    )
    .await?;
    shoot(&mut browser, "planned").await?;
    let last = failing.outbox.pending(0, 100).await?;
    let planned = last.last().and_then(|r| match &r.body {
        RecordBody::Note(n) => Some(n.clone()),
        _ => None,
    });
    assert_eq!(planned.map(|n| n.action), Some(NoteAction::PlannedWork));
    Ok(())
}
