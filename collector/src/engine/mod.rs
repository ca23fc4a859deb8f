//! The threshold engine and the escalation lifecycle, as a pure state machine:
//! `(state, event, now) → (state, changes)`. No I/O, no clock: time comes in the events.

mod check;
mod escalation;
mod liveness;
mod policy;
mod schedule;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use outpost_shared::{
    AgentId, CheckId, CheckSpec, EscalationKind, EscalationState, ResultRecord, SiteId, Timestamp,
};

pub use check::{CheckKey, CheckState};
pub use escalation::{Escalation, Hold, NotifyEvent};
pub use policy::{AgentInfo, CheckPolicy, EngineSettings, Maintenance};
pub use schedule::ScheduledWindow;

/// The check name used for agent-offline escalations.
pub const AGENT_OFFLINE: &str = "agent-offline";

/// Subtracts a std duration from a timestamp, saturating at the start of time.
pub fn sub(ts: Timestamp, d: std::time::Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| ts.checked_sub(d).ok())
        .unwrap_or(Timestamp::MIN)
}

/// Adds a std duration to a timestamp, saturating at the end of time.
pub fn add(ts: Timestamp, d: std::time::Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| ts.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// Something that happened, as the engine sees it.
#[derive(Debug, Clone)]
pub enum Event {
    /// An agent (re)announced its check catalogue.
    Birth {
        site: SiteId,
        agent: AgentId,
        checks: Vec<CheckSpec>,
        at: Timestamp,
    },
    /// The agent's presence changed (retained state or Last Will).
    Presence {
        site: SiteId,
        agent: AgentId,
        online: bool,
        at: Timestamp,
    },
    /// A newly stored result (`at` is when the collector received it).
    Result {
        site: SiteId,
        agent: AgentId,
        seq: u64,
        ts: Timestamp,
        result: ResultRecord,
        at: Timestamp,
    },
    /// The site team declared planned work until `until`, or ended it (`None`), on one
    /// check or (`check: None`) the whole agent.
    PlannedWork {
        site: SiteId,
        agent: AgentId,
        check: Option<CheckId>,
        until: Option<Timestamp>,
        at: Timestamp,
    },
    /// IT ended all of the site team's planned work on an agent early.
    EndPlannedWork {
        site: SiteId,
        agent: AgentId,
        at: Timestamp,
    },
    /// IT acknowledged an escalation.
    Acknowledge {
        id: u64,
        by: String,
        note: Option<String>,
        at: Timestamp,
    },
    /// IT closed an escalation (`by`: who, when given).
    Resolve {
        id: u64,
        by: Option<String>,
        at: Timestamp,
    },
    /// IT set a maintenance window (at `at`; the window may start later).
    SetMaintenance { window: Maintenance, at: Timestamp },
    /// IT ended a maintenance window early.
    EndMaintenance { id: u64, at: Timestamp },
    /// Time passed: windows, silence, reminders, expiries.
    Tick { now: Timestamp },
}

/// What an event changed: what to persist, whom to notify, which retained lists to publish.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Changes {
    /// Escalations created or changed (persist them).
    pub escalations: BTreeSet<u64>,
    /// Notifications to send, in order.
    pub notify: Vec<(u64, NotifyEvent)>,
    /// Check states changed (persist them).
    pub checks: BTreeSet<CheckKey>,
    /// Agents whose info or escalation list changed (persist, publish `escalations`).
    pub agents: BTreeSet<(SiteId, AgentId)>,
    /// Maintenance windows created or changed.
    pub maintenance: BTreeSet<u64>,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.escalations.is_empty()
            && self.notify.is_empty()
            && self.checks.is_empty()
            && self.agents.is_empty()
            && self.maintenance.is_empty()
    }
}

/// Why IT's request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// No such escalation (or resolved long ago).
    #[error("escalation {0} does not exist or was resolved more than a day ago")]
    UnknownEscalation(u64),
    /// Already resolved.
    #[error("escalation {0} is already resolved")]
    AlreadyResolved(u64),
    /// No such maintenance window.
    #[error("maintenance window {0} does not exist")]
    UnknownMaintenance(u64),
}

/// The whole decision state of the collector.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    settings: EngineSettings,
    agents: HashMap<(SiteId, AgentId), AgentInfo>,
    checks: HashMap<CheckKey, CheckState>,
    escalations: BTreeMap<u64, Escalation>,
    maintenance: BTreeMap<u64, Maintenance>,
    next_id: u64,
}

impl Engine {
    /// An empty engine.
    pub fn new(settings: EngineSettings) -> Self {
        Self {
            settings,
            next_id: 1,
            ..Self::default()
        }
    }

