//! Spawns the origin in-process on a free loopback port with a fresh database and media folder.

use origin::settings::{
    AuthSettings, BillingSettings, DatabaseSettings, EdgeSettings, S3Settings, ServerSettings,
    Settings, StorageSettings, SyncSettings, TranscodeSettings, WebhookSettings,
};
use origin::startup;
use origin::state::AppState;
use shared_wasm::{edge_auth, UnixTime};

pub const EDGE_SECRET: &str = "api-test-edge-secret-0123456789abcdef";
/// The password of users made by [`TestApp::user`].
pub const PW: &str = "correct horse";
/// The largest upload an upload URL allows in tests.
pub const MAX_UPLOAD: u64 = 4 << 20;
/// The Stripe API key the origin sends to the stand-in.
pub const STRIPE_KEY: &str = "sk_test_standin_key";
/// Webhook endpoint secrets: the current one and one being rolled in.
pub const WEBHOOK_SECRETS: [&str; 2] = [
    "whsec_current_0123456789abcdef",
    "whsec_next_fedcba9876543210",
];
pub const SYNC_SECRET: &str = "api-test-sync-secret-0123456789abcdef";

pub struct TestApp {
    /// The origin as the edge calls it: every request through a proxy that adds the edge's
    /// proof ([`e2e::signer`]).
    pub url: String,
    /// The origin itself, as anyone else (a creator's upload client, Stripe, an attacker)
    /// reaches it.
    pub origin_url: String,
    pub state: AppState,
    pub client: reqwest::Client,
    /// The Stripe API stand-in this origin calls.
    pub stripe: e2e::stripe::StandIn,
    _dir: tempfile::TempDir,
}

/// A fresh database for one test: a SQLite file in `dir`, or, when `TEST_POSTGRES_URL` names a
/// PostgreSQL server (`scripts/test.sh` starts one), a new database there.
pub async fn database_url(dir: &std::path::Path) -> String {
    use sqlx::migrate::MigrateDatabase;
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let Ok(server) = std::env::var("TEST_POSTGRES_URL") else {
        return format!("sqlite://{}", dir.join("t.db").display());
    };
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let url = format!("{server}/api_{}_{n}", std::process::id());
    sqlx::any::install_default_drivers();
    sqlx::Any::create_database(&url).await.unwrap();
    url
}

