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
}

/// Listening address.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    /// IP to bind.
    pub host: String,
    /// Port to bind (0 picks a free one).
    pub port: u16,
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
        if self.auth.access_ttl_secs == 0 || self.auth.access_ttl_secs > 3600 {
            bail!("auth.access_ttl_secs must be between 1 and 3600");
        }
        Ok(())
    }
}