    /// Rebuilds the engine from persisted state (after a restart).
    pub fn restore(
        settings: EngineSettings,
        agents: impl IntoIterator<Item = ((SiteId, AgentId), AgentInfo)>,
        checks: impl IntoIterator<Item = (CheckKey, CheckState)>,
        escalations: impl IntoIterator<Item = Escalation>,
        maintenance: impl IntoIterator<Item = Maintenance>,
        next_id: u64,
    ) -> Self {
        let escalations: BTreeMap<u64, Escalation> =
            escalations.into_iter().map(|e| (e.id, e)).collect();
        let maintenance: BTreeMap<u64, Maintenance> =
            maintenance.into_iter().map(|m| (m.id, m)).collect();
        let max_id = escalations
            .keys()
            .chain(maintenance.keys())
            .max()
            .copied()
            .unwrap_or(0);
        Self {
            settings,
            agents: agents.into_iter().collect(),
            checks: checks.into_iter().collect(),
            escalations,
            maintenance,
            next_id: next_id.max(max_id + 1),
        }
    }

    /// Settings in force.
    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// Starts the silence clocks at `now`: a collector that was down heard nothing, so an
    /// agent is not silent until it has been listened to for its `offline_after`.
    pub fn resume_listening(&mut self, now: Timestamp) {
        for info in self.agents.values_mut() {
            if info.online {
                info.last_seen = Some(info.last_seen.map_or(now, |t| t.max(now)));
            }
        }
    }

    /// The next id the engine will hand out (persist it).
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// An escalation by id (open or recently resolved).
    pub fn escalation(&self, id: u64) -> Option<&Escalation> {
        self.escalations.get(&id)
    }

    /// All escalations in memory: open and recently resolved.
    pub fn escalations(&self) -> impl Iterator<Item = &Escalation> {
        self.escalations.values()
    }

    /// Escalations of one agent (open and recently resolved), newest first.
    pub fn escalations_of(&self, site: &SiteId, agent: &AgentId) -> Vec<&Escalation> {
        let mut list: Vec<_> = self
            .escalations
            .values()
            .filter(|e| &e.site == site && &e.agent == agent)
            .collect();
        list.sort_by_key(|e| std::cmp::Reverse(e.id));
        list
    }

    /// A check's state.
    pub fn check(&self, key: &CheckKey) -> Option<&CheckState> {
        self.checks.get(key)
    }

    /// An agent's info.
    pub fn agent(&self, site: &SiteId, agent: &AgentId) -> Option<&AgentInfo> {
        self.agents.get(&(site.clone(), agent.clone()))
    }

    /// Every agent the engine knows.
    pub fn agents(&self) -> impl Iterator<Item = (&(SiteId, AgentId), &AgentInfo)> {
        self.agents.iter()
    }

    /// A maintenance window.
    pub fn maintenance(&self, id: u64) -> Option<&Maintenance> {
        self.maintenance.get(&id)
    }

    /// All maintenance windows in memory.
    pub fn maintenance_windows(&self) -> impl Iterator<Item = &Maintenance> {
        self.maintenance.values()
    }

