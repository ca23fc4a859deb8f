//! Per-check state: consecutive counts against `fail_after` / `recover_after`, flapping, and
//! the link to the check's open escalation.

use std::collections::VecDeque;

use outpost_shared::{AgentId, CheckId, EscalationKind, ResultRecord, SiteId, Status, Timestamp};
use serde::{Deserialize, Serialize};

use super::{Changes, Engine};

/// Identifies one check of one agent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CheckKey {
    /// The site.
    pub site: SiteId,
    /// The agent.
    pub agent: AgentId,
    /// The check.
    pub check: CheckId,
}

impl CheckKey {
    /// A key from its parts.
    pub fn new(site: &SiteId, agent: &AgentId, check: &CheckId) -> Self {
        Self {
            site: site.clone(),
            agent: agent.clone(),
            check: check.clone(),
        }
    }
}

/// What the engine remembers about one check.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CheckState {
    /// Time and seq of the newest result seen; older ones only fill history.
    pub last: Option<(Timestamp, u64)>,
    /// Status of the newest result.
    pub status: Option<Status>,
    /// Consecutive bad results.
    pub bad_run: u32,
    /// Consecutive good results.
    pub good_run: u32,
    /// The threshold is crossed (until `recover_after` good results).
    pub failing: bool,
    /// When the check last went good→bad or bad→good, inside the flapping window: the newest
    /// `flap_limit` of them at most.
    pub changes: VecDeque<Timestamp>,
    /// The open check escalation.
    pub escalation: Option<u64>,
    /// The open flapping escalation.
    pub flapping: Option<u64>,
    /// Newest summary.
    pub summary: String,
}

impl CheckState {
    fn was_bad(&self) -> Option<bool> {
        self.status.map(Status::is_failure)
    }
}

impl Engine {
    /// One newly stored result.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_result(
        &mut self,
        site: &SiteId,
        agent: &AgentId,
        seq: u64,
        ts: Timestamp,
        result: &ResultRecord,
        at: Timestamp,
        changes: &mut Changes,
    ) {
        if !result.historical {
            self.heard_from(site, agent, at, changes);
        }
        let info = self
            .agents
            .entry((site.clone(), agent.clone()))
            .or_default();
        info.last_seen = Some(info.last_seen.map_or(at, |t| t.max(at)));
        let policy = info.checks.get(&result.check).cloned().unwrap_or_default();
        let key = CheckKey::new(site, agent, &result.check);
        let flap_window = self.settings.flap_window;
        let flap_limit = self.settings.flap_limit;

        let state = self.checks.entry(key.clone()).or_default();
        if state.last.is_some_and(|last| (ts, seq) <= last) {
            return; // an older or repeated result: history only, it drives nothing
        }
        state.last = Some((ts, seq));
        let bad =
            result.status.is_failure() || (policy.escalate_warn && result.status == Status::Warn);
        if state.was_bad().is_some_and(|was| was != bad) {
            state.changes.push_back(ts);
            // Only "at least `flap_limit` in the window" and "none in the window" matter, so
            // the newest `flap_limit` changes are the whole answer: a check flapping for hours
            // keeps (and the decision log saves) a handful of times, not every change.
            while state.changes.len() > flap_limit {
                state.changes.pop_front();
            }
        }
        let horizon = ts
            .checked_sub(
                jiff::SignedDuration::try_from(flap_window).unwrap_or(jiff::SignedDuration::MAX),
            )
            .unwrap_or(Timestamp::MIN);
        while state.changes.front().is_some_and(|t| *t < horizon) {
            state.changes.pop_front();
        }
        state.status = Some(if bad && result.status == Status::Warn {
            Status::Warn
        } else {
            result.status
        });
        state.summary.clone_from(&result.summary);
        if bad {
            state.bad_run = state.bad_run.saturating_add(1);
            state.good_run = 0;
        } else {
            state.good_run = state.good_run.saturating_add(1);
            state.bad_run = 0;
        }
        let start_flapping = state.changes.len() >= flap_limit && state.flapping.is_none();
        let cross = !state.failing && bad && state.bad_run >= policy.fail_after;
        let recover = state.failing && !bad && state.good_run >= policy.recover_after;
        let open_id = state.escalation;
        changes.checks.insert(key.clone());

        if start_flapping {
            let summary = format!(
                "The check changed between working and not working {} times within {}.",
                flap_limit,
                outpost_shared::HumanDuration::new(flap_window)
            );
            let id = self.open(
                site,
                agent,
                key.check.as_str(),
                EscalationKind::Flapping,
                summary,
                ts,
                result.historical,
                at,
                changes,
            );
            if let Some(state) = self.checks.get_mut(&key) {
                state.flapping = Some(id);
            }
            if let Some(esc) = open_id.and_then(|id| self.escalations.get_mut(&id))
                && esc.held.is_none()
                && esc.state == outpost_shared::EscalationState::Failing
            {
                esc.held = Some(super::Hold::Flapping);
            }
        }

        if cross {
            if let Some(state) = self.checks.get_mut(&key) {
                state.failing = true;
            }
            let id = self.open(
                site,
                agent,
                key.check.as_str(),
                EscalationKind::Check,
                result.summary.clone(),
                ts,
                result.historical,
                at,
                changes,
            );
            if let Some(state) = self.checks.get_mut(&key) {
                state.escalation = Some(id);
            }
            // Checks that depend on this one are held under it from now on.
            self.reevaluate_holds(site, agent, at, changes);
        } else if recover {
            if let Some(state) = self.checks.get_mut(&key) {
                state.failing = false;
                state.escalation = None;
            }
            if let Some(id) = open_id
                && let Some(esc) = self.escalations.get_mut(&id)
                && esc.is_open()
            {
                esc.summary.clone_from(&result.summary);
                let events = esc.resolve(ts.max(esc.opened_at), false);
                self.record(id, events, changes);
            }
            // Checks held under this one may go ahead (or have recovered with it).
            self.reevaluate_holds(site, agent, at, changes);
        } else if let Some(id) = open_id
            && let Some(esc) = self.escalations.get_mut(&id)
            && esc.is_open()
        {
            if bad {
                esc.summary.clone_from(&result.summary);
                changes.escalations.insert(id);
            }
            // Opened from replayed records and still failing now: it is live, page it.
            if esc.historical && !result.historical && bad {
                esc.historical = false;
                self.advance(id, at, changes);
            }
        }
    }
}
