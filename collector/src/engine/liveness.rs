//! Time-driven rules: agent presence and silence, local windows running out, reminders,
//! expiring maintenance, calming flapping, and forgetting old resolved escalations.

use outpost_shared::{AgentId, EscalationKind, EscalationState, SiteId, Timestamp};

use super::{AGENT_OFFLINE, Changes, Engine, NotifyEvent, add};

impl Engine {
    /// Presence from the retained `state` topic or the Last Will: `offline` opens
    /// `agent-offline` once it has lasted [`EngineSettings::offline_grace`] (see `on_tick`).
    ///
    /// [`EngineSettings::offline_grace`]: super::EngineSettings::offline_grace
    pub(super) fn on_presence(
        &mut self,
        site: &SiteId,
        agent: &AgentId,
        online: bool,
        at: Timestamp,
        changes: &mut Changes,
    ) {
        if !online && !self.settings.offline_grace.is_zero() {
            let info = self
                .agents
                .entry((site.clone(), agent.clone()))
                .or_default();
            info.online = false;
            info.offline_since.get_or_insert(at);
            changes.agents.insert((site.clone(), agent.clone()));
            return;
        }
        self.presence_now(site, agent, online, at, changes);
    }

    /// A fresh result from an agent taken for offline: it is evidently connected again (its
    /// results may overtake its `online` state on the way).
    pub(super) fn heard_from(
        &mut self,
        site: &SiteId,
        agent: &AgentId,
        at: Timestamp,
        changes: &mut Changes,
    ) {
        // Every live result comes here: an agent known to be online costs one lookup.
        let Some(info) = self
            .agents
            .get(&(site.clone(), agent.clone()))
            .filter(|i| !i.online)
        else {
            return;
        };
        // Offline since its Will, or since silence opened its agent-offline escalation: only
        // a result received after that is news of the agent.
        let offline_at = info.offline_since.or_else(|| {
            self.escalations
                .values()
                .filter(|e| {
                    &e.site == site
                        && &e.agent == agent
                        && e.kind == EscalationKind::AgentOffline
                        && e.is_open()
                })
                .map(|e| e.opened_at)
                .max()
        });
        if offline_at.is_none_or(|since| at > since) {
            self.presence_now(site, agent, true, at, changes);
        }
    }

    /// Applies presence at once (silence past `offline_after` has waited long enough).
    fn presence_now(
        &mut self,
        site: &SiteId,
        agent: &AgentId,
        online: bool,
        at: Timestamp,
        changes: &mut Changes,
    ) {
        let info = self
            .agents
            .entry((site.clone(), agent.clone()))
            .or_default();
        let was_online = info.online;
        info.online = online;
        info.offline_since = None;
        if online {
            info.last_seen = Some(info.last_seen.map_or(at, |t| t.max(at)));
        }
        changes.agents.insert((site.clone(), agent.clone()));
        let open_offline = self
            .escalations
            .values()
            .find(|e| {
                &e.site == site
                    && &e.agent == agent
                    && e.kind == EscalationKind::AgentOffline
                    && e.is_open()
            })
            .map(|e| e.id);
        match (online, open_offline) {
            (true, Some(id)) => {
                if let Some(esc) = self.escalations.get_mut(&id) {
                    esc.summary = "The agent is reporting again.".into();
                    let events = esc.resolve(at, false);
                    self.record(id, events, changes);
                }
                self.reevaluate_holds(site, agent, at, changes);
            }
            (true, None) if !was_online => self.reevaluate_holds(site, agent, at, changes),
            (false, None) => {
                let summary = "The agent stopped reporting: the site's connection to head office, \
                               the agent's host or its power may be down."
                    .to_owned();
                self.open(
                    site,
                    agent,
                    AGENT_OFFLINE,
                    EscalationKind::AgentOffline,
                    summary,
                    at,
                    false,
                    at,
                    changes,
                );
                // The agent-offline escalation now speaks for its running ones.
                self.reevaluate_holds(site, agent, at, changes);
            }
            _ => {}
        }
    }

