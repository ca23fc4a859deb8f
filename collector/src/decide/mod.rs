//! The decision task: feeds events to the engine, persists each step atomically in the
//! decision log, queues notifications, publishes each agent's retained `escalations` list and
//! tells the live stream. One task owns the writes; readers share the engine behind a lock.

mod context;
mod deliver;
mod log;
mod postgres;
mod refresh;
mod sql;
mod sqlite;

#[cfg(test)]
mod tests;

use std::sync::{Arc, RwLock};

use outpost_shared::{AgentId, CheckId, EscalationList, NoteAction, RecordBody, SiteId, Timestamp};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub use context::StoreContext;
pub use deliver::{DeliveryStats, deliver};
pub use log::{
    DecisionLog, Leadership, LogError, NewNotification, NotificationLogEntry, QueuedNotification,
    Snapshot, Step,
};
pub use postgres::PostgresLog;
pub use refresh::{REFRESH_EVERY, refresh_alerts};
pub use sqlite::SqliteLog;

use crate::{
    cluster::Role,
    engine::{
        Changes, CheckKey, Engine, EngineError, EngineSettings, Escalation, Event, Maintenance,
        NotifyEvent,
    },
    ingest::IngestEvent,
    notify::{Notification, NotifierTarget, RecentResult, SiteNote},
    store::{ResultQuery, Store},
};

/// Opens the decision log for a store URL: for `sqlite://PATH` a file beside the store
/// ([`sqlite::beside`]), for `postgres://...` tables in the same database.
pub fn open_log(url: &str) -> Result<Arc<dyn DecisionLog>, LogError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        return Ok(Arc::new(SqliteLog::open_beside(std::path::Path::new(
            path,
        ))?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(PostgresLog::connect(url)?));
    }
    Err(LogError::Url(url.to_owned()))
}

fn bad_key(what: &'static str, e: outpost_shared::IdError) -> LogError {
    LogError::Decode {
        what,
        source: serde::de::Error::custom(e),
    }
}

pub(crate) fn parse_agent_key(site: &str, agent: &str) -> Result<(SiteId, AgentId), LogError> {
    Ok((
        SiteId::new(site).map_err(|e| bad_key("agent key", e))?,
        AgentId::new(agent).map_err(|e| bad_key("agent key", e))?,
    ))
}

pub(crate) fn parse_check_key(site: &str, agent: &str, check: &str) -> Result<CheckKey, LogError> {
    let (site, agent) = parse_agent_key(site, agent)?;
    let check = CheckId::new(check).map_err(|e| bad_key("check key", e))?;
    Ok(CheckKey::new(&site, &agent, &check))
}

/// Where the retained `escalations` list of an agent goes (the MQTT client, in production).
pub trait EscalationSink: Send + Sync {
    /// Publishes the list (retained, QoS 1). Must not block.
    fn publish(&self, list: EscalationList);
}

/// Reads the context IT needs from the telemetry store: recent results and the site's notes.
pub trait ContextSource: Send + Sync {
    /// The newest results of one check, newest first.
    fn recent(
        &self,
        site: &SiteId,
        agent: &AgentId,
        check: &str,
        limit: usize,
    ) -> Vec<RecentResult>;
    /// The site team's notes about this agent (and check) since `since`.
    fn notes(&self, site: &SiteId, agent: &AgentId, check: &str, since: Timestamp)
    -> Vec<SiteNote>;
}

/// A context source with nothing in it (tests, or before the store is up).
#[derive(Debug, Default)]
pub struct NoContext;

impl ContextSource for NoContext {
    fn recent(&self, _: &SiteId, _: &AgentId, _: &str, _: usize) -> Vec<RecentResult> {
        Vec::new()
    }
    fn notes(&self, _: &SiteId, _: &AgentId, _: &str, _: Timestamp) -> Vec<SiteNote> {
        Vec::new()
    }
}

/// One message on the live stream (`GET /api/v1/stream`).
#[derive(Debug, Clone, Serialize)]
pub struct StreamEvent {
    /// What happened to it (`None` for quiet changes such as a new summary or a hold).
    pub event: Option<NotifyEvent>,
    /// The site.
    pub site: SiteId,
    /// The agent.
    pub agent: AgentId,
    /// The escalation as it is now.
    pub escalation: outpost_shared::EscalationView,
}

