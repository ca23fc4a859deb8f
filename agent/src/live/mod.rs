//! Live state shared by the scheduler, the publisher, the checks and the site page: the latest
//! result of each check, heartbeat reports, checklist confirmations, the collector's escalations
//! and the connection state. Writes by people (notes, reports, confirmations) go through here.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use jiff::Timestamp;
use outpost_shared::{
    CheckId, CheckSpec, EscalationList, NoteAction, NoteRecord, RecordBody, ResultRecord, Status,
};

use crate::{checks::Outcome, outbox_handle::SharedOutbox};

mod types;
pub use types::{Confirmation, Connection, HeartbeatReport, LiveError, LiveResult, Snapshot};

/// Longest `by` accepted from a person.
pub const MAX_BY_LEN: usize = 100;
/// Longest note text accepted from a person.
pub const MAX_TEXT_LEN: usize = 2000;
/// Confirmations kept per checklist.
const KEEP_CONFIRMATIONS: usize = 16;

/// What [`Live::persistent`] keeps on disk.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Memory {
    #[serde(default)]
    heartbeats: BTreeMap<CheckId, HeartbeatReport>,
    #[serde(default)]
    confirmations: BTreeMap<CheckId, Vec<Confirmation>>,
}

#[derive(Default)]
struct State {
    results: BTreeMap<CheckId, LiveResult>,
    heartbeats: HashMap<CheckId, HeartbeatReport>,
    confirmations: HashMap<CheckId, Vec<Confirmation>>,
    escalations: Option<EscalationList>,
    connection: Option<Connection>,
}

struct Inner {
    catalogue: Vec<CheckSpec>,
    /// Where heartbeat reports and checklist confirmations survive a restart (`None`: memory).
    memory_file: Option<std::path::PathBuf>,
    /// One save at a time, so the file on disk is always the newest snapshot.
    saving: Mutex<()>,
    started_at: Timestamp,
    outbox: Option<SharedOutbox>,
    state: Mutex<State>,
    /// One wake-up per check: a report or confirmation asks for a run right away.
    run_now: HashMap<CheckId, Arc<tokio::sync::Notify>>,
}

/// Shared live state; clones share it. Locks are short and never held across an await.
#[derive(Clone)]
pub struct Live {
    inner: Arc<Inner>,
}

impl Live {
    /// Live state for the checks in `catalogue`; `outbox` receives notes (None in one-shot runs).
    pub fn new(catalogue: Vec<CheckSpec>, outbox: Option<SharedOutbox>) -> Self {
        Self::build(catalogue, outbox, None)
    }

    /// Like [`Live::new`], with heartbeat reports and checklist confirmations kept in `file`
    /// (read now, rewritten on each report or confirmation): a restarted agent neither
    /// forgets that the cage was locked nor when the backup job last reported.
    pub fn persistent(
        catalogue: Vec<CheckSpec>,
        outbox: Option<SharedOutbox>,
        file: std::path::PathBuf,
    ) -> Self {
        let live = Self::build(catalogue, outbox, Some(file));
        let Some(file) = live.inner.memory_file.clone() else {
            return live;
        };
        let what = "heartbeat reports and checklist confirmations";
        if let Some(memory) = crate::state_file::read_json::<Memory>(&file, what) {
            let mut state = live.state();
            for (id, report) in memory.heartbeats {
                if live.spec_of_kind(id.as_str(), "heartbeat").is_ok() {
                    state.heartbeats.insert(id, report);
                }
            }
            for (id, list) in memory.confirmations {
                if live.spec_of_kind(id.as_str(), "checklist").is_ok() {
                    state.confirmations.insert(id, list);
                }
            }
        }
        live
    }

