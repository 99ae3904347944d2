//! Typed settings: a TOML file, then `APP_<SECTION>__<KEY>` environment overrides.
//! Missing or malformed settings fail at start with a message that names the setting.

use std::path::Path;

use anyhow::{bail, Context};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// All origin settings.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Where to listen.
    pub server: ServerSettings,
    /// The database.
    pub database: DatabaseSettings,
    /// Where media lives.
    pub storage: StorageSettings,
    /// Access-token issuing.
    pub auth: AuthSettings,
    /// How the edge authenticates itself.
    pub edge: EdgeSettings,
    /// Pushing records to the edge.
    #[serde(default)]
    pub sync: SyncSettings,
    /// Stripe: checkout and webhooks.
    #[serde(default)]
    pub billing: BillingSettings,
    /// The transcoding workers.
    #[serde(default)]
    pub transcode: TranscodeSettings,
    /// Logging.
    #[serde(default)]
    pub log: LogSettings,
    /// Prometheus metrics.
    #[serde(default)]
    pub metrics: MetricsSettings,
    /// The web app's pages, as far as this origin deals with them.
    #[serde(default)]
    pub web: WebSettings,
    /// Webhook deliveries to integrators' endpoints.
    #[serde(default)]
    pub webhooks: WebhookSettings,
    /// Notifications: the fan-out to subscribers and the emails.
    #[serde(default)]
    pub notifications: NotificationSettings,
    /// Playback analytics.
    #[serde(default)]
    pub analytics: AnalyticsSettings,
    /// Creators' earnings.
    #[serde(default)]
    pub earnings: EarningsSettings,
}

/// Creators' earnings (`crate::earnings`).
#[derive(Debug, Clone, Deserialize)]
pub struct EarningsSettings {
    /// Whether this process runs the monthly close (a month closes once, whoever runs it).
    #[serde(default = "yes")]
    pub close: bool,
    /// How long after a month's end it closes: late beacons and invoices still count.
    #[serde(default = "default_close_after_secs")]
    pub close_after_secs: u64,
    /// The platform's share of membership and ad revenue, in basis points (3000: 30 %).
    #[serde(default = "default_platform_share_bps")]
    pub platform_share_bps: u32,
    /// The currency of memberships and ad prices (invoices in another are not counted).
    #[serde(default = "default_currency")]
    pub currency: String,
}

impl Default for EarningsSettings {
    fn default() -> Self {
        Self {
            close: true,
            close_after_secs: default_close_after_secs(),
            platform_share_bps: default_platform_share_bps(),
            currency: default_currency(),
        }
    }
}

fn default_close_after_secs() -> u64 {
    3 * 86_400
}

fn default_platform_share_bps() -> u32 {
    3_000
}

fn default_currency() -> String {
    "eur".into()
}

/// Playback analytics (`crate::analytics`).
#[derive(Debug, Clone, Deserialize)]
pub struct AnalyticsSettings {
    /// Whether this process runs the rollup (one at a time runs; others wait their turn).
    #[serde(default = "yes")]
    pub rollup: bool,
    /// How often the rollup looks for new events.
    #[serde(default = "default_rollup_secs")]
    pub rollup_secs: u64,
    /// Events rolled up per transaction.
    #[serde(default = "default_rollup_batch")]
    pub rollup_batch: usize,
    /// Days raw events are kept once rolled up (`analytics::retention`).
    #[serde(default = "default_events_days")]
    pub events_days: u64,
    /// Days views are kept (and at least until their month's earnings are closed).
    #[serde(default = "default_views_days")]
    pub views_days: u64,
    /// Keep the events in ClickHouse rather than the database (`analytics::events`).
    #[serde(default)]
    pub clickhouse: Option<ClickHouseSettings>,
}

