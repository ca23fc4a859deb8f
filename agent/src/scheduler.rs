//! Runs every check at its interval, spread with a little jitter so many checks do not fire
//! at once, with a bounded number running at the same time. Each result goes to the outbox
//! and the live state.

use std::{sync::Arc, time::Duration};

use rand::Rng;
use tokio::{sync::Semaphore, task::JoinSet, time::MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::{
    checks::{Check, RunContext, run_guarded},
    live::Live,
};

/// How many checks may run at the same moment by default.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// Runs checks until cancelled.
pub struct Scheduler {
    checks: Vec<Arc<dyn Check>>,
    ctx: RunContext,
    permits: Arc<Semaphore>,
}

impl Scheduler {
    /// A scheduler for `checks`, running at most `concurrency` at once.
    pub fn new(checks: Vec<Arc<dyn Check>>, ctx: RunContext, concurrency: usize) -> Self {
        Self {
            checks,
            ctx,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// Runs until `cancel` fires; every loop ends within one check timeout after that.
    pub async fn run(self, cancel: CancellationToken) {
        let mut loops = JoinSet::new();
        for check in self.checks {
            loops.spawn(check_loop(
                check,
                self.ctx.clone(),
                Arc::clone(&self.permits),
                cancel.clone(),
            ));
        }
        while loops.join_next().await.is_some() {}
    }
}

/// The first run waits a random part of the interval (at most 5 s), so checks spread out.
fn initial_offset(interval: Duration) -> Duration {
    let cap = interval.min(Duration::from_secs(5));
    let cap_ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
    if cap_ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::rng().random_range(0..cap_ms))
}

async fn check_loop(
    check: Arc<dyn Check>,
    ctx: RunContext,
    permits: Arc<Semaphore>,
    cancel: CancellationToken,
) {
    let interval = check.common().interval.get();
    let start = tokio::time::Instant::now() + initial_offset(interval);
    let mut ticks = tokio::time::interval_at(start, interval);
    // A run that overran its slot is not followed by a burst of catch-up runs.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
            // A heartbeat report or a checklist confirmation shows on the page at once.
            () = ctx.live.run_requested(&check.common().id) => ticks.reset(),
        }
        let permit = tokio::select! {
            () = cancel.cancelled() => return,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_closed) => return,
            },
        };
        let ts = jiff::Timestamp::now();
        let outcome = tokio::select! {
            () = cancel.cancelled() => return,
            outcome = run_guarded(Arc::clone(&check), ctx.clone()) => outcome,
        };
        drop(permit);
        let id = &check.common().id;
        tracing::debug!(check = %id, status = %outcome.status, summary = %outcome.summary, "check ran");
        if let Err(err) = ctx.live.publish_result(id, ts, &outcome).await {
            tracing::error!(check = %id, error = %err, "cannot keep a check result in the outbox");
        }
    }
}

/// Runs every check once, concurrently (bounded), and returns the outcomes in config order.
pub async fn run_all_once(
    checks: &[Arc<dyn Check>],
    ctx: &RunContext,
    concurrency: usize,
) -> Vec<(Arc<dyn Check>, crate::checks::Outcome)> {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    for (index, check) in checks.iter().enumerate() {
        let (check, ctx, permits) = (Arc::clone(check), ctx.clone(), Arc::clone(&permits));
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let outcome = run_guarded(Arc::clone(&check), ctx.clone()).await;
            ctx.live
                .record_result(&check.common().id, jiff::Timestamp::now(), &outcome);
            (index, check, outcome)
        });
    }
    let mut results = Vec::with_capacity(checks.len());
    while let Some(joined) = set.join_next().await {
        if let Ok(result) = joined {
            results.push(result);
        }
    }
    results.sort_by_key(|(index, _, _)| *index);
    results.into_iter().map(|(_, c, o)| (c, o)).collect()
}

/// A live state for `checks` without an outbox.
pub fn live_without_outbox(checks: &[Arc<dyn Check>]) -> Live {
    Live::new(checks.iter().map(|c| c.spec()).collect(), None)
}
