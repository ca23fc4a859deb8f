//! Notification context from the telemetry store: recent results and the site team's notes.

use std::sync::Arc;

use outpost_shared::{AgentId, CheckId, SiteId, Timestamp};

use super::ContextSource;
use crate::{
    notify::{RecentResult, SiteNote},
    store::{ResultQuery, Store},
};

/// Reads context from the store; failures only cost context, never the notification.
pub struct StoreContext(pub Arc<dyn Store>);

impl ContextSource for StoreContext {
    fn recent(
        &self,
        site: &SiteId,
        agent: &AgentId,
        check: &str,
        limit: usize,
    ) -> Vec<RecentResult> {
        let Ok(check) = CheckId::new(check) else {
            return Vec::new();
        };
        let query = ResultQuery {
            site: Some(site.clone()),
            agent: Some(agent.clone()),
            check: Some(check),
            since: None,
            limit,
        };
        match self.0.results(&query) {
            Ok(rows) => rows
                .into_iter()
                .map(|r| RecentResult {
                    ts: r.ts,
                    status: r.result.status,
                    summary: r.result.summary,
                    metrics: r.result.metrics,
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "notification context: results unavailable");
                Vec::new()
            }
        }
    }

    fn notes(
        &self,
        site: &SiteId,
        agent: &AgentId,
        check: &str,
        since: Timestamp,
    ) -> Vec<SiteNote> {
        let check = CheckId::new(check).ok();
        match self.0.notes(site, agent, check.as_ref(), since) {
            Ok(rows) => rows
                .into_iter()
                .map(|n| SiteNote {
                    ts: n.ts,
                    by: n.note.by,
                    text: n.note.text,
                    action: n.note.action.as_str().to_owned(),
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "notification context: notes unavailable");
                Vec::new()
            }
        }
    }
}