/// A ClickHouse server for the playback events.
#[derive(Debug, Clone, Deserialize)]
pub struct ClickHouseSettings {
    /// Its HTTP interface: `http://127.0.0.1:8123`.
    pub url: String,
    /// The database (made if missing).
    #[serde(default = "default_clickhouse_database")]
    pub database: String,
    /// The user, if not `default`.
    pub user: Option<String>,
    /// Its password.
    pub password: Option<SecretString>,
    /// The rollup reads inserts older than this: longer than any insert takes on the server
    /// (an insert it commits later than this after it began is passed over; this process gives
    /// up on one after 30 s), and at least a second (ClickHouse stamps inserts to the second;
    /// the rollup's cursor must not stop inside a second that still takes inserts).
    #[serde(default = "default_settle_secs")]
    pub settle_secs: u64,
}

impl ClickHouseSettings {
    /// The server at `url`, database `database`, the other settings their defaults.
    pub fn new(url: &str, database: &str) -> Self {
        Self {
            url: url.into(),
            database: database.into(),
            user: None,
            password: None,
            settle_secs: default_settle_secs(),
        }
    }
}

fn default_clickhouse_database() -> String {
    "video".into()
}

fn default_settle_secs() -> u64 {
    60
}

impl Default for AnalyticsSettings {
    fn default() -> Self {
        Self {
            rollup: true,
            rollup_secs: default_rollup_secs(),
            rollup_batch: default_rollup_batch(),
            events_days: default_events_days(),
            views_days: default_views_days(),
            clickhouse: None,
        }
    }
}

fn default_rollup_secs() -> u64 {
    60
}

fn default_events_days() -> u64 {
    90
}

fn default_views_days() -> u64 {
    400
}

fn default_rollup_batch() -> usize {
    5000
}

/// Notifications (`crate::notifications`).
#[derive(Debug, Clone, Deserialize)]
pub struct NotificationSettings {
    /// Fan-out workers in this process (0: none; another process fans out).
    #[serde(default = "default_fanout_workers")]
    pub workers: usize,
    /// Subscribers written per fan-out transaction.
    #[serde(default = "default_fanout_batch")]
    pub fanout_batch: usize,
    /// The SMTP server emails go through (`smtp://host:port`, `smtp://…?tls=required`,
    /// `smtps://user:password@host`); none: no emails are sent (they expire after
    /// `max_age_secs`), the app's list works as ever.
    #[serde(default)]
    pub smtp_url: Option<SecretString>,
    /// The emails' sender, `Name <address>`.
    #[serde(default = "default_mail_from")]
    pub from: String,
    /// How long one SMTP exchange may take.
    #[serde(default = "default_smtp_timeout")]
    pub smtp_timeout_secs: u64,
    /// Emails sent at once by this process.
    #[serde(default = "default_mail_workers")]
    pub mail_workers: usize,
    /// How long after a user's first pending notification their email goes, carrying all
    /// that came meanwhile (a digest).
    #[serde(default = "default_digest_secs")]
    pub digest_secs: u64,
    /// How often the sweep looks for digests that are due.
    #[serde(default = "default_sweep_secs")]
    pub sweep_secs: u64,
    /// A notification not emailed within this long is not emailed at all.
    #[serde(default = "default_mail_max_age")]
    pub max_age_secs: u64,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        Self {
            workers: default_fanout_workers(),
            fanout_batch: default_fanout_batch(),
            smtp_url: None,
            from: default_mail_from(),
            smtp_timeout_secs: default_smtp_timeout(),
            mail_workers: default_mail_workers(),
            digest_secs: default_digest_secs(),
            sweep_secs: default_sweep_secs(),
            max_age_secs: default_mail_max_age(),
        }
    }
}

fn default_fanout_workers() -> usize {
    2
}

fn default_fanout_batch() -> usize {
    1000
}

fn default_mail_from() -> String {
    "Edge Video <notifications@localhost>".into()
}

fn default_smtp_timeout() -> u64 {
    10
}

fn default_mail_workers() -> usize {
    2
}

fn default_digest_secs() -> u64 {
    600
}

fn default_sweep_secs() -> u64 {
    10
}

fn default_mail_max_age() -> u64 {
    24 * 3600
}

