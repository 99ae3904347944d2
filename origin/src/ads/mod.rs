//! Video ads: campaigns, the catalog the edge serves them from, and what their tracking reported.
//!
//! An admin runs a campaign: a creative (a public, ready video), a click-through URL, targeting
//! (countries, categories of the videos it runs before), a period, a daily impression cap, a
//! per-viewer frequency cap and a price per thousand impressions. The edge chooses and describes
//! the ads (`edge/app/src/routes/ads.rs`) from one synced record, [`AdCatalog`], rebuilt here in
//! the transaction of every change that alters it. Tracking comes back through the edge, one
//! signed event per request ([`events`]).

pub mod events;

use serde::Serialize;
use shared_wasm::record::{AdCampaign, AdCatalog, MAX_CAMPAIGNS};
use shared_wasm::{CountryCode, VideoId};
use sqlx::AnyConnection;

use crate::db::WriteTx;
use crate::outbox;

/// A campaign as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Campaign {
    pub id: String,
    pub owner_id: String,
    pub name: String,
    pub creative_id: String,
    pub click_url: String,
    #[serde(serialize_with = "list")]
    pub countries: String,
    #[serde(serialize_with = "list")]
    pub categories: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub daily_cap: i64,
    pub frequency_cap: i64,
    pub cpm_minor: i64,
    pub status: String,
    pub paused_until: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A stored comma-separated list as a JSON array.
fn list<S: serde::Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.split(',').filter(|x| !x.is_empty()))
}

pub const COLUMNS: &str = "id, owner_id, name, creative_id, click_url, countries, categories, \
     starts_at, ends_at, daily_cap, frequency_cap, cpm_minor, status, paused_until, created_at, \
     updated_at";

impl Campaign {
    /// The edge's view of it; `None` if a stored value no longer parses (logged).
    fn for_edge(&self) -> Option<AdCampaign> {
        let parsed = || -> anyhow::Result<AdCampaign> {
            Ok(AdCampaign {
                id: self.id.clone(),
                name: self.name.clone(),
                creative: VideoId::parse(&self.creative_id)?,
                click_url: self.click_url.clone(),
                countries: split(&self.countries)
                    .map(CountryCode::parse)
                    .collect::<Result<_, _>>()?,
                categories: split(&self.categories).map(str::to_owned).collect(),
                starts_at: self.starts_at as u64,
                ends_at: self.ends_at as u64,
                paused_until: self.paused_until as u64,
                frequency_cap: self.frequency_cap as u32,
                cpm_minor: self.cpm_minor as u64,
            })
        };
        parsed()
            .inspect_err(|e| tracing::error!(campaign = %self.id, "unreadable campaign: {e:#}"))
            .ok()
    }
}

fn split(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').filter(|x| !x.is_empty())
}

/// Campaign `id`, if it exists.
pub async fn get(db: &mut AnyConnection, id: &str) -> sqlx::Result<Option<Campaign>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM ad_campaigns WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Campaigns that are running or will run at `now`: what the catalog holds, and what the
/// [`MAX_CAMPAIGNS`] bound counts.
pub async fn live_count(db: &mut AnyConnection, now: u64) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM ad_campaigns WHERE status = 'active' AND ends_at > $1")
        .bind(now as i64)
        .fetch_one(db)
        .await
}

/// The catalog as it stands, under `version`: active campaigns that have not ended, the
/// highest bids first.
pub async fn catalog(db: &mut AnyConnection, now: u64, version: u64) -> sqlx::Result<AdCatalog> {
    let rows: Vec<Campaign> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM ad_campaigns WHERE status = 'active' AND ends_at > $1
         ORDER BY cpm_minor DESC, id LIMIT $2"
    ))
    .bind(now as i64)
    .bind(MAX_CAMPAIGNS as i64)
    .fetch_all(db)
    .await?;
    Ok(AdCatalog {
        v: 1,
        campaigns: rows.iter().filter_map(Campaign::for_edge).collect(),
        version,
    })
}

/// The catalog's current version (0 before the first campaign).
pub async fn version(db: &mut AnyConnection) -> sqlx::Result<u64> {
    let v: Option<i64> = sqlx::query_scalar("SELECT version FROM ad_catalog WHERE id = 1")
        .fetch_optional(db)
        .await?;
    Ok(v.unwrap_or(0) as u64)
}

/// Rebuilds the catalog under a new version and queues it for the edge, inside the caller's
/// transaction (after the change it must reflect).
pub async fn publish(tx: &mut WriteTx, now: u64) -> sqlx::Result<()> {
    let version: i64 = sqlx::query_scalar(
        "INSERT INTO ad_catalog (id, version) VALUES (1, 1)
         ON CONFLICT (id) DO UPDATE SET version = ad_catalog.version + 1 RETURNING version",
    )
    .fetch_one(&mut **tx)
    .await?;
    let record = catalog(tx, now, version as u64).await?;
    outbox::enqueue(tx, &record).await
}

/// Impressions of `campaign` on UTC day `day` (what the daily cap counts).
pub async fn impressions_on(db: &mut AnyConnection, campaign: &str, day: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM ad_events WHERE campaign_id = $1 AND event = 'impression' AND day = $2",
    )
    .bind(campaign)
    .bind(day)
    .fetch_one(db)
    .await
}

/// The start of the UTC day after the one `t` is in.
pub fn next_midnight(t: u64) -> u64 {
    (t / 86_400 + 1) * 86_400
}