    fn build(
        catalogue: Vec<CheckSpec>,
        outbox: Option<SharedOutbox>,
        memory_file: Option<std::path::PathBuf>,
    ) -> Self {
        let run_now = catalogue
            .iter()
            .map(|c| (c.id.clone(), Arc::new(tokio::sync::Notify::new())))
            .collect();
        Self {
            inner: Arc::new(Inner {
                run_now,
                catalogue,
                memory_file,
                saving: Mutex::new(()),
                started_at: Timestamp::now(),
                outbox,
                state: Mutex::new(State::default()),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state whole, so a poisoned lock is still usable.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// When this live state (the agent) started.
    pub fn started_at(&self) -> Timestamp {
        self.inner.started_at
    }

    /// The outbox, when the agent has one.
    pub fn outbox(&self) -> Option<&SharedOutbox> {
        self.inner.outbox.as_ref()
    }

    /// The check catalogue.
    pub fn catalogue(&self) -> &[CheckSpec] {
        &self.inner.catalogue
    }

    fn spec(&self, check: &str) -> Result<&CheckSpec, LiveError> {
        self.inner
            .catalogue
            .iter()
            .find(|c| c.id.as_str() == check)
            .ok_or_else(|| LiveError::UnknownCheck(check.chars().take(64).collect()))
    }

    fn spec_of_kind(&self, check: &str, expected: &'static str) -> Result<&CheckSpec, LiveError> {
        let spec = self.spec(check)?;
        if spec.kind == expected {
            Ok(spec)
        } else {
            Err(LiveError::WrongKind {
                check: check.to_owned(),
                kind: spec.kind.clone(),
                expected,
            })
        }
    }

    /// Records a check's newest result; `since` moves only when the status changes.
    pub fn record_result(&self, check: &CheckId, ts: Timestamp, outcome: &Outcome) {
        let mut state = self.state();
        let since = match state.results.get(check) {
            Some(prev) if prev.status == outcome.status => prev.since,
            _ => ts,
        };
        state.results.insert(
            check.clone(),
            LiveResult {
                ts,
                status: outcome.status,
                summary: outcome.summary.clone(),
                metrics: outcome.metrics.clone(),
                since,
            },
        );
    }

    /// Asks the scheduler to run `check` now rather than at its next tick.
    pub fn request_run(&self, check: &CheckId) {
        if let Some(notify) = self.inner.run_now.get(check) {
            notify.notify_one();
        }
    }

    /// Resolves when someone asked for `check` to run now (never, for an unknown check).
    pub async fn run_requested(&self, check: &CheckId) {
        match self.inner.run_now.get(check) {
            Some(notify) => notify.notified().await,
            None => std::future::pending().await,
        }
    }

    /// The newest result of `check`.
    pub fn result(&self, check: &CheckId) -> Option<LiveResult> {
        self.state().results.get(check).cloned()
    }

    /// A job reports to heartbeat check `check` (`status` ok or fail, an optional message).
    pub fn report_heartbeat(
        &self,
        check: &str,
        status: Status,
        message: Option<String>,
    ) -> Result<(), LiveError> {
        let spec = self.spec_of_kind(check, "heartbeat")?;
        if !matches!(status, Status::Ok | Status::Fail) {
            return Err(LiveError::Invalid(format!(
                "a heartbeat reports ok or fail, not {status}"
            )));
        }
        let message = message.map(|m| m.chars().take(MAX_TEXT_LEN).collect::<String>());
        let id = spec.id.clone();
        self.state().heartbeats.insert(
            id.clone(),
            HeartbeatReport {
                ts: Timestamp::now(),
                status,
                message,
            },
        );
        self.save_memory();
        self.request_run(&id);
        Ok(())
    }

    /// The newest heartbeat report of `check`.
    pub fn heartbeat(&self, check: &CheckId) -> Option<HeartbeatReport> {
        self.state().heartbeats.get(check).cloned()
    }

    /// A person confirms checklist `check`; also sends a `checklist_done` note. Returns its seq.
    pub async fn confirm_checklist(&self, check: &str, by: &str) -> Result<u64, LiveError> {
        let id = self.spec_of_kind(check, "checklist")?.id.clone();
        let by = person(by)?;
        let ts = Timestamp::now();
        {
            let mut state = self.state();
            let list = state.confirmations.entry(id.clone()).or_default();
            list.push(Confirmation { ts, by: by.clone() });
            if list.len() > KEEP_CONFIRMATIONS {
                list.remove(0);
            }
        }
        self.save_memory();
        self.request_run(&id);
        let note = NoteRecord {
            check: Some(id),
            by,
            text: "Confirmed done.".to_owned(),
            action: NoteAction::ChecklistDone,
            until: None,
        };
        self.append(ts, RecordBody::Note(note)).await
    }

    /// Confirmations of `check`, oldest first.
    pub fn confirmations(&self, check: &CheckId) -> Vec<Confirmation> {
        self.state()
            .confirmations
            .get(check)
            .cloned()
            .unwrap_or_default()
    }

    /// A person leaves a note (about `check`, or the whole agent). Returns its seq.
    pub async fn submit_note(
        &self,
        check: Option<&str>,
        by: &str,
        text: &str,
        action: NoteAction,
        until: Option<Timestamp>,
    ) -> Result<u64, LiveError> {
        let check = check
            .map(|c| self.spec(c).map(|s| s.id.clone()))
            .transpose()?;
        let by = person(by)?;
        let text = text.trim();
        if text.is_empty() && action == NoteAction::Note {
            return Err(LiveError::Invalid(
                "the note is empty; write what happened".into(),
            ));
        }
        if text.chars().count() > MAX_TEXT_LEN {
            return Err(LiveError::Invalid(format!(
                "the note is longer than {MAX_TEXT_LEN} characters; shorten it"
            )));
        }
        if action == NoteAction::PlannedWork && until.is_none() {
            return Err(LiveError::Invalid(
                "planned work needs an end time (`until`)".into(),
            ));
        }
        let note = NoteRecord {
            check,
            by,
            text: text.to_owned(),
            action,
            until,
        };
        self.append(Timestamp::now(), RecordBody::Note(note)).await
    }

    async fn append(&self, ts: Timestamp, body: RecordBody) -> Result<u64, LiveError> {
        let outbox = self.inner.outbox.as_ref().ok_or(LiveError::NoOutbox)?;
        Ok(outbox.append(ts, body).await?)
    }

    /// Appends a check result to the outbox (if any) and records it here.
    pub async fn publish_result(
        &self,
        check: &CheckId,
        ts: Timestamp,
        outcome: &Outcome,
    ) -> Result<Option<u64>, LiveError> {
        self.record_result(check, ts, outcome);
        let Some(outbox) = &self.inner.outbox else {
            return Ok(None);
        };
        let body = RecordBody::Result(ResultRecord {
            check: check.clone(),
            status: outcome.status,
            summary: outcome.summary.clone(),
            metrics: outcome.metrics.clone(),
            historical: false,
        });
        Ok(Some(outbox.append(ts, body).await?))
    }

    /// The collector sent a new escalations list.
    pub fn set_escalations(&self, list: EscalationList) {
        self.state().escalations = Some(list);
    }

    /// The broker connection came up.
    pub fn set_connected(&self) {
        let mut state = self.state();
        let last_error = state.connection.as_ref().and_then(|c| c.last_error.clone());
        let collector_online = state.connection.as_ref().and_then(|c| c.collector_online);
        state.connection = Some(Connection {
            connected: true,
            since: Timestamp::now(),
            last_error,
            collector_online,
        });
    }

    /// The broker connection is down, with why.
    pub fn set_offline(&self, error: String) {
        let mut state = self.state();
        let (since, collector_online) = match &state.connection {
            Some(c) if !c.connected => (c.since, c.collector_online),
            Some(c) => (Timestamp::now(), c.collector_online),
            None => (Timestamp::now(), None),
        };
        state.connection = Some(Connection {
            connected: false,
            since,
            last_error: Some(error),
            collector_online,
        });
    }

    /// The collector's presence changed.
    pub fn set_collector_online(&self, online: bool) {
        if let Some(c) = self.state().connection.as_mut() {
            c.collector_online = Some(online);
        }
    }

    /// The link to the collector, once tried.
    pub fn connection(&self) -> Option<Connection> {
        self.state().connection.clone()
    }

    /// Writes heartbeat reports and confirmations to the memory file (temp file, synced, then
    /// renamed, so a crash or power cut leaves the old or the new one). A failure is logged:
    /// the live state still has them.
    fn save_memory(&self) {
        let Some(file) = &self.inner.memory_file else {
            return;
        };
        // Two reports at once: the later snapshot must be the one left on disk.
        let _one_at_a_time = self
            .inner
            .saving
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let memory = {
            let state = self.state();
            Memory {
                heartbeats: state.heartbeats.clone().into_iter().collect(),
                confirmations: state.confirmations.clone().into_iter().collect(),
            }
        };
        if let Err(e) = crate::state_file::write_json(file, &memory) {
            tracing::warn!(file = %file.display(), error = %e, "cannot save heartbeat reports and checklist confirmations");
        }
    }

    /// Everything at once, for the site page and `/api/v1/status`.
    pub fn snapshot(&self) -> Snapshot {
        let state = self.state();
        Snapshot {
            started_at: self.inner.started_at,
            checks: self.inner.catalogue.clone(),
            results: state.results.clone(),
            heartbeats: state
                .heartbeats
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            confirmations: state
                .confirmations
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            escalations: state.escalations.clone(),
            connection: state.connection.clone(),
        }
    }
}

/// A person's name as typed: trimmed, not empty, not too long.
fn person(by: &str) -> Result<String, LiveError> {
    let by = by.trim();
    if by.is_empty() {
        return Err(LiveError::Invalid("say who you are (`by`)".into()));
    }
    if by.chars().count() > MAX_BY_LEN {
        return Err(LiveError::Invalid(format!(
            "`by` is longer than {MAX_BY_LEN} characters"
        )));
    }
    Ok(by.to_owned())
}