/// Webhook deliveries (`crate::webhooks`).
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookSettings {
    /// Delivery workers in this process (0: none; another process delivers).
    #[serde(default = "default_webhook_workers")]
    pub workers: usize,
    /// The wait before a failed delivery's first retry; it doubles with each attempt…
    #[serde(default = "default_webhook_retry")]
    pub retry_secs: u64,
    /// …up to this.
    #[serde(default = "default_webhook_retry_cap")]
    pub retry_cap_secs: u64,
    /// How long a delivery is retried after its event (or a "send again").
    #[serde(default = "default_webhook_window")]
    pub window_secs: u64,
    /// How long one attempt may take, connecting included.
    #[serde(default = "default_webhook_timeout")]
    pub timeout_secs: u64,
    /// Development only: endpoints may be `http` and on loopback or private addresses (a local
    /// receiver). Off in production: endpoints are https on public addresses.
    #[serde(default)]
    pub allow_private: bool,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            workers: default_webhook_workers(),
            retry_secs: default_webhook_retry(),
            retry_cap_secs: default_webhook_retry_cap(),
            window_secs: default_webhook_window(),
            timeout_secs: default_webhook_timeout(),
            allow_private: false,
        }
    }
}

fn default_webhook_workers() -> usize {
    4
}

fn default_webhook_retry() -> u64 {
    30
}

fn default_webhook_retry_cap() -> u64 {
    3600
}

fn default_webhook_window() -> u64 {
    24 * 3600
}

fn default_webhook_timeout() -> u64 {
    10
}

/// The web app's pages. They are served by the edge, but the creator studio sends a video's file
/// straight to this origin (`tus_url`), a cross-origin request the browser only makes when this
/// origin allows the page's origin (CORS, `routes::cors`).
#[derive(Debug, Clone, Deserialize)]
pub struct WebSettings {
    /// The origins (`scheme://host[:port]`, comma-separated: `APP_WEB__ORIGINS`) whose pages may
    /// upload here; every other page is refused by its browser. Default: the dev edge,
    /// `http://127.0.0.1:8787`; a deployment names its edge's public origins.
    #[serde(default = "default_web_origins")]
    pub origins: String,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            origins: default_web_origins(),
        }
    }
}

fn default_web_origins() -> String {
    "http://127.0.0.1:8787".into()
}

/// The most web origins one origin allows: each is compared with every upload request's
/// `Origin`, and a deployment has a few (its edge's hostnames).
const MAX_WEB_ORIGINS: usize = 16;

impl WebSettings {
    /// The allowed origins, each as a browser writes it in `Origin` (lowercase, no default
    /// port, no path); an error names the entry that is not one.
    pub fn origins(&self) -> anyhow::Result<Vec<String>> {
        let list: Vec<String> = self
            .origins
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(web_origin)
            .collect::<anyhow::Result<_>>()?;
        if list.len() > MAX_WEB_ORIGINS {
            bail!("web.origins lists more than {MAX_WEB_ORIGINS} origins");
        }
        Ok(list)
    }
}

/// One origin of `web.origins`, as browsers serialize it: `http(s)://host[:port]`, nothing
/// after. `*` and `null` (a sandboxed page, a file) are refused: the upload routes name the
/// origins they trust.
fn web_origin(s: &str) -> anyhow::Result<String> {
    let lower = s.to_ascii_lowercase();
    let uri: axum::http::Uri = lower
        .parse()
        .with_context(|| format!("web.origins: {s:?} is not an origin"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        bail!("web.origins: {s:?} is not an origin like https://app.example");
    };
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => bail!("web.origins: {s:?} is not http or https"),
    };
    if lower != format!("{scheme}://{authority}") || authority.as_str().contains('@') {
        bail!(
            "web.origins: {s:?} has more than scheme, host and port (no path, no slash at the end)"
        );
    }
    if authority.port_u16() == Some(default_port) {
        bail!("web.origins: {s:?} names the default port, which browsers leave out of Origin");
    }
    Ok(lower)
}

