//! Runs the origin, with its background work, until it is told to stop.

use std::future::IntoFuture;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::jobs::Runner;
use crate::outbox::{self, PushConfig};
use crate::state::AppState;

/// Serves until SIGTERM or Ctrl-C, then shuts down gracefully ([`serve`]).
pub async fn run(listener: TcpListener, state: AppState) -> anyhow::Result<()> {
    serve(listener, state, stop_signal()).await
}

/// SIGTERM (what service managers and orchestrators send) or SIGINT (Ctrl-C).
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: shutting down"),
    }
}

/// How long stopped background tasks get to release their leases before they are aborted.
const WORKERS_STOP: Duration = Duration::from_secs(10);

/// Starts the background work (job runner, outbox pushers) and serves until `stop` resolves.
/// Then: no new connections; the job workers stop at once at a safe point (a transcode's ffmpeg
/// is killed) and release their jobs, which a restart takes again; requests in flight get
/// `server.drain_secs` to finish; the pushers stop after them, so what the last requests wrote
/// goes out if the edges answer.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let jobs_stop = CancellationToken::new();
    let pushers_stop = CancellationToken::new();
    let mut tasks = JoinSet::new();
    if let Some(listen) = state.settings.metrics.listen() {
        let metrics_listener = crate::metrics::bind(listen).await?;
        tracing::info!(addr = %metrics_listener.local_addr()?, "metrics listening");
        let serving = crate::metrics::serve(metrics_listener, state.metrics.clone());
        let stop = pushers_stop.clone();
        tasks.spawn(async move {
            tokio::select! {
                served = serving => if let Err(e) = served {
                    tracing::error!(error = %e, "metrics listener stopped");
                },
                _ = stop.cancelled() => {}
            }
        });
    }
    let sync = &state.settings.sync;
    if let Some(secret) = sync.secret.clone() {
        let config = PushConfig {
            edges: sync.urls(),
            secret,
        };
        if !config.edges.is_empty() {
            state.metrics.register_gauge_source(outbox::Backlog {
                db: state.db.clone(),
                edges: config.edges.clone(),
            });
        }
        let wake = state.outbox_rx.clone();
        outbox::spawn(&mut tasks, &pushers_stop, state.db.clone(), config, wake);
    }
    state.metrics.register_gauge_source(crate::jobs::Gauges {
        db: state.db.clone(),
    });
    runner(&state).await?.spawn(&mut tasks, &jobs_stop);

    let drain = Duration::from_secs(state.settings.server.drain_secs);
    let draining = CancellationToken::new();
    let server = axum::serve(listener, crate::routes::router(state))
        .with_graceful_shutdown(draining.clone().cancelled_owned())
        .into_future();
    tokio::pin!(server);
    tokio::select! {
        served = &mut server => {
            jobs_stop.cancel();
            pushers_stop.cancel();
            served?;
        }
        _ = stop => {
            draining.cancel();
            jobs_stop.cancel();
            tracing::info!(?drain, "no new connections; draining requests in flight");
            match tokio::time::timeout(drain, &mut server).await {
                Ok(served) => served?,
                Err(_) => tracing::warn!(?drain, "requests still in flight after the drain: cut"),
            }
            pushers_stop.cancel();
        }
    }
    let stopped = tokio::time::timeout(WORKERS_STOP, async {
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "background task failed");
            }
        }
    });
    if stopped.await.is_err() {
        tracing::warn!(
            left = tasks.len(),
            "background tasks still running: aborted"
        );
        tasks.abort_all();
    }
    tracing::info!("stopped");
    Ok(())
}

/// The job lanes this process runs: its machine's upload sweep always, the transcoding,
/// billing, webhook, fan-out and email workers when the settings ask for them.
async fn runner(state: &AppState) -> anyhow::Result<Runner> {
    let settings = &state.settings;
    let sweep = crate::uploads::sweep::lane(&state.db, settings.storage.upload_dir()).await?;
    let mut runner = Runner::new(state.db.clone()).lane(sweep);
    if settings.transcode.workers > 0 {
        let worker = crate::transcode::Worker {
            db: state.db.clone(),
            store: state.store.clone(),
            scratch: settings.storage.scratch_dir(),
            settings: settings.transcode.clone(),
            outbox: state.outbox.clone(),
            metrics: state.metrics.clone(),
        };
        runner = runner.lane(worker.lane(state.transcode_rx.clone()));
    }
    if settings.billing.worker {
        runner = runner.lane(crate::billing::events::lane(
            state.db.clone(),
            settings.billing.clone(),
            state.outbox.clone(),
            state.billing_rx.clone(),
        ));
    }
    if settings.webhooks.workers > 0 {
        let deliverer =
            crate::webhooks::deliver::Deliverer::new(state.db.clone(), settings.webhooks.clone())?;
        runner = runner.lane(deliverer.lane());
    }
    if settings.analytics.rollup {
        let lane = crate::analytics::rollup::lane(&state.db, &state.events, &settings.analytics);
        runner = runner.lane(lane.await?);
        let lane = crate::analytics::retention::lane(&state.db, &state.events, &settings.analytics);
        runner = runner.lane(lane.await?);
    }
    if settings.earnings.close {
        runner = runner.lane(crate::earnings::lane(&state.db, &settings.earnings).await?);
    }
    let notifications = &settings.notifications;
    if notifications.workers > 0 {
        let fanout = crate::notifications::fanout::Fanout {
            db: state.db.clone(),
            batch: notifications.fanout_batch.max(1),
        };
        runner = runner.lane(fanout.lane(notifications.workers));
    }
    // Links in emails lead to the edge's first public origin.
    let base = settings
        .web
        .origins()?
        .into_iter()
        .next()
        .unwrap_or_default();
    let mailer = crate::notifications::mail::Mailer::new(
        state.db.clone(),
        notifications,
        &base,
        state.email_link_key.clone(),
    )?;
    for lane in crate::notifications::mail::lanes(&state.db, notifications, mailer).await? {
        runner = runner.lane(lane);
    }
    Ok(runner)
}
