//! What every handler shares: the database, keys, store and the services built on them.

use std::sync::Arc;

use anyhow::Context;
use axum::extract::FromRef;
use secrecy::ExposeSecret;
use shared_wasm::cursor::CursorKey;
use shared_wasm::jwk::KeySet;
use shared_wasm::jwt::{Alg, JwtPolicy};
use sqlx::AnyPool;
use tokio::sync::watch;

use crate::caller::Verifier;
use crate::keys::SigningKeys;
use crate::outbox::Waker;
use crate::sessions::Sessions;
use crate::settings::Settings;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: AnyPool,
    /// Access-token keys (their public half is the JWKS).
    pub keys: Arc<SigningKeys>,
    /// Checks the access tokens presented to the origin ([`Caller`](crate::caller::Caller)).
    pub verifier: Verifier,
    /// Logins, refreshes, logouts.
    pub sessions: Sessions,
    /// Wakes the edge-sync pushers after a commit.
    pub outbox: Waker,
    /// What the pushers wait on (taken by [`crate::startup::serve`]).
    pub(crate) outbox_rx: watch::Receiver<u64>,
    /// Signs upload tickets (made once, kept in the database).
    pub upload_key: Arc<[u8; 32]>,
    /// Signs the links in emails: unsubscribe and address confirmation (made once, kept in the
    /// database).
    pub email_link_key: Arc<[u8; 32]>,
    /// Wakes the transcoding workers after an upload completes.
    pub transcode: Waker,
    /// What the transcoding workers wait on (taken by [`crate::startup::serve`]).
    pub(crate) transcode_rx: watch::Receiver<u64>,
    /// Wakes the billing worker after a webhook event is stored.
    pub billing: Waker,
    /// What the billing worker waits on (taken by [`crate::startup::serve`]).
    pub(crate) billing_rx: watch::Receiver<u64>,
    /// Where sources and media live.
    pub store: Arc<dyn crate::storage::Store>,
    /// Where the playback events live ([`crate::analytics::events`]).
    pub events: crate::analytics::events::Events,
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
        let policy = JwtPolicy::new(&settings.auth.issuer, &settings.auth.audience);
        let keys = Arc::new(keys);
        let (waker, outbox_rx) = Waker::new();
        let (billing, billing_rx) = Waker::new();
        let (transcode, transcode_rx) = Waker::new();
        let upload_key = Arc::new(crate::uploads::store::ticket_key(&db).await?);
        let email_link_key = Arc::new(crate::keys::stored_secret(&db, "email_link_key").await?);
        let store = crate::storage::open(&settings.storage).await?;
        let events =
            crate::analytics::events::Events::open(settings.analytics.clickhouse.as_ref()).await?;
        Ok(Self {
            store,
            events,
            verifier: Verifier {
                db: db.clone(),
                keys: Arc::new(jwt_keys),
                policy: Arc::new(policy),
            },
            sessions: Sessions::new(
                db.clone(),
                keys.clone(),
                settings.auth.clone(),
                &settings.server.region,
                waker.clone(),
            ),
            db,
            keys,
            outbox: waker,
            outbox_rx,
            upload_key,
            email_link_key,
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

impl FromRef<AppState> for Verifier {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}
