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
}

fn default_refresh_ttl() -> u64 {
    30 * 24 * 3600
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
        if self.auth.access_ttl_secs == 0 || self.auth.access_ttl_secs > 3600 {
            bail!("auth.access_ttl_secs must be between 1 and 3600");
        }
        Ok(())
    }
}
