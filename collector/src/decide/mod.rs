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
    DecisionLog, LogError, NewNotification, NotificationLogEntry, QueuedNotification, Snapshot,
    Step,
};
pub use postgres::PostgresLog;
pub use refresh::{REFRESH_EVERY, refresh_alerts};
pub use sqlite::SqliteLog;

use crate::{
    engine::{
        Changes, CheckKey, Engine, EngineError, EngineSettings, Escalation, Event, Maintenance,
        NotifyEvent,
    },
    ingest::IngestEvent,
    notify::{Notification, NotifierTarget, RecentResult, SiteNote},
};

/// Opens the decision log for a store URL (`sqlite://PATH` or `postgres://...`).
pub fn open_log(url: &str) -> Result<Arc<dyn DecisionLog>, LogError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        return Ok(Arc::new(SqliteLog::open(std::path::Path::new(path))?));
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
}

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
    pub async fn run(
        self,
        mut ingest: mpsc::Receiver<IngestEvent>,
        mut commands: mpsc::Receiver<Command>,
        cancel: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut ingest_open = true;
        loop {
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
                    self.step(events).await;
                }
                Some(command) = commands.recv() => self.command(command).await,
                _ = tick.tick() => { self.step(vec![Event::Tick { now: Timestamp::now() }]).await; }
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
                    .step_one(Event::PlannedWork {
                        site,
                        agent,
                        until: None,
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
        if !merged.is_empty() {
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
        // The context reads and the write are blocking store calls: off the async threads.
        let saved = tokio::task::spawn_blocking(move || {
            for mut notification in pending {
                let e = &notification.escalation;
                let since = crate::engine::sub(e.opened_at, std::time::Duration::from_secs(3600));
                notification.recent = context.recent(&e.site, &e.agent, &e.check, 10);
                notification.notes = context.notes(&e.site, &e.agent, &e.check, since);
                step.notifications.extend(render(&notifiers, &notification));
            }
            log.save(&step)
        })
        .await;
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(
                error = %e,
                "could not persist escalation changes; they live in memory until the next step succeeds"
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
                        until: note.until,
                        at,
                    }),
                    NoteAction::PlannedWorkEnded => Some(Event::PlannedWork {
                        site: site.clone(),
                        agent: agent.clone(),
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
