//! Builds the application: database, keys, router; and runs it, with its background work,
//! until it is told to stop.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::{middleware, Json, Router};
use serde_json::json;
use sqlx::AnyPool;
use tokio::net::TcpListener;

use axum::http::HeaderValue;
use secrecy::ExposeSecret;
use shared_wasm::cursor::CursorKey;
use shared_wasm::jwk::KeySet;
use shared_wasm::jwt::{Alg, JwtPolicy};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::jobs::Runner;
use crate::keys::SigningKeys;
use crate::outbox::{self, PushConfig, Waker};
use crate::routes::{
    account, admin, auth, billing, catalog, channels, feeds, internal, social, text, transcode,
    tus, uploads, videos,
};
use crate::settings::Settings;

/// The API's OpenAPI document (`tests/api/openapi.rs` keeps it and the router in step).
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Largest JSON body any route accepts.
const MAX_JSON_BODY: usize = 16 * 1024;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: AnyPool,
    /// Access-token keys.
    pub keys: Arc<SigningKeys>,
    /// The public half of `keys`, to check tokens presented to the origin.
    pub jwt_keys: Arc<KeySet>,
    /// The same access-token policy the edge applies.
    pub jwt_policy: Arc<JwtPolicy>,
    /// Wakes the edge-sync pushers after a commit.
    pub outbox: Waker,
    /// What the pushers wait on (taken by [`run`]).
    outbox_rx: watch::Receiver<u64>,
    /// Signs upload tickets (made once, kept in the database).
    pub upload_key: Arc<[u8; 32]>,
    /// Wakes the transcoding workers after an upload completes.
    pub transcode: Waker,
    /// What the transcoding workers wait on (taken by [`run`]).
    transcode_rx: watch::Receiver<u64>,
    /// Wakes the billing worker after a webhook event is stored.
    pub billing: Waker,
    /// What the billing worker waits on (taken by [`run`]).
    billing_rx: watch::Receiver<u64>,
    /// Where sources and media live.
    pub store: Arc<dyn crate::storage::Store>,
    /// Seals page cursors (derived from the edge's shared secret, which checks them too).
    pub cursors: CursorKey,
    /// Wrong passwords per account and per address, signups per address
    /// ([`crate::passwords`]).
    pub password_limits: Arc<crate::passwords::Limits>,
    /// The client for calls out (Stripe): one per process, so connections are reused.
    pub http: reqwest::Client,
    /// Request, upload and transcoding metrics ([`crate::metrics`]).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Settings.
    pub settings: Arc<Settings>,
}

impl AppState {
    /// Connects everything the settings name.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = crate::db::connect(&settings.database.url).await?;
        std::fs::create_dir_all(&settings.storage.media_dir)
            .with_context(|| format!("creating {}", settings.storage.media_dir))?;
        let keys = SigningKeys::load_or_create(&db).await?;
        let jwt_keys = KeySet::from_jwks(keys.jwks().to_string().as_bytes(), &[Alg::EdDsa])
            .map_err(|e| anyhow::anyhow!("own JWKS unusable: {e}"))?;
        let jwt_policy = JwtPolicy::new(&settings.auth.issuer, &settings.auth.audience);
        let (waker, outbox_rx) = Waker::new();
        let (billing, billing_rx) = Waker::new();
        let (transcode, transcode_rx) = Waker::new();
        let upload_key = Arc::new(crate::uploads::store::ticket_key(&db).await?);
        let store = crate::storage::open(&settings.storage).await?;
        Ok(Self {
            store,
            db,
            keys: Arc::new(keys),
            jwt_keys: Arc::new(jwt_keys),
            jwt_policy: Arc::new(jwt_policy),
            outbox: waker,
            outbox_rx,
            upload_key,
            transcode,
            transcode_rx,
            billing,
            billing_rx,
            cursors: CursorKey::derive(settings.edge.shared_secret.expose_secret().as_bytes()),
            password_limits: Arc::default(),
            http: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(5))
                .build()?,
            metrics: Arc::default(),
            settings: Arc::new(settings),
        })
    }
}

