//! Wiring: the embedded broker (when no `[mqtt]`), the store, ingest, the decision task and
//! notification delivery, the HTTP API, and retention, all stopped by one `CancellationToken`.

use std::{
    sync::{Arc, RwLock, atomic::Ordering},
    time::Duration,
};

use anyhow::Context as _;
use outpost_shared::{AgentTopic, EscalationList, Timestamp, TopicKind};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::{
    api::{self, ApiState, Tokens},
    broker,
    config::Config,
    decide::{self, Decider, DeliveryStats, EscalationSink, StoreContext, deliver},
    engine::Engine,
    ingest::{self, IngestSettings},
    metrics::Metrics,
    notify::{NotifierTarget, Sender},
    store::{self, Store},
};

/// Events queued between ingest and the engine; when full, ingest waits (backpressure).
const EVENT_QUEUE: usize = 8192;

/// How often raw results past retention are folded into hourly counts.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Runs the collector until `shutdown` is cancelled, then stops every part in order.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    if config.mqtt.is_none() {
        broker::start(config.broker.listen).context("starting the embedded MQTT broker")?;
        tracing::info!(listen = %config.broker.listen, "embedded MQTT broker started");
    }
    let http = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen for HTTP on {}: is another collector running? Set [http] listen to a free address",
                config.http.listen
            )
        })?;
    let tokens = read_tokens(&config)?;
    let url = config.store.url.clone();
    let (store, log) = tokio::task::spawn_blocking(move || {
        let store = store::open(&url)?;
        let log = decide::open_log(&url)?;
        Ok::<_, anyhow::Error>((store, log))
    })
    .await
    .context("opening the store")?
    .with_context(|| format!("opening the store {}", config.store.url))?;
    tracing::info!(url = %config.store.url, "store ready");

    // The engine starts empty; it is loaded when this collector wins the right to decide
    // (at once, unless another collector on the same PostgreSQL already decides).
    let engine = Arc::new(RwLock::new(Engine::new(config.engine_settings())));
    let role = Arc::new(crate::cluster::Role::following().context("setting up the HTTP client")?);
    // Until it is known to decide, what this collector stores is queued for the one that does.
    store.set_forwarding(true);

    let ingest_settings = IngestSettings::from_config(&config).context("setting up MQTT")?;
    let metrics = Arc::new(Metrics::new());
    let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
    let ingest = ingest::start(
        &ingest_settings,
        store.clone(),
        events_tx,
        metrics.clone(),
        shutdown.clone(),
    );

    let hub = broadcast::channel(1024).0;
    let (commands_tx, commands_rx) = mpsc::channel(64);
    let wake = Arc::new(tokio::sync::Notify::new());
    let delivery_stats = Arc::new(DeliveryStats::default());
    let targets: Vec<NotifierTarget> = config
        .notifiers
        .iter()
        .map(|n| NotifierTarget {
            kind: n.kind,
            url: n.url.clone(),
            routing_key: n.routing_key.clone(),
        })
        .collect();
    let decider = Decider {
        engine: engine.clone(),
        log: log.clone(),
        sink: Arc::new(MqttSink(ingest.client.clone())),
        context: Arc::new(StoreContext(store.clone())),
        hub: hub.clone(),
        notifiers: targets.clone(),
        wake: wake.clone(),
        dashboard_url: config.escalation.dashboard_url.clone(),
        store: store.clone(),
        role: role.clone(),
        advertise: config.http.advertise_url(),
        unsaved: Arc::default(),
    };
    decider.lead().await;
    tracing::info!(role = role.name(), "collector role");
    let decide_task = tokio::spawn(decider.run(events_rx, commands_rx, shutdown.clone()));
    let sender =
        Sender::new(Duration::from_secs(10)).context("setting up the HTTP client for notifiers")?;
    let refresh = tokio::spawn(decide::refresh_alerts(
        engine.clone(),
        targets,
        sender.clone(),
        decide::REFRESH_EVERY,
        shutdown.clone(),
    ));
    let delivery = tokio::spawn(deliver(
        log.clone(),
        sender,
        wake,
        delivery_stats.clone(),
        role.clone(),
        shutdown.clone(),
    ));

    let state = ApiState {
        engine: engine.clone(),
        log: log.clone(),
        store: store.clone(),
        commands: commands_tx,
        hub,
        tokens,
        mqtt_ready: metrics.mqtt_ready.clone(),
        metrics: renderer(metrics.clone(), delivery_stats, engine, role.clone()),
        role: role.clone(),
    };
    let app = api::app(state);
    tracing::info!(listen = %config.http.listen, "API and dashboard ready");
    outpost_agent::systemd::Notifier::from_env().ready_and_watch(shutdown.clone());
    let stop = shutdown.clone();
    let http_task = tokio::spawn(async move {
        if let Err(e) = axum::serve(http, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
        {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });
    let retention = tokio::spawn(retention(
        store.clone(),
        config.store.retention.get(),
        role,
        shutdown.clone(),
    ));

    ingest.join().await;
    let _ = decide_task.await;
    let _ = delivery.await;
    let _ = refresh.await;
    let _ = http_task.await;
    let _ = retention.await;
    // The PostgreSQL clients must not be dropped on an async thread.
    let _ = tokio::task::spawn_blocking(move || drop((store, log))).await;
    tracing::info!("collector stopped");
    Ok(())
}

/// The retained escalation list of an agent, published on the collector's MQTT connection.
struct MqttSink(rumqttc::AsyncClient);

impl EscalationSink for MqttSink {
    fn publish(&self, list: EscalationList) {
        let topic = AgentTopic::new(&list.site, &list.agent, TopicKind::Escalations).to_string();
        let payload = outpost_shared::encode(&list);
        if let Err(e) = self
            .0
            .try_publish(topic, rumqttc::QoS::AtLeastOnce, true, payload)
        {
            tracing::warn!(site = %list.site, agent = %list.agent, error = %e, "escalation list not published now; the next change publishes it again");
        }
    }
}

/// Reads the API tokens; warns when a token file is readable by everyone.
fn read_tokens(config: &Config) -> anyhow::Result<Tokens> {
    let read = |path: &Option<std::path::PathBuf>| -> anyhow::Result<Option<String>> {
        let Some(path) = path else { return Ok(None) };
        outpost_agent::warn_if_world_readable(path);
        let token = std::fs::read_to_string(path)
            .with_context(|| format!("reading the token file {}", path.display()))?
            .trim()
            .to_owned();
        anyhow::ensure!(
            !token.is_empty(),
            "the token file {} is empty",
            path.display()
        );
        Ok(Some(token))
    };
    Ok(Tokens {
        read: read(&config.http.read_token_file)?,
        write: read(&config.http.write_token_file)?,
    })
}

fn renderer(
    metrics: Arc<Metrics>,
    delivery: Arc<DeliveryStats>,
    engine: Arc<RwLock<Engine>>,
    role: Arc<crate::cluster::Role>,
) -> api::MetricsRenderer {
    Arc::new(move || {
        use std::fmt::Write as _;
        let mut out = metrics.render();
        let _ = writeln!(
            out,
            "# HELP outpost_collector_leader 1 while this collector decides and notifies (the others store and forward).\n# TYPE outpost_collector_leader gauge\noutpost_collector_leader {}",
            u8::from(role.leading())
        );
        let engine = engine
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = writeln!(
            out,
            "# HELP outpost_escalations_open Open escalations by state.\n# TYPE outpost_escalations_open gauge"
        );
        for state in ["failing", "local", "escalated", "acknowledged"] {
            let n = engine
                .escalations()
                .filter(|e| e.state.as_str() == state)
                .count();
            let _ = writeln!(out, "outpost_escalations_open{{state=\"{state}\"}} {n}");
        }
        let online = engine.agents().filter(|(_, a)| a.online).count();
        let _ = writeln!(
            out,
            "# HELP outpost_agents_online Agents online.\n# TYPE outpost_agents_online gauge\noutpost_agents_online {online}"
        );
        let _ = writeln!(
            out,
            "# HELP outpost_notifications_total Notification deliveries.\n# TYPE outpost_notifications_total counter"
        );
        let _ = writeln!(
            out,
            "outpost_notifications_total{{outcome=\"delivered\"}} {}",
            delivery.delivered.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "outpost_notifications_total{{outcome=\"failed\"}} {}",
            delivery.failed.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP outpost_notification_backlog Notifications waiting for delivery.\n# TYPE outpost_notification_backlog gauge\noutpost_notification_backlog {}",
            delivery.backlog.load(Ordering::Relaxed)
        );
        out
    })
}

/// Folds expired raw results into hourly counts: hourly, by the deciding collector only (two
/// collectors folding the same rows would count them twice).
async fn retention(
    store: Arc<dyn Store>,
    keep: Duration,
    role: Arc<crate::cluster::Role>,
    shutdown: CancellationToken,
) {
    let mut last: Option<tokio::time::Instant> = None;
    loop {
        if role.leading() && last.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            last = Some(tokio::time::Instant::now());
            let cutoff = crate::engine::sub(Timestamp::now(), keep);
            let s = store.clone();
            match tokio::task::spawn_blocking(move || s.prune(cutoff)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => {
                    tracing::info!(deleted = n, %cutoff, "expired raw results folded into hourly counts");
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "retention failed; retrying later"),
                Err(e) => tracing::warn!(error = %e, "retention task failed"),
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
    }
}