    /// Applies one event.
    pub fn apply(&mut self, event: Event) -> Result<Changes, EngineError> {
        let mut changes = Changes::default();
        match event {
            Event::Birth {
                site,
                agent,
                checks,
                at,
            } => {
                let info = self
                    .agents
                    .entry((site.clone(), agent.clone()))
                    .or_default();
                info.checks = checks
                    .iter()
                    .map(|c| (c.id.clone(), CheckPolicy::from(c)))
                    .collect();
                info.last_seen = Some(info.last_seen.map_or(at, |t| t.max(at)));
                changes.agents.insert((site, agent));
            }
            Event::Presence {
                site,
                agent,
                online,
                at,
            } => self.on_presence(&site, &agent, online, at, &mut changes),
            Event::Result {
                site,
                agent,
                seq,
                ts,
                result,
                at,
            } => self.on_result(&site, &agent, seq, ts, &result, at, &mut changes),
            Event::PlannedWork {
                site,
                agent,
                check,
                until,
                at,
            } => {
                let cap = add(at, self.settings.max_planned_work);
                let until = until.map(|u| u.min(cap)).filter(|u| *u > at);
                let info = self
                    .agents
                    .entry((site.clone(), agent.clone()))
                    .or_default();
                match (check, until) {
                    (None, until) => info.planned_until = until,
                    (Some(check), Some(until)) => {
                        info.planned_checks.insert(check, until);
                    }
                    (Some(check), None) => {
                        info.planned_checks.remove(&check);
                    }
                }
                changes.agents.insert((site.clone(), agent.clone()));
                self.reevaluate_holds(&site, &agent, at, &mut changes);
            }
            Event::EndPlannedWork { site, agent, at } => {
                let info = self
                    .agents
                    .entry((site.clone(), agent.clone()))
                    .or_default();
                info.planned_until = None;
                info.planned_checks.clear();
                info.planned_ended_by_it = Some(at);
                changes.agents.insert((site.clone(), agent.clone()));
                self.reevaluate_holds(&site, &agent, at, &mut changes);
            }
            Event::Acknowledge { id, by, note, at } => {
                let esc = self.open_escalation_mut(id)?;
                let events = esc.acknowledge(by, note, at);
                self.record(id, events, &mut changes);
            }
            Event::Resolve { id, by, at } => {
                let esc = self.open_escalation_mut(id)?;
                let events = esc.resolve(at, true);
                esc.resolved_by = by;
                let (site, agent, check) = (esc.site.clone(), esc.agent.clone(), esc.check.clone());
                self.detach(id, &site, &agent, &check, &mut changes);
                self.record(id, events, &mut changes);
                self.reevaluate_holds(&site, &agent, at, &mut changes);
            }
            Event::SetMaintenance { window, at } => {
                let site = window.site.clone();
                changes.maintenance.insert(window.id);
                self.next_id = self.next_id.max(window.id + 1);
                self.maintenance.insert(window.id, window);
                for agent in self.agents_of(&site) {
                    self.reevaluate_holds(&site, &agent, at, &mut changes);
                }
            }
            Event::EndMaintenance { id, at } => {
                let window = self
                    .maintenance
                    .get_mut(&id)
                    .ok_or(EngineError::UnknownMaintenance(id))?;
                window.ends_at = window.ends_at.min(at);
                let site = window.site.clone();
                changes.maintenance.insert(id);
                for agent in self.agents_of(&site) {
                    self.reevaluate_holds(&site, &agent, at, &mut changes);
                }
            }
            Event::Tick { now } => self.on_tick(now, &mut changes),
        }
        Ok(changes)
    }

    /// Hands out a new id for an escalation or a maintenance window.
    pub fn allocate_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn agents_of(&self, site: &SiteId) -> Vec<AgentId> {
        self.agents
            .keys()
            .filter(|(s, _)| s == site)
            .map(|(_, a)| a.clone())
            .collect()
    }

    fn open_escalation_mut(&mut self, id: u64) -> Result<&mut Escalation, EngineError> {
        let esc = self
            .escalations
            .get_mut(&id)
            .ok_or(EngineError::UnknownEscalation(id))?;
        if esc.is_open() {
            Ok(esc)
        } else {
            Err(EngineError::AlreadyResolved(id))
        }
    }

    fn record(&mut self, id: u64, events: Vec<NotifyEvent>, changes: &mut Changes) {
        if let Some(esc) = self.escalations.get(&id) {
            changes.escalations.insert(id);
            changes.agents.insert((esc.site.clone(), esc.agent.clone()));
            changes.notify.extend(events.into_iter().map(|e| (id, e)));
        }
    }

    /// Forgets the link from a check (or agent) to an escalation that just closed.
    fn detach(
        &mut self,
        id: u64,
        site: &SiteId,
        agent: &AgentId,
        check: &str,
        changes: &mut Changes,
    ) {
        let Ok(check) = CheckId::new(check) else {
            return;
        };
        let key = CheckKey::new(site, agent, &check);
        if let Some(state) = self.checks.get_mut(&key) {
            if state.escalation == Some(id) {
                state.escalation = None;
            }
            if state.flapping == Some(id) {
                state.flapping = None;
            }
            changes.checks.insert(key);
        }
    }