    pub(super) fn on_tick(&mut self, now: Timestamp, changes: &mut Changes) {
        // Silence past offline_after counts as offline.
        let silent: Vec<(SiteId, AgentId)> = self
            .agents
            .iter()
            .filter(|(_, info)| {
                info.online
                    && info
                        .last_seen
                        .is_some_and(|seen| add(seen, info.offline_after(&self.settings)) <= now)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for (site, agent) in silent {
            self.presence_now(&site, &agent, false, now, changes);
        }
        // A Last Will not followed by `online` within the grace: offline since the Will.
        let grace = self.settings.offline_grace;
        let gone: Vec<(SiteId, AgentId, Timestamp)> = self
            .agents
            .iter()
            .filter_map(|((site, agent), info)| {
                let since = info.offline_since?;
                (add(since, grace) <= now).then(|| (site.clone(), agent.clone(), since))
            })
            .collect();
        for (site, agent, since) in gone {
            self.presence_now(&site, &agent, false, since, changes);
        }

        // Planned work and maintenance that ended release what they held.
        let mut release: Vec<(SiteId, AgentId)> = Vec::new();
        for ((site, agent), info) in &mut self.agents {
            let checks_before = info.planned_checks.len();
            info.planned_checks.retain(|_, until| *until > now);
            if info.planned_until.is_some_and(|u| u <= now)
                || info.planned_checks.len() != checks_before
            {
                info.planned_until = info.planned_until.filter(|u| *u > now);
                changes.agents.insert((site.clone(), agent.clone()));
                release.push((site.clone(), agent.clone()));
            }
        }
        // Maintenance windows start and end with time: every open escalation is looked at.
        let open: Vec<(SiteId, AgentId)> = self
            .escalations
            .values()
            .filter(|e| e.is_open() && !e.historical)
            .map(|e| (e.site.clone(), e.agent.clone()))
            .collect();
        release.extend(open);
        release.sort();
        release.dedup();
        for (site, agent) in release {
            self.reevaluate_holds(&site, &agent, now, changes);
        }

        // Flapping calms down when no change happened for a whole window.
        let window = jiff::SignedDuration::try_from(self.settings.flap_window)
            .unwrap_or(jiff::SignedDuration::MAX);
        let horizon = now.checked_sub(window).unwrap_or(Timestamp::MIN);
        let calm: Vec<u64> = self
            .checks
            .values_mut()
            .filter_map(|state| {
                while state.changes.front().is_some_and(|t| *t < horizon) {
                    state.changes.pop_front();
                }
                state.changes.is_empty().then_some(state.flapping).flatten()
            })
            .collect();
        for id in calm {
            if let Some(esc) = self.escalations.get_mut(&id).filter(|e| e.is_open()) {
                esc.summary = "The check has been steady again for a whole window.".into();
                let events = esc.resolve(now, false);
                let (site, agent, check) = (esc.site.clone(), esc.agent.clone(), esc.check.clone());
                self.detach(id, &site, &agent, &check, changes);
                self.record(id, events, changes);
                self.reevaluate_holds(&site, &agent, now, changes);
            }
        }

        // Windows that ran out call IT; unacknowledged ones are reminded.
        let reminder = self.settings.reminder;
        let mut due: Vec<(u64, NotifyEvent)> = Vec::new();
        for esc in self.escalations.values_mut() {
            if esc.held.is_some() || esc.historical {
                continue;
            }
            match esc.state {
                EscalationState::Local if esc.local_until.is_some_and(|u| u <= now) => {
                    due.extend(esc.escalate(now).into_iter().map(|e| (esc.id, e)));
                }
                EscalationState::Escalated => {
                    if let (Some(every), Some(last)) = (reminder, esc.last_notified_at)
                        && add(last, every) <= now
                    {
                        esc.last_notified_at = Some(now);
                        due.push((esc.id, NotifyEvent::Reminder));
                    }
                }
                _ => {}
            }
        }
        for (id, event) in due {
            self.record(id, vec![event], changes);
        }

        // Resolved escalations leave memory (not the store) after a while.
        let keep = self.settings.keep_resolved;
        self.escalations
            .retain(|_, e| e.is_open() || e.resolved_at.is_none_or(|r| add(r, keep) > now));
        self.maintenance.retain(|_, m| add(m.ends_at, keep) > now);
    }
}