/// Logging. `RUST_LOG` chooses what is logged; this, how.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LogSettings {
    /// `text` (the default) or `json`: one JSON object per line.
    #[serde(default)]
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Prometheus metrics (`crate::metrics`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MetricsSettings {
    /// `host:port` of the listener that serves `GET /metrics`, and nothing else; empty (the
    /// default): no metrics listener. Never the public port: bind loopback, or an interface
    /// only the scraper reaches (docs/security.md, "Metrics").
    #[serde(default)]
    pub listen: String,
}

impl MetricsSettings {
    /// The address to serve metrics on, if any.
    pub fn listen(&self) -> Option<&str> {
        Some(self.listen.trim()).filter(|l| !l.is_empty())
    }
}

/// Transcoding.
#[derive(Debug, Clone, Deserialize)]
pub struct TranscodeSettings {
    /// Workers in this process (0: none; another process does the work).
    #[serde(default = "one")]
    pub workers: usize,
    /// How long a worker owns a task it took without renewing it.
    #[serde(default = "default_lease")]
    pub lease_secs: u64,
    /// The wait before a failed rendition's first retry; it doubles with each attempt.
    #[serde(default = "default_retry_secs")]
    pub retry_secs: u64,
    /// The ffmpeg to run (a name on `PATH` or a path: pin a build in production).
    #[serde(default = "default_ffmpeg")]
    pub ffmpeg: String,
    /// The ffprobe to run.
    #[serde(default = "default_ffprobe")]
    pub ffprobe: String,
}

impl Default for TranscodeSettings {
    fn default() -> Self {
        Self {
            workers: 1,
            lease_secs: default_lease(),
            retry_secs: default_retry_secs(),
            ffmpeg: default_ffmpeg(),
            ffprobe: default_ffprobe(),
        }
    }
}

fn one() -> usize {
    1
}

fn default_lease() -> u64 {
    30
}

fn default_retry_secs() -> u64 {
    10
}

fn default_ffmpeg() -> String {
    "ffmpeg".into()
}

fn default_ffprobe() -> String {
    "ffprobe".into()
}

/// Stripe billing. Checkout needs `api_base`, `secret_key`, `price` and the two return URLs;
/// webhooks need `webhook_secrets`. Without them those routes answer 503.
#[derive(Debug, Clone, Deserialize)]
pub struct BillingSettings {
    /// Stripe's API base URL (tests point it at a stand-in).
    pub api_base: Option<String>,
    /// The API secret key (`APP_BILLING__SECRET_KEY`).
    pub secret_key: Option<SecretString>,
    /// The subscription's price id.
    pub price: Option<String>,
    /// Where Checkout sends the buyer afterwards.
    pub success_url: Option<String>,
    /// Where Checkout sends a buyer who gives up.
    pub cancel_url: Option<String>,
    /// Webhook endpoint secrets, comma-separated (`APP_BILLING__WEBHOOK_SECRETS`): more than
    /// one while a secret is rolled.
    pub webhook_secrets: Option<SecretString>,
    /// Oldest accepted signature timestamp, seconds.
    #[serde(default = "default_tolerance")]
    pub tolerance_secs: u64,
    /// How long access lasts past a failed renewal payment, or past the period end while the
    /// renewal is on its way.
    #[serde(default = "default_grace")]
    pub grace_secs: u64,
    /// The entitlement tier a subscription grants.
    #[serde(default = "default_tier")]
    pub tier: String,
    /// Whether this process applies stored events (one may run the receiver alone).
    #[serde(default = "yes")]
    pub worker: bool,
}

impl Default for BillingSettings {
    fn default() -> Self {
        Self {
            api_base: None,
            secret_key: None,
            price: None,
            success_url: None,
            cancel_url: None,
            webhook_secrets: None,
            tolerance_secs: default_tolerance(),
            grace_secs: default_grace(),
            tier: default_tier(),
            worker: true,
        }
    }
}

impl BillingSettings {
    /// The configured webhook secrets.
    pub fn webhook_secrets(&self) -> Vec<&str> {
        self.webhook_secrets
            .as_ref()
            .map(|s| {
                s.expose_secret()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn default_tolerance() -> u64 {
    300
}

fn default_grace() -> u64 {
    3 * 24 * 3600
}

fn default_tier() -> String {
    "members".into()
}

fn yes() -> bool {
    true
}

/// Listening address.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    /// IP to bind.
    pub host: String,
    /// Port to bind (0 picks a free one).
    pub port: u16,
    /// This origin's region name: the home region of the users it creates, and the value of
    /// `x-origin-region` on its responses.
    #[serde(default = "default_region")]
    pub region: String,
    /// The URL creators reach this origin at, for the upload URLs it signs; default
    /// `http://{host}:{port}`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// On SIGTERM or Ctrl-C, how long requests in flight (an upload's body, say) get to finish
    /// before they are cut and the process exits.
    #[serde(default = "default_drain_secs")]
    pub drain_secs: u64,
}

fn default_drain_secs() -> u64 {
    30
}

fn default_region() -> String {
    "local".into()
}

/// Database connection.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// `sqlite://path` (created if missing).
    pub url: String,
}

/// Media storage.
#[derive(Debug, Clone, Deserialize)]
pub struct StorageSettings {
    /// Root folder; each video has `{media_dir}/{video_id}/`.
    pub media_dir: String,
    /// Where uploads are written (`partial/`) and kept once complete (`sources/`); default:
    /// `uploads` beside `media_dir`. Never served.
    #[serde(default)]
    pub upload_dir: Option<String>,
    /// Largest upload a ticket allows.
    #[serde(default = "default_max_upload")]
    pub max_upload_bytes: u64,
    /// How long an upload ticket (and a resumable upload made with it) lasts.
    #[serde(default = "default_ticket_secs")]
    pub upload_ticket_secs: u64,
    /// An upload body that sends nothing for this long counts as dropped (what arrived stays,
    /// for a resumable upload), so a stalled client cannot hold its upload forever.
    #[serde(default = "default_idle_secs")]
    pub upload_idle_secs: u64,
    /// Uploads one creator may have open at once: a resumable one from its creation until it
    /// completes, is terminated or expires, a plain `PUT` while its body streams in. Past it,
    /// 429 `too_many_uploads`. Five lets a creator send a batch side by side; a client with
    /// more queues them.
    #[serde(default = "default_max_open_uploads")]
    pub max_open_uploads: u64,
    /// The most one creator's open uploads may write in all, each counted at its declared
    /// size (`Upload-Length`, `Content-Length`, or `max_upload_bytes` for a `PUT` that declares
    /// none). Past it, 429 `upload_quota_exceeded`. Default: twice `max_upload_bytes`, so a
    /// creator can have a second full-size upload going, or start again after losing one,
    /// without waiting for the first to expire, while one creator's share of the disk stays
    /// far below what `max_open_uploads` full-size uploads would take.
    #[serde(default)]
    pub max_upload_bytes_in_flight: Option<u64>,
    /// Free space the filesystem of `upload_dir` keeps for everything else (the database,
    /// transcoding scratch, logs): an upload request that could leave less is refused with
    /// 507 `insufficient_storage` before a byte of it is written.
    #[serde(default = "default_min_free")]
    pub min_free_bytes: u64,
    /// An S3-compatible bucket for sources and media instead of the two folders (which then
    /// hold only partial uploads and scratch work).
    #[serde(default)]
    pub s3: Option<S3Settings>,
}

/// An S3-compatible bucket. The keys come from the environment only
/// (`APP_STORAGE__S3__ACCESS_KEY_ID`, `APP_STORAGE__S3__SECRET_ACCESS_KEY`).
#[derive(Debug, Clone, Deserialize)]
pub struct S3Settings {
    /// `http(s)://host:port` of the store (path-style requests).
    pub endpoint: String,
    /// The bucket (made at start if missing).
    pub bucket: String,
    /// The signing region.
    #[serde(default = "default_s3_region")]
    pub region: String,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<SecretString>,
    /// An object larger than this goes up as a multipart upload in parts of this size (a single
    /// PUT stops at 5 GB). At least 5 MiB, S3's smallest part; S3 takes at most 10,000 parts, so
    /// it must also be at least `max_upload_bytes` / 10,000.
    #[serde(default = "default_part_size")]
    pub part_size_bytes: u64,
    /// How many parts of one object go up at once. Memory for an upload in flight is about
    /// `part_size_bytes` × (this + 1).
    #[serde(default = "default_upload_concurrency")]
    pub upload_concurrency: usize,
}

/// S3's smallest part (except the last).
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// S3's largest part, and its largest single PUT.
const MAX_PART_SIZE: u64 = 5 << 30;
/// S3's most parts in one upload.
const MAX_PARTS: u64 = 10_000;

impl S3Settings {
    /// A bucket with the default region, part size and concurrency, and no keys.
    pub fn new(endpoint: impl Into<String>, bucket: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            bucket: bucket.into(),
            region: default_s3_region(),
            access_key_id: None,
            secret_access_key: None,
            part_size_bytes: default_part_size(),
            upload_concurrency: default_upload_concurrency(),
        }
    }

    /// The signing keys; an error names what is missing.
    pub fn credentials(&self) -> anyhow::Result<object_store::aws::AwsCredential> {
        let (Some(id), Some(secret)) = (&self.access_key_id, &self.secret_access_key) else {
            bail!(
                "storage.s3 needs APP_STORAGE__S3__ACCESS_KEY_ID and \
                 APP_STORAGE__S3__SECRET_ACCESS_KEY"
            );
        };
        Ok(object_store::aws::AwsCredential {
            key_id: id.clone(),
            secret_key: secret.expose_secret().to_owned(),
            token: None,
        })
    }

    fn validate(&self, max_upload_bytes: u64) -> anyhow::Result<()> {
        if !(self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://")) {
            bail!("storage.s3.endpoint must be an http(s) URL");
        }
        self.credentials()?;
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&self.part_size_bytes) {
            bail!("storage.s3.part_size_bytes must be from 5 MiB to 5 GiB");
        }
        if max_upload_bytes.div_ceil(self.part_size_bytes) > MAX_PARTS {
            bail!(
                "storage.s3.part_size_bytes must be at least storage.max_upload_bytes / 10,000 \
                 (S3 takes at most 10,000 parts)"
            );
        }
        if self.upload_concurrency == 0 {
            bail!("storage.s3.upload_concurrency must be at least 1");
        }
        Ok(())
    }
}

fn default_s3_region() -> String {
    "us-east-1".into()
}

fn default_part_size() -> u64 {
    16 << 20
}

fn default_upload_concurrency() -> usize {
    4
}

impl StorageSettings {
    /// Where this machine works on files (transcoding, the demo's rendering): never served.
    pub fn scratch_dir(&self) -> std::path::PathBuf {
        self.upload_dir().join("work")
    }

    /// The bound on one creator's bytes in flight (`max_upload_bytes_in_flight`).
    pub fn upload_bytes_in_flight(&self) -> u64 {
        self.max_upload_bytes_in_flight
            .unwrap_or(self.max_upload_bytes.saturating_mul(2))
    }

    /// The upload folder.
    pub fn upload_dir(&self) -> std::path::PathBuf {
        match &self.upload_dir {
            Some(d) => d.into(),
            None => Path::new(&self.media_dir)
                .parent()
                .unwrap_or(Path::new("."))
                .join("uploads"),
        }
    }
}

fn default_max_upload() -> u64 {
    8 << 30
}

fn default_max_open_uploads() -> u64 {
    5
}

fn default_min_free() -> u64 {
    1 << 30
}

fn default_idle_secs() -> u64 {
    30
}

fn default_ticket_secs() -> u64 {
    24 * 3600
}

/// Access tokens.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// `iss` of issued tokens.
    pub issuer: String,
    /// `aud` of issued tokens.
    pub audience: String,
    /// Lifetime of an access token.
    pub access_ttl_secs: u64,
    /// Lifetime of a session's refresh token (each refresh rotates it, keeping the expiry).
    #[serde(default = "default_refresh_ttl")]
    pub refresh_ttl_secs: u64,
    /// For this long after a refresh, the token it replaced is exchanged once more rather than
    /// taken for a stolen one (the answer with the new token can be lost: a browser that leaves
    /// a page mid-refresh drops it). `0` turns the grace off. At most 60.
    #[serde(default = "default_reuse_grace")]
    pub refresh_reuse_grace_secs: u64,
}