    /// Why an escalation of `check` (or of the agent itself when `None`) must wait now.
    fn hold_for(
        &self,
        site: &SiteId,
        agent: &AgentId,
        check: Option<&CheckId>,
        now: Timestamp,
    ) -> Option<Hold> {
        let info = self.agents.get(&(site.clone(), agent.clone()));
        if check.is_some() && info.is_some_and(|i| !i.online) {
            return Some(Hold::AgentOffline);
        }
        let planned_check = check.and_then(|c| info.and_then(|i| i.planned_checks.get(c)));
        if info
            .and_then(|i| i.planned_until)
            .into_iter()
            .chain(planned_check.copied())
            .any(|u| now < u)
        {
            return Some(Hold::Maintenance(
                "planned work declared by the site team".into(),
            ));
        }
        if let Some(m) = self
            .maintenance
            .values()
            .find(|m| m.covers(site, agent, check, now))
        {
            return Some(Hold::Maintenance(m.reason.clone()));
        }
        if let Some(w) = self
            .settings
            .scheduled
            .iter()
            .find(|w| w.covers(site, agent, check, now))
        {
            return Some(Hold::Maintenance(w.reason.clone()));
        }
        let check = check?;
        let key = CheckKey::new(site, agent, check);
        let policy = info.and_then(|i| i.checks.get(check));
        for dep in policy.map(|p| p.depends_on.as_slice()).unwrap_or_default() {
            let dep_key = CheckKey::new(site, agent, dep);
            if self.checks.get(&dep_key).is_some_and(|s| s.failing) {
                return Some(Hold::Dependency(dep.to_string()));
            }
        }
        if self.checks.get(&key).is_some_and(|s| s.flapping.is_some()) {
            return Some(Hold::Flapping);
        }
        None
    }

    /// Brings the holds of an agent's open escalations up to date: a reason that arose holds
    /// them (a window stops running out, reminders stop), a reason that passed lets them go on.
    fn reevaluate_holds(
        &mut self,
        site: &SiteId,
        agent: &AgentId,
        now: Timestamp,
        changes: &mut Changes,
    ) {
        let open: Vec<u64> = self
            .escalations
            .values()
            .filter(|e| &e.site == site && &e.agent == agent && e.is_open() && !e.historical)
            .map(|e| e.id)
            .collect();
        for id in open {
            self.advance(id, now, changes);
        }
    }

    /// Holds an open escalation for the current reason, or lets it go on when none is left:
    /// a new one into its window, a held window from the start, one with IT as it was.
    fn advance(&mut self, id: u64, now: Timestamp, changes: &mut Changes) {
        let Some(esc) = self.escalations.get(&id) else {
            return;
        };
        let (site, agent, kind) = (esc.site.clone(), esc.agent.clone(), esc.kind);
        let check = CheckId::new(esc.check.as_str())
            .ok()
            .filter(|_| kind != EscalationKind::AgentOffline);
        // The flapping escalation speaks for a flapping check: it is not held by itself.
        let hold = self
            .hold_for(&site, &agent, check.as_ref(), now)
            .filter(|h| !(kind == EscalationKind::Flapping && *h == Hold::Flapping));
        let window = self.window_for(&site, &agent, esc);
        let Some(esc) = self.escalations.get_mut(&id) else {
            return;
        };
        match hold {
            Some(h) if esc.held.as_ref() != Some(&h) => {
                esc.held = Some(h);
                self.record(id, Vec::new(), changes);
            }
            None if esc.state == EscalationState::Failing => {
                let events = esc.start_window(window, now);
                self.record(id, events, changes);
            }
            None if esc.held.is_some() => {
                esc.resume(window, now);
                self.record(id, Vec::new(), changes);
            }
            // Held for the same reason as before, or going on as it was.
            Some(_) | None => {}
        }
    }

    fn window_for(&self, site: &SiteId, agent: &AgentId, esc: &Escalation) -> std::time::Duration {
        if esc.kind == EscalationKind::AgentOffline {
            return self.settings.offline_window;
        }
        CheckId::new(esc.check.as_str())
            .ok()
            .and_then(|c| {
                self.agents
                    .get(&(site.clone(), agent.clone()))
                    .and_then(|i| i.checks.get(&c))
                    .map(|p| p.local_window)
            })
            .unwrap_or_default()
    }

    /// Opens an escalation; it starts its window at once unless something holds it.
    #[allow(clippy::too_many_arguments)]
    fn open(
        &mut self,
        site: &SiteId,
        agent: &AgentId,
        check: &str,
        kind: EscalationKind,
        summary: String,
        opened_at: Timestamp,
        historical: bool,
        now: Timestamp,
        changes: &mut Changes,
    ) -> u64 {
        let id = self.allocate_id();
        let esc = Escalation {
            id,
            site: site.clone(),
            agent: agent.clone(),
            check: check.to_owned(),
            kind,
            state: EscalationState::Failing,
            opened_at,
            local_until: None,
            escalated_at: None,
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_by: None,
            note: None,
            resolved_at: None,
            fixed_by: None,
            summary,
            held: None,
            historical,
            last_notified_at: None,
        };
        self.escalations.insert(id, esc);
        if historical {
            // Learned only from replayed records: recorded, never paged.
            self.record(id, Vec::new(), changes);
        } else {
            self.advance(id, now, changes);
        }
        id
    }
}