/// A response's status and its JSON body (`null` when it has none).
pub async fn json_of(r: reqwest::Response) -> (reqwest::StatusCode, serde_json::Value) {
    let status = r.status();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

pub fn now() -> u64 {
    origin::clock::now()
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_syncing_to("").await
    }

    /// An origin whose outbox pushes to `edges` (comma-separated sync URLs).
    pub async fn spawn_syncing_to(edges: &str) -> Self {
        Self::spawn_with(edges, None, true).await
    }

    /// A second origin process on `self`'s database, its billing worker on or off.
    pub async fn spawn_beside(&self, billing_worker: bool) -> Self {
        let db = self.state.settings.database.url.clone();
        Self::spawn_with("", Some(db), billing_worker).await
    }

    pub async fn spawn_with(edges: &str, database: Option<String>, billing_worker: bool) -> Self {
        Self::spawn_full(edges, database, billing_worker, |_| {}).await
    }

    /// An origin with settings of the test's own on top of the usual ones.
    pub async fn spawn_tweaked(tweak: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_full("", None, true, tweak).await
    }

    /// An origin keeping sources and media in a new bucket of the S3-compatible server at
    /// `endpoint`.
    pub async fn spawn_on_s3(endpoint: &str) -> Self {
        let (_, bucket) = e2e::s3_env(endpoint);
        let s3 = S3Settings {
            access_key_id: Some(e2e::S3_KEYS.0.into()),
            secret_access_key: Some(e2e::S3_KEYS.1.into()),
            ..S3Settings::new(endpoint, bucket.name())
        };
        Self::spawn_tweaked(|s| s.storage.s3 = Some(s3)).await
    }

    async fn spawn_full(
        edges: &str,
        database: Option<String>,
        billing_worker: bool,
        tweak: impl FnOnce(&mut Settings),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let stripe = e2e::stripe::StandIn::start().await;
        let database = match database {
            Some(url) => url,
            None => database_url(dir.path()).await,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin_url = format!("http://{}", listener.local_addr().unwrap());
        let mut settings = Settings {
            server: ServerSettings {
                host: "127.0.0.1".into(),
                port: 0,
                region: "test".into(),
                public_url: Some(origin_url.clone()),
                drain_secs: 30,
            },
            database: DatabaseSettings { url: database },
            storage: StorageSettings {
                media_dir: dir.path().join("media").display().to_string(),
                upload_dir: Some(dir.path().join("uploads").display().to_string()),
                max_upload_bytes: MAX_UPLOAD,
                upload_ticket_secs: 3600,
                upload_idle_secs: 2,
                max_open_uploads: 5,
                max_upload_bytes_in_flight: None,
                // The test uploads are a few MiB: no reserve, so a nearly full disk does not
                // fail every upload test (`quotas.rs` tests the reserve).
                min_free_bytes: 0,
                s3: None,
            },
            auth: AuthSettings {
                issuer: "test-origin".into(),
                audience: "test-edge".into(),
                access_ttl_secs: 600,
                refresh_ttl_secs: 3600,
                refresh_reuse_grace_secs: 15,
            },
            edge: EdgeSettings {
                shared_secret: EDGE_SECRET.to_owned().into(),
            },
            sync: SyncSettings {
                edges: edges.to_owned(),
                secret: Some(SYNC_SECRET.to_owned().into()),
            },
            transcode: TranscodeSettings {
                workers: 1,
                lease_secs: 6,
                ..TranscodeSettings::default()
            },
            billing: BillingSettings {
                api_base: Some(stripe.url.clone()),
                secret_key: Some(STRIPE_KEY.to_owned().into()),
                price: Some("price_members_monthly".into()),
                success_url: Some("https://app.example/billing/done".into()),
                cancel_url: Some("https://app.example/billing/cancel".into()),
                webhook_secrets: Some(WEBHOOK_SECRETS.join(",").into()),
                worker: billing_worker,
                ..BillingSettings::default()
            },
            log: Default::default(),
            metrics: Default::default(),
            web: Default::default(),
            // No deliveries unless a test asks for them (and says where to).
            webhooks: WebhookSettings {
                workers: 0,
                ..WebhookSettings::default()
            },
            // The fan-out runs; emails only where a test gives an SMTP server.
            notifications: Default::default(),
            analytics: Default::default(),
            // Months are closed by the tests that mean to (the job closes the last one a few
            // days into a month: a test's month must not be closed under it).
            earnings: origin::settings::EarningsSettings {
                close: false,
                ..Default::default()
            },
        };
        tweak(&mut settings);
        let state = AppState::build(settings).await.unwrap();
        // Until the test ends (no signal handlers in the test process).
        let forever = std::future::pending();
        tokio::spawn(startup::serve(listener, state.clone(), forever));
        Self {
            url: e2e::signer::start(&origin_url, EDGE_SECRET).await,
            origin_url,
            state,
            client: reqwest::Client::new(),
            stripe,
            _dir: dir,
        }
    }

    /// GET straight to the origin with a valid edge proof.
    pub async fn edge_get(&self, path: &str) -> reqwest::Response {
        let proof = edge_auth::sign(EDGE_SECRET.as_bytes(), "GET", path, UnixTime(now()));
        self.client
            .get(format!("{}{path}", self.origin_url))
            .header(edge_auth::HEADER, proof)
            .send()
            .await
            .unwrap()
    }

    /// POST a JSON body straight to the origin with a valid edge proof.
    pub async fn edge_post(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        let proof = edge_auth::sign(EDGE_SECRET.as_bytes(), "POST", path, UnixTime(now()));
        self.client
            .post(format!("{}{path}", self.origin_url))
            .header(edge_auth::HEADER, proof)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// GET straight to the origin with a valid edge proof and a `Range` header (and an
    /// `If-Range` one when given).
    pub async fn edge_get_range(
        &self,
        path: &str,
        range: &str,
        if_range: Option<&str>,
    ) -> reqwest::Response {
        let proof = edge_auth::sign(EDGE_SECRET.as_bytes(), "GET", path, UnixTime(now()));
        let mut req = self
            .client
            .get(format!("{}{path}", self.origin_url))
            .header(edge_auth::HEADER, proof)
            .header("range", range);
        if let Some(v) = if_range {
            req = req.header("if-range", v);
        }
        req.send().await.unwrap()
    }

    /// POST a JSON body with an optional bearer token.
    pub async fn post(
        &self,
        path: &str,
        bearer: Option<&str>,
        body: serde_json::Value,
    ) -> reqwest::Response {
        let mut req = self.client.post(format!("{}{path}", self.url)).json(&body);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// Any method, with a bearer token and an optional JSON body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(bearer);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    /// GET with a bearer token.
    pub async fn get_as(&self, path: &str, bearer: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.url))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/auth/login", self.url))
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap()
    }
}

impl TestApp {
    /// Ensures a user with `role` (password [`PW`]) and logs in: `(user id, access token)`.
    pub async fn user(&self, email: &str, role: shared_wasm::jwt::Role) -> (String, String) {
        let id = origin::users::ensure_user(&self.state.db, email, PW, role, "test")
            .await
            .unwrap()
            .id;
        let r = self.login(email, PW).await;
        let token = r.json::<serde_json::Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        (id, token)
    }

    /// A public, ready video owned by `owner`.
    pub async fn public_video(
        &self,
        id: &str,
        owner: Option<&str>,
    ) -> shared_wasm::record::VideoRecord {
        use shared_wasm::record::{VideoState, Visibility};
        self.video_with(id, owner, Visibility::Public, VideoState::Ready, false)
            .await
    }

    /// A video owned by `owner` with these rules, written straight to the database (created,
    /// or changed if it exists).
    pub async fn video_with(
        &self,
        id: &str,
        owner: Option<&str>,
        visibility: shared_wasm::record::Visibility,
        state: shared_wasm::record::VideoState,
        taken_down: bool,
    ) -> shared_wasm::record::VideoRecord {
        origin::videos::upsert(
            &self.state.db,
            origin::videos::NewVideo {
                id: &shared_wasm::VideoId::parse(id).unwrap(),
                owner_id: owner,
                channel_id: None,
                title: "A video",
                description: "",
                visibility,
                state,
                duration_ms: None,
                countries: None,
                taken_down,
                binding: None,
                category: None,
                tags: "",
            },
        )
        .await
        .unwrap()
    }

    /// A new public video of `token`'s creator titled `title` (state `uploading`); its id.
    pub async fn new_video(&self, token: &str, title: &str) -> String {
        let body = serde_json::json!({"title": title, "visibility": "public"});
        let r = self.post("/v1/videos", Some(token), body).await;
        assert_eq!(r.status(), reqwest::StatusCode::CREATED);
        r.json::<serde_json::Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// PUTs an MP4 body that never ends to `url`: the answer must come before the body (it
    /// panics after 10 s without one).
    pub async fn put_without_end(&self, url: &str) -> reqwest::Response {
        let endless = futures_util::stream::pending::<Result<Vec<u8>, std::io::Error>>();
        let send = self
            .client
            .put(url)
            .header("content-type", "video/mp4")
            .body(reqwest::Body::wrap_stream(endless))
            .send();
        tokio::time::timeout(std::time::Duration::from_secs(10), send)
            .await
            .expect("answered without waiting for the body")
            .unwrap()
    }

    /// GET `path` with a bearer token and parse the JSON.
    pub async fn get_json_as(&self, path: &str, bearer: &str) -> serde_json::Value {
        self.get_as(path, bearer).await.json().await.unwrap()
    }

    /// GET `path` (no credentials) and parse the JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}