/// What IT asks of the engine through the API.
#[derive(Debug)]
pub enum Command {
    /// Acknowledge with a note.
    Acknowledge {
        id: u64,
        by: String,
        note: Option<String>,
        reply: oneshot::Sender<Result<Escalation, EngineError>>,
    },
    /// Close it.
    Resolve {
        id: u64,
        by: Option<String>,
        reply: oneshot::Sender<Result<Escalation, EngineError>>,
    },
    /// Set a maintenance window (its id is assigned here).
    SetMaintenance {
        window: Maintenance,
        reply: oneshot::Sender<Result<Maintenance, EngineError>>,
    },
    /// End a maintenance window now.
    EndMaintenance {
        id: u64,
        reply: oneshot::Sender<Result<Maintenance, EngineError>>,
    },
    /// End the site team's planned work now.
    EndPlannedWork {
        site: SiteId,
        agent: AgentId,
        reply: oneshot::Sender<Result<(), EngineError>>,
    },
}

/// The decision task's parts.
pub struct Decider {
    /// The engine, shared with readers (API, dashboard).
    pub engine: Arc<RwLock<Engine>>,
    /// Persistence.
    pub log: Arc<dyn DecisionLog>,
    /// Retained escalation lists back to the sites.
    pub sink: Arc<dyn EscalationSink>,
    /// Context for notifications.
    pub context: Arc<dyn ContextSource>,
    /// Live stream.
    pub hub: broadcast::Sender<StreamEvent>,
    /// Configured notifiers.
    pub notifiers: Vec<NotifierTarget>,
    /// Wakes the delivery task when notifications were queued.
    pub wake: Arc<tokio::sync::Notify>,
    /// Base URL of the dashboard, for links in notifications.
    pub dashboard_url: Option<String>,
    /// The telemetry store: catch-up after a takeover, and the inbox of records other
    /// collectors stored.
    pub store: Arc<dyn Store>,
    /// Whether this collector decides (shared with the API and delivery).
    pub role: Arc<Role>,
    /// This collector's HTTP base URL, told to the others while it decides.
    pub advertise: String,
    /// What could not be saved yet (the database was away): saved with the next step.
    pub unsaved: Arc<std::sync::Mutex<Option<Step>>>,
}

/// After a takeover (a start, or another collector's death), results stored in this window
/// are fed to the engine again (it ignores what it already saw), so nothing committed by
/// ingest escapes the engine.
pub const CATCH_UP: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// How often the right to decide is checked (and taken when free).
const LEAD_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// How often the deciding collector takes the records other collectors stored.
const INBOX_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// Loads the engine from the decision log.
pub fn restore_engine(
    log: &dyn DecisionLog,
    settings: EngineSettings,
    now: Timestamp,
) -> Result<Engine, LogError> {
    let since = crate::engine::sub(now, settings.keep_resolved);
    let snapshot = log.load(since)?;
    let mut engine = Engine::restore(
        settings,
        snapshot.agents,
        snapshot.checks,
        snapshot.escalations,
        snapshot.maintenance,
        snapshot.next_id,
    );
    engine.resume_listening(now);
    Ok(engine)
}

impl Decider {
    /// Runs until cancelled: events from ingest, commands from the API, a tick every second.
    /// Events already queued are taken together and committed in one transaction.
    ///
    /// Only while it leads ([`Decider::lead`]): otherwise events are dropped (the store queued
    /// them for the leader) and commands are refused (the API passes them to the leader).
    pub async fn run(
        self,
        mut ingest: mpsc::Receiver<IngestEvent>,
        mut commands: mpsc::Receiver<Command>,
        cancel: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut lead = tokio::time::interval(LEAD_EVERY);
        lead.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut inbox = tokio::time::interval(INBOX_EVERY);
        inbox.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        if !self.role.leading() {
            self.lead().await;
        }
        lead.reset();
        let mut ingest_open = true;
        loop {
            let leading = self.role.leading();
            tokio::select! {
                () = cancel.cancelled() => break,
                event = ingest.recv(), if ingest_open => {
                    let Some(event) = event else {
                        ingest_open = false;
                        continue;
                    };
                    let mut events = events_from(event);
                    while events.len() < 5_000 {
                        let Ok(more) = ingest.try_recv() else { break };
                        events.extend(events_from(more));
                    }
                    if leading {
                        self.step(events).await;
                    }
                }
                Some(command) = commands.recv() => if leading {
                    self.command(command).await;
                },
                _ = tick.tick(), if leading => {
                    self.step(vec![Event::Tick { now: Timestamp::now() }]).await;
                }
                _ = inbox.tick(), if leading => self.drain_inbox().await,
                _ = lead.tick() => self.lead().await,
            }
        }
    }