/// The router.
pub fn app(state: AppState) -> Router {
    let internal = Router::new()
        .route("/internal/videos/{id}", get(internal::video_record))
        .route("/internal/media/{id}/{*file}", get(internal::media))
        .route("/internal/entitlements/{user}", get(internal::entitlement))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            internal::require_edge,
        ))
        // Records, entitlements and members' media: for the edge alone, never for a shared
        // cache between it and the origin.
        .route_layer(SetResponseHeaderLayer::overriding(
            axum::http::header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        ));
    // Trust boundary: the origin is public (upload URLs, Stripe), but its API is the edge's to
    // call. Rate limits, role checks and token revocation run at the edge, so every `/v1` route
    // (and the key set) answers only requests with the edge's proof; a caller who reaches the
    // origin directly gets 401 and never gets to bypass them.
    let api = Router::new()
        .route("/v1/auth/login", post(auth::login))
        .route("/v1/auth/refresh", post(auth::refresh))
        .route("/v1/auth/logout", post(auth::logout))
        .route("/v1/auth/signup", post(account::signup))
        .route(
            "/v1/me",
            get(auth::me)
                .patch(account::edit_profile)
                .delete(account::delete_account),
        )
        .route("/v1/creator/videos", get(admin::my_videos))
        .route("/v1/feeds/home", get(feeds::home))
        .route("/v1/feeds/channel/{id}", get(feeds::channel))
        .route("/v1/feeds/category/{category}", get(feeds::category))
        .route("/v1/feeds/trending", get(feeds::trending))
        .route("/v1/videos", post(videos::create))
        .route(
            "/v1/videos/{id}",
            get(catalog::video)
                .patch(videos::edit)
                .delete(videos::delete),
        )
        .route("/v1/search", get(catalog::search))
        .route("/v1/categories", get(catalog::categories))
        .route("/v1/users/{id}", get(catalog::profile))
        .route(
            "/v1/videos/{id}/comments",
            get(social::list_comments).post(social::add_comment),
        )
        .route("/v1/videos/{id}/reaction", put(social::react_video))
        .route(
            "/v1/comments/{id}",
            axum::routing::patch(social::edit_comment).delete(social::delete_comment),
        )
        .route("/v1/comments/{id}/reaction", put(social::react_comment))
        .route("/v1/channels", post(channels::create))
        .route(
            "/v1/channels/{id}",
            get(channels::get)
                .patch(channels::edit)
                .delete(channels::delete),
        )
        .route("/v1/users/{id}/channels", get(channels::of_user))
        .route(
            "/v1/channels/{id}/subscription",
            put(social::subscribe).delete(social::unsubscribe),
        )
        .route("/v1/me/subscriptions", get(social::my_subscriptions))
        .route("/v1/admin/users/{id}/role", post(admin::set_role))
        .route("/v1/admin/users/{id}/revoke", post(admin::revoke))
        .route("/.well-known/jwks.json", get(auth::jwks))
        .route("/v1/billing/checkout", post(billing::start_checkout))
        .route("/v1/videos/{id}/upload", post(uploads::issue))
        .route("/v1/videos/{id}/transcode", get(transcode::status))
        .route_layer(middleware::from_fn(text::refuse_control_in_target))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            internal::require_edge,
        ));
    // Public: health, the API document, the upload URLs (their tickets are their credentials)
    // and Stripe's webhook (its signature is).
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route(
            "/openapi.json",
            get(|| async {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    OPENAPI,
                )
            }),
        )
        .route("/uploads/{ticket}", put(uploads::put))
        .route("/uploads/{ticket}/tus", post(tus::create))
        .route("/uploads/tus", axum::routing::options(tus::options))
        .route(
            "/uploads/tus/{id}",
            axum::routing::head(tus::head)
                .patch(tus::patch)
                .delete(tus::delete),
        )
        .route(
            "/billing/stripe/webhook",
            post(billing::stripe_webhook).layer(DefaultBodyLimit::max(billing::MAX_WEBHOOK_BODY)),
        )
        .merge(api)
        .merge(internal)
        .route_layer(middleware::from_fn(crate::telemetry::note_route))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(SetResponseHeaderLayer::overriding(
            axum::http::HeaderName::from_static("x-origin-region"),
            HeaderValue::from_str(&state.settings.server.region).expect("region is validated"),
        ))
        // Outermost: every request has its id, log line and count, whatever answers it.
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::telemetry::observe,
        ))
        .with_state(state)
}

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
    let server = axum::serve(listener, app(state))
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

/// The job lanes this process runs: its machine's upload sweep always, the transcoding and
/// billing workers when the settings ask for them.
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
    Ok(runner)
}
