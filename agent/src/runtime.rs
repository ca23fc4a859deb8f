//! One running agent: site page, outbox, live state, scheduler and publisher, until cancelled.
//! Used by `outpost-agent run` and by the collector's in-process demo agent.

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::{
    checks::RunContext,
    config::Config,
    live::Live,
    outbox::OutboxLimits,
    outbox_handle::SharedOutbox,
    publisher::{Publisher, Tuning},
    scheduler::{DEFAULT_CONCURRENCY, Scheduler},
    site_page::{self, PageState, SitePageError},
};

/// Runs the agent until `stop` is cancelled (or the publisher cannot start), then lets its
/// tasks say goodbye for up to five seconds. Results are durable in the outbox throughout.
pub async fn run(config: Arc<Config>, stop: CancellationToken) -> anyhow::Result<()> {
    // A page reachable from the network without a token is refused before anything starts.
    let page = match site_page::bind(&config.local).await {
        Ok(bound) => Some(bound),
        Err(err @ SitePageError::Bind { .. }) => {
            // The checks matter more than the page: keep monitoring and say so loudly.
            tracing::error!("{err}; the agent runs without its site page");
            None
        }
        Err(err) => return Err(err).context("starting the site page"),
    };
    let outbox = SharedOutbox::open(
        &config.outbox.dir,
        OutboxLimits {
            max_size: config.outbox.max_size.bytes(),
            max_age: config.outbox.max_age.get(),
        },
    )
    .with_context(|| format!("opening the outbox in {}", config.outbox.dir.display()))?;
    // Where what a restart must not forget is kept: the folder that holds the outbox.
    let kept_in = config
        .outbox
        .dir
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty());
    let live = match kept_in {
        Some(dir) => Live::persistent(
            config.catalogue(),
            Some(outbox.clone()),
            dir.join("site-memory.json"),
        ),
        None => Live::new(config.catalogue(), Some(outbox.clone())),
    };
    let ctx = RunContext {
        live: live.clone(),
        timezone: config.timezone.clone(),
        started_at: live.started_at(),
        state_dir: config.outbox.dir.parent().map(Path::to_path_buf),
    };
    tracing::info!(
        site = %config.site, agent = %config.agent, checks = config.checks.len(),
        epoch = outbox.epoch(), "outpost-agent {} starting", crate::VERSION
    );
    let cancel = stop.child_token();
    let scheduler = Scheduler::new(config.checks.clone(), ctx, DEFAULT_CONCURRENCY);
    let scheduler = tokio::spawn(scheduler.run(cancel.clone()));
    let page = page.map(|(listener, access)| {
        let place = format!("{} · {}", config.site, config.agent);
        let state = match kept_in {
            Some(dir) => PageState::persistent(
                live.clone(),
                config.timezone.clone(),
                access,
                place,
                dir.join("site-page.json"),
            ),
            None => PageState::new(live.clone(), config.timezone.clone(), access, place),
        };
        tokio::spawn(site_page::serve(listener, state, cancel.clone()))
    });
    crate::systemd::Notifier::from_env().ready_and_watch(cancel.clone());
    let kept = outbox.clone();
    let tuning = Tuning {
        keep_alive: config.mqtt.keep_alive,
        ..Tuning::default()
    };
    let publisher = Publisher::new(Arc::clone(&config), outbox, live, tuning);
    let mut publisher = tokio::spawn(publisher.run(cancel.clone()));

    tokio::select! {
        () = stop.cancelled() => tracing::info!("stopping"),
        ended = &mut publisher => {
            cancel.cancel();
            return match ended {
                Ok(Ok(())) => Ok(()),
                Ok(Err(err)) => Err(err).context("connecting to the broker"),
                Err(join) => Err(anyhow::anyhow!("the publisher stopped: {join}")),
            };
        }
    }
    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = publisher.await;
        let _ = scheduler.await;
        if let Some(page) = page {
            let _ = page.await;
        }
    })
    .await;
    // The last watermark the collector sent, so a restart does not resend what it has.
    if let Err(err) = kept.flush().await {
        tracing::warn!(error = %err, "could not save the outbox's watermark at shutdown");
    }
    Ok(())
}