    /// Checks the right to decide: takes over when it was just won, stands down when lost.
    pub async fn lead(&self) {
        let log = self.log.clone();
        let advertise = self.advertise.clone();
        let leadership = match tokio::task::spawn_blocking(move || log.lead(&advertise)).await {
            Ok(Ok(leadership)) => leadership,
            Ok(Err(e)) => {
                if self.role.leading() {
                    tracing::error!(error = %e, "cannot confirm the right to decide; standing down");
                }
                Leadership::Following { leader: None }
            }
            Err(e) => {
                tracing::error!(error = %e, "the leadership check failed");
                Leadership::Following { leader: None }
            }
        };
        match (self.role.leading(), &leadership) {
            (false, Leadership::Leading) => self.take_over().await,
            (true, Leadership::Following { .. }) => {
                tracing::warn!("another collector decides now; this one stores and forwards");
                // Apart: the read guard would still be held when the write lock is taken.
                let settings = self.read().settings().clone();
                *self.write() = Engine::new(settings);
                self.store.set_forwarding(true);
                self.role.set(&leadership);
            }
            _ => self.role.set(&leadership),
        }
    }

    /// Becomes the deciding collector: the engine from the decision log, then the results
    /// stored lately (by any collector) fed in again, then the records queued for it.
    async fn take_over(&self) {
        let log = self.log.clone();
        let settings = self.read().settings().clone();
        let restored = tokio::task::spawn_blocking(move || {
            restore_engine(log.as_ref(), settings, Timestamp::now())
        })
        .await;
        match restored {
            Ok(Ok(engine)) => *self.write() = engine,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot load escalations; trying again in a second");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "loading escalations failed; trying again in a second");
                return;
            }
        }
        self.store.set_forwarding(false);
        self.role.set(&Leadership::Leading);
        tracing::info!("this collector decides and notifies");
        self.step(catch_up(&self.store).await).await;
        self.drain_inbox().await;
    }

    /// Feeds the engine what other collectors stored for it.
    async fn drain_inbox(&self) {
        loop {
            let store = self.store.clone();
            let taken = tokio::task::spawn_blocking(move || store.take_inbox(500)).await;
            let batches = match taken {
                Ok(Ok(batches)) => batches,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot read the records other collectors stored");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the engine inbox failed");
                    return;
                }
            };
            let more = batches.len() == 500;
            let events: Vec<Event> = batches
                .into_iter()
                .flat_map(|b| {
                    events_from(IngestEvent::Records {
                        site: b.site,
                        agent: b.agent,
                        epoch: b.epoch,
                        records: b.records,
                        at: b.received,
                    })
                })
                .collect();
            self.step(events).await;
            if !more {
                return;
            }
        }
    }

    async fn command(&self, command: Command) {
        let now = Timestamp::now();
        match command {
            Command::Acknowledge {
                id,
                by,
                note,
                reply,
            } => {
                let result = self
                    .step_one(Event::Acknowledge {
                        id,
                        by,
                        note,
                        at: now,
                    })
                    .await;
                let _ = reply.send(result.map(|()| self.escalation(id)));
            }
            Command::Resolve { id, by, reply } => {
                let result = self.step_one(Event::Resolve { id, by, at: now }).await;
                let _ = reply.send(result.map(|()| self.escalation(id)));
            }
            Command::SetMaintenance { mut window, reply } => {
                window.id = self.write().allocate_id();
                let result = self
                    .step_one(Event::SetMaintenance {
                        window: window.clone(),
                        at: now,
                    })
                    .await;
                let _ = reply.send(result.map(|()| window));
            }
            Command::EndMaintenance { id, reply } => {
                let result = self.step_one(Event::EndMaintenance { id, at: now }).await;
                let window = self.read().maintenance(id).cloned();
                let _ = reply
                    .send(result.and_then(|()| window.ok_or(EngineError::UnknownMaintenance(id))));
            }
            Command::EndPlannedWork { site, agent, reply } => {
                let result = self
                    .step_one(Event::EndPlannedWork {
                        site,
                        agent,
                        at: now,
                    })
                    .await;
                let _ = reply.send(result);
            }
        }
    }

    fn escalation(&self, id: u64) -> Escalation {
        self.read()
            .escalation(id)
            .cloned()
            .expect("an escalation the engine just changed is in memory")
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Engine> {
        self.engine
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Engine> {
        self.engine
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn step_one(&self, event: Event) -> Result<(), EngineError> {
        let result = self.write().apply(event);
        match result {
            Ok(changes) => {
                self.commit(changes).await;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Applies events in order and commits the merged changes once.
    pub async fn step(&self, events: Vec<Event>) {
        let mut merged = Changes::default();
        {
            let mut engine = self.write();
            for event in events {
                match engine.apply(event) {
                    Ok(c) => merge(&mut merged, c),
                    Err(e) => tracing::warn!(error = %e, "engine refused an event"),
                }
            }
        }
        let retry = self
            .unsaved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some();
        if !merged.is_empty() || retry {
            self.commit(merged).await;
        }
    }

    /// Persists a step, then tells the sites, the stream and the notifiers.
    async fn commit(&self, changes: Changes) {
        let now = Timestamp::now();
        let (mut step, pending, lists, stream) = self.prepare(&changes, now);
        let log = self.log.clone();
        let context = self.context.clone();
        let notifiers = self.notifiers.clone();
        let unsaved = self.unsaved.clone();
        // The context reads and the write are blocking store calls: off the async threads.
        let saved = tokio::task::spawn_blocking(move || {
            for mut notification in pending {
                let e = &notification.escalation;
                let since = crate::engine::sub(e.opened_at, std::time::Duration::from_secs(3600));
                notification.recent = context.recent(&e.site, &e.agent, &e.check, 10);
                notification.notes = context.notes(&e.site, &e.agent, &e.check, since);
                step.notifications.extend(render(&notifiers, &notification));
            }
            let mut unsaved = unsaved
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(mut earlier) = unsaved.take() {
                earlier.absorb(step);
                step = earlier;
            }
            let saved = log.save(&step);
            match &saved {
                // Another collector decides now: it rebuilds from the log and catches up.
                Ok(()) | Err(LogError::NotLeader) => {}
                Err(_) => *unsaved = Some(step),
            }
            saved
        })
        .await;
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(
                error = %e,
                "could not persist escalation changes; they are kept and saved with the next step (notifications wait until then)"
            ),
            Err(e) => tracing::error!(error = %e, "the persistence task failed"),
        }
        for list in lists {
            self.sink.publish(list);
        }
        for event in stream {
            let _ = self.hub.send(event);
        }
        if !changes.notify.is_empty() {
            self.wake.notify_one();
        }
    }

    #[allow(clippy::type_complexity)]
    fn prepare(
        &self,
        changes: &Changes,
        now: Timestamp,
    ) -> (
        Step,
        Vec<Notification>,
        Vec<EscalationList>,
        Vec<StreamEvent>,
    ) {
        let engine = self.read();
        let mut step = Step {
            agents: Vec::new(),
            checks: Vec::new(),
            escalations: Vec::new(),
            maintenance: Vec::new(),
            next_id: engine.next_id(),
            notifications: Vec::new(),
            at: now,
        };
        for (site, agent) in &changes.agents {
            if let Some(info) = engine.agent(site, agent) {
                step.agents
                    .push(((site.clone(), agent.clone()), info.clone()));
            }
        }
        for key in &changes.checks {
            if let Some(state) = engine.check(key) {
                step.checks.push((key.clone(), state.clone()));
            }
        }
        step.escalations = changes
            .escalations
            .iter()
            .filter_map(|id| engine.escalation(*id).cloned())
            .collect();
        step.maintenance = changes
            .maintenance
            .iter()
            .filter_map(|id| engine.maintenance(*id).cloned())
            .collect();
        let mut stream = Vec::new();
        let mut pending = Vec::new();
        let mut announced = std::collections::BTreeSet::new();
        for (id, event) in &changes.notify {
            let Some(esc) = engine.escalation(*id) else {
                continue;
            };
            announced.insert(*id);
            stream.push(StreamEvent {
                event: Some(*event),
                site: esc.site.clone(),
                agent: esc.agent.clone(),
                escalation: esc.view(),
            });
            pending.push(build_notification(
                &engine,
                esc,
                *event,
                now,
                self.dashboard_url.as_deref(),
            ));
        }
        for esc in &step.escalations {
            if !announced.contains(&esc.id) {
                stream.push(StreamEvent {
                    event: None,
                    site: esc.site.clone(),
                    agent: esc.agent.clone(),
                    escalation: esc.view(),
                });
            }
        }
        let lists = changes
            .agents
            .iter()
            .map(|(site, agent)| EscalationList {
                v: outpost_shared::PROTOCOL_VERSION,
                site: site.clone(),
                agent: agent.clone(),
                updated_at: now,
                planned_work_ended_at: engine
                    .agent(site, agent)
                    .and_then(|i| i.planned_ended_by_it),
                escalations: engine
                    .escalations_of(site, agent)
                    .into_iter()
                    .filter(|e| !e.historical)
                    .map(Escalation::view)
                    .collect(),
            })
            .collect();
        (step, pending, lists, stream)
    }
}

/// Builds a notification (without store context) for one escalation change.
pub fn build_notification(
    engine: &Engine,
    esc: &Escalation,
    event: NotifyEvent,
    now: Timestamp,
    dashboard_url: Option<&str>,
) -> Notification {
    let policy = CheckId::new(esc.check.as_str()).ok().and_then(|c| {
        engine
            .agent(&esc.site, &esc.agent)
            .and_then(|a| a.checks.get(&c))
            .cloned()
    });
    let (title, runbook) = match (&policy, esc.kind) {
        (_, outpost_shared::EscalationKind::AgentOffline) => (
            format!("Agent {} at {}", esc.agent, esc.site),
            vec![
                "Check that the site's internet connection (router) is up.".to_owned(),
                "Check that the agent's computer is switched on.".to_owned(),
            ],
        ),
        (Some(p), _) if !p.title.is_empty() => (p.title.clone(), p.runbook.clone()),
        (p, _) => (
            esc.check.clone(),
            p.as_ref().map(|p| p.runbook.clone()).unwrap_or_default(),
        ),
    };
    Notification {
        dedup_key: esc.dedup_key(),
        event,
        at: now,
        escalation: esc.clone(),
        check_title: title,
        runbook,
        recent: Vec::new(),
        notes: Vec::new(),
        dashboard_url: dashboard_url
            .map(|base| format!("{}/#/escalations/{}", base.trim_end_matches('/'), esc.id)),
    }
}

/// Renders one notification for every notifier that wants it.
fn render(notifiers: &[NotifierTarget], n: &Notification) -> Vec<NewNotification> {
    notifiers
        .iter()
        .enumerate()
        .filter_map(|(i, target)| {
            let request = target.render(n)?;
            Some(NewNotification {
                escalation_id: n.escalation.id,
                event: n.event,
                notifier: format!("{}#{i}", target.kind.as_str()),
                dedup_key: n.dedup_key.clone(),
                url: request.url,
                body: request.body,
            })
        })
        .collect()
}

/// What one ingest event means to the engine: presence, catalogue, results, planned work.
pub fn events_from(event: IngestEvent) -> Vec<Event> {
    match event {
        IngestEvent::Birth { birth, at } => vec![Event::Birth {
            site: birth.site,
            agent: birth.agent,
            checks: birth.checks,
            at,
        }],
        IngestEvent::Presence {
            site,
            agent,
            state,
            at,
        } => vec![Event::Presence {
            site,
            agent,
            online: state == outpost_shared::PresenceState::Online,
            at,
        }],
        IngestEvent::Records {
            site,
            agent,
            records,
            at,
            ..
        } => records
            .into_iter()
            .filter_map(|record| match record.body {
                RecordBody::Result(result) => Some(Event::Result {
                    site: site.clone(),
                    agent: agent.clone(),
                    seq: record.seq,
                    ts: record.ts,
                    result,
                    at,
                }),
                RecordBody::Note(note) => match note.action {
                    NoteAction::PlannedWork => Some(Event::PlannedWork {
                        site: site.clone(),
                        agent: agent.clone(),
                        check: note.check,
                        until: note.until,
                        at,
                    }),
                    NoteAction::PlannedWorkEnded => Some(Event::PlannedWork {
                        site: site.clone(),
                        agent: agent.clone(),
                        check: note.check,
                        until: None,
                        at,
                    }),
                    _ => None,
                },
                RecordBody::Gap(_) => None,
            })
            .collect(),
    }
}

fn merge(into: &mut Changes, from: Changes) {
    into.escalations.extend(from.escalations);
    into.notify.extend(from.notify);
    into.checks.extend(from.checks);
    into.agents.extend(from.agents);
    into.maintenance.extend(from.maintenance);
}

/// Results stored in the last [`CATCH_UP`], oldest first, as engine events.
pub async fn catch_up(store: &Arc<dyn Store>) -> Vec<Event> {
    let store = store.clone();
    let since = crate::engine::sub(Timestamp::now(), CATCH_UP);
    let rows = tokio::task::spawn_blocking(move || {
        store.results(&ResultQuery {
            since: Some(since),
            limit: 100_000,
            ..ResultQuery::default()
        })
    })
    .await;
    let Ok(Ok(mut rows)) = rows else {
        tracing::warn!("could not read recent results to catch the engine up");
        return Vec::new();
    };
    rows.reverse();
    let now = Timestamp::now();
    // Received about when made: a replayed result is no news that an offline agent is back.
    rows.into_iter()
        .map(|r| Event::Result {
            site: r.site,
            agent: r.agent,
            seq: r.seq,
            ts: r.ts,
            result: r.result,
            at: r.ts.min(now),
        })
        .collect()
}
