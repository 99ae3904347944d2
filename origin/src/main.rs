//! `origin serve` runs the service; `origin seed-demo` creates the demo user and videos.

use std::path::PathBuf;

use anyhow::{bail, Context};
use origin::settings::Settings;
use origin::startup;
use origin::state::AppState;
use tokio::net::TcpListener;

const USAGE: &str = "usage: origin [--config FILE] serve | seed-demo [--email E] [--password P]
       | rotate-signing-key | retire-signing-keys [--now]
  settings: FILE (default origin/config/base.toml) then APP_<SECTION>__<KEY> variables";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut config = PathBuf::from("origin/config/base.toml");
    if args.first().map(String::as_str) == Some("--config") {
        args.remove(0);
        if args.is_empty() {
            bail!("--config needs a file\n{USAGE}");
        }
        config = PathBuf::from(args.remove(0));
    }
    let settings = Settings::load(&config)?;
    origin::telemetry::init(settings.log.format);
    match args.first().map(String::as_str) {
        Some("serve") => {
            let addr = format!("{}:{}", settings.server.host, settings.server.port);
            let listener = TcpListener::bind(&addr)
                .await
                .with_context(|| format!("binding {addr}"))?;
            let state = AppState::build(settings).await?;
            tracing::info!(addr = %listener.local_addr()?, "origin listening");
            startup::run(listener, state).await
        }
        Some("seed-demo") => {
            let mut email = "demo@example.com".to_owned();
            let mut password = "demo-password".to_owned();
            let mut it = args.iter().skip(1);
            while let Some(flag) = it.next() {
                let value = it.next().with_context(|| format!("{flag} needs a value"))?;
                match flag.as_str() {
                    "--email" => email.clone_from(value),
                    "--password" => password.clone_from(value),
                    _ => bail!("unknown flag {flag}\n{USAGE}"),
                }
            }
            let state = AppState::build(settings).await?;
            origin::demo::seed(&state, &email, &password).await?;
            println!(
                "demo ready: user {email}, videos demo-free (public) and demo-members (members)"
            );
            Ok(())
        }
        Some("rotate-signing-key") => {
            let db = origin::db::connect(&settings.database.url).await?;
            let kid = origin::keys::SigningKeys::rotate(&db).await?;
            println!("new active signing key {kid}; restart the origin processes to use it");
            Ok(())
        }
        Some("retire-signing-keys") => {
            // Without --now, only keys whose tokens have all expired.
            let min_age = match args.get(1).map(String::as_str) {
                None => settings.auth.access_ttl_secs + 60,
                Some("--now") => 0,
                Some(other) => bail!("unknown flag {other}\n{USAGE}"),
            };
            let db = origin::db::connect(&settings.database.url).await?;
            let kids = origin::keys::SigningKeys::retire(&db, min_age).await?;
            println!("retired {kids:?}; restart the origin processes to stop publishing them");
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}