fn default_refresh_ttl() -> u64 {
    30 * 24 * 3600
}

fn default_reuse_grace() -> u64 {
    15
}

/// The edge deployments the outbox pushes to.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SyncSettings {
    /// Comma-separated sync URLs (`https://edge.example/internal/sync`); empty: no pushing.
    #[serde(default)]
    pub edges: String,
    /// Signs the batches (`SYNC_SECRET` at the edge). Required when `edges` is set.
    pub secret: Option<SecretString>,
}

impl SyncSettings {
    /// The configured sync URLs.
    pub fn urls(&self) -> Vec<String> {
        self.edges
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// The edge's credentials.
#[derive(Debug, Clone, Deserialize)]
pub struct EdgeSettings {
    /// Shared with every edge deployment (`EDGE_ORIGIN_SECRET` there).
    pub shared_secret: SecretString,
}

impl Settings {
    /// Reads `file` (if it exists) and the environment.
    pub fn load(file: &Path) -> anyhow::Result<Self> {
        let settings: Self = config::Config::builder()
            .add_source(config::File::from(file).required(false))
            .add_source(
                config::Environment::with_prefix("APP")
                    .prefix_separator("_")
                    .separator("__"),
            )
            .build()
            .context("reading settings")?
            .try_deserialize()
            .context(
                "settings are incomplete or malformed (secrets come from APP_EDGE__SHARED_SECRET)",
            )?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.edge.shared_secret.expose_secret().len() < shared_wasm::edge_auth::MIN_SECRET_LEN {
            bail!(
                "edge.shared_secret must be at least {} bytes",
                shared_wasm::edge_auth::MIN_SECRET_LEN
            );
        }
        let urls = self.sync.urls();
        if urls
            .iter()
            .any(|u| !(u.starts_with("http://") || u.starts_with("https://")))
        {
            bail!("sync.edges must be http(s) URLs");
        }
        let secret_len = self
            .sync
            .secret
            .as_ref()
            .map_or(0, |s| s.expose_secret().len());
        if !urls.is_empty() && secret_len < shared_wasm::edge_auth::MIN_SECRET_LEN {
            bail!(
                "sync.secret (APP_SYNC__SECRET) must be at least {} bytes when sync.edges is set",
                shared_wasm::edge_auth::MIN_SECRET_LEN
            );
        }
        if self.server.region.is_empty()
            || self.server.region.len() > 32
            || !self
                .server
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            bail!("server.region must be 1 to 32 of a-z, 0-9, '-'");
        }
        if let Some(s3) = &self.storage.s3 {
            s3.validate(self.storage.max_upload_bytes)?;
        }
        // A view's late events (its token lives 12 hours) must find it, or it would count twice.
        if self.analytics.events_days == 0 || self.analytics.views_days < 2 {
            bail!("analytics.events_days must be at least 1, analytics.views_days at least 2");
        }
        if let Some(ch) = &self.analytics.clickhouse {
            if !(ch.url.starts_with("http://") || ch.url.starts_with("https://")) {
                bail!("analytics.clickhouse.url must be an http(s) URL");
            }
            // An identifier, so no quoting question arises.
            let db = &ch.database;
            if db.is_empty()
                || db.len() > 64
                || !db.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                bail!("analytics.clickhouse.database must be 1 to 64 of A-Z, a-z, 0-9, '_'");
            }
            if ch.settle_secs == 0 {
                bail!("analytics.clickhouse.settle_secs must be at least 1");
            }
        }
        let e = &self.earnings;
        if e.platform_share_bps > 10_000 {
            bail!("earnings.platform_share_bps must be at most 10000 (all of it)");
        }
        if e.currency.len() != 3 || !e.currency.bytes().all(|b| b.is_ascii_alphabetic()) {
            bail!("earnings.currency must be a three-letter ISO 4217 code");
        }
        let storage = &self.storage;
        if storage.max_open_uploads == 0 {
            bail!("storage.max_open_uploads must be at least 1");
        }
        if storage.upload_bytes_in_flight() < storage.max_upload_bytes {
            bail!("storage.max_upload_bytes_in_flight must be at least storage.max_upload_bytes");
        }
        let b = &self.billing;
        if b.api_base
            .as_deref()
            .is_some_and(|u| !(u.starts_with("http://") || u.starts_with("https://")))
        {
            bail!("billing.api_base must be an http(s) URL");
        }
        if b.secret_key.is_some()
            && (b.api_base.is_none()
                || b.price.is_none()
                || b.success_url.is_none()
                || b.cancel_url.is_none())
        {
            bail!("billing.secret_key needs billing.api_base, price, success_url and cancel_url");
        }
        if b.tolerance_secs == 0 || b.tolerance_secs > 3600 {
            bail!("billing.tolerance_secs must be between 1 and 3600");
        }
        if let Some(listen) = self.metrics.listen() {
            if listen.parse::<std::net::SocketAddr>().is_err() {
                bail!("metrics.listen must be an IP address and a port, e.g. 127.0.0.1:9700");
            }
        }
        if self.auth.access_ttl_secs == 0 || self.auth.access_ttl_secs > 3600 {
            bail!("auth.access_ttl_secs must be between 1 and 3600");
        }
        if self.auth.refresh_reuse_grace_secs > 60 {
            bail!("auth.refresh_reuse_grace_secs must be at most 60");
        }
        self.web.origins()?;
        let w = &self.webhooks;
        if w.retry_secs == 0 || w.retry_cap_secs < w.retry_secs {
            bail!("webhooks.retry_secs must be at least 1 and at most webhooks.retry_cap_secs");
        }
        if w.timeout_secs == 0 || w.timeout_secs > 60 {
            bail!("webhooks.timeout_secs must be between 1 and 60");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_sizes_s3_takes() {
        let s3 = |part_size_bytes, upload_concurrency| S3Settings {
            access_key_id: Some("id".into()),
            secret_access_key: Some("secret".into()),
            part_size_bytes,
            upload_concurrency,
            ..S3Settings::new("http://127.0.0.1:9000", "media")
        };
        let eight_gib = 8 << 30;
        assert!(s3(default_part_size(), 4).validate(eight_gib).is_ok());
        assert!(s3(MIN_PART_SIZE - 1, 4).validate(eight_gib).is_err());
        assert!(s3(MAX_PART_SIZE + 1, 4).validate(eight_gib).is_err());
        // 8 GiB in 5 MiB parts is 1,639 parts; 100 GiB would be 20,480, past S3's 10,000.
        assert!(s3(MIN_PART_SIZE, 4).validate(eight_gib).is_ok());
        assert!(s3(MIN_PART_SIZE, 4).validate(100 << 30).is_err());
        assert!(s3(default_part_size(), 0).validate(eight_gib).is_err());
        let no_keys = S3Settings::new("http://127.0.0.1:9000", "media");
        assert!(no_keys.validate(eight_gib).is_err());
    }

    #[test]
    fn web_origins_are_origins_as_browsers_send_them() {
        let origins = |s: &str| {
            WebSettings {
                origins: s.to_owned(),
            }
            .origins()
        };
        assert_eq!(
            origins(" https://App.Example , http://127.0.0.1:8787,").unwrap(),
            ["https://app.example", "http://127.0.0.1:8787"]
        );
        assert_eq!(
            WebSettings::default().origins().unwrap(),
            ["http://127.0.0.1:8787"]
        );
        assert!(origins("").unwrap().is_empty(), "none: no page uploads");
        for bad in [
            "*",
            "null",
            "app.example",
            "https://app.example/",
            "https://app.example/studio",
            "https://app.example?x=1",
            "https://user@app.example",
            "https://app.example:443",
            "http://app.example:80",
            "ftp://app.example",
            "https://",
        ] {
            assert!(origins(bad).is_err(), "{bad:?} accepted");
        }
        let many = vec!["https://a.example"; MAX_WEB_ORIGINS + 1].join(",");
        assert!(origins(&many).is_err());
    }
}
