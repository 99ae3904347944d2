//! `POST /internal/ads/events`: one tracking event of an ad, as the edge checked it.
//!
//! Each event counts once per ad view (the table's key). An ad served after its campaign ended,
//! or while an admin had it paused, counts nothing. An impression that brings its campaign to
//! the daily cap pauses the campaign until the next UTC midnight and republishes the catalog,
//! so the edge stops serving it with the next sync. The insert is a plain transaction (tracking
//! is the busiest write here); only reaching the cap takes the outbox's serial transaction, and
//! counts again under it. Ads the edge served before it heard of the pause still count: a
//! campaign can run over its cap by the ads already out (their tokens last an hour), never under.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use shared_wasm::ads::{AdEvent, AdIngest};
use sqlx::AnyPool;

use crate::clock::now;
use crate::db::begin_write;
use crate::error::ApiError;
use crate::state::AppState;

/// Largest body: the claims of a token and an event.
pub const MAX_BODY: usize = 4 * 1024;

/// Stores one event; 204 whether or not it was new.
pub async fn ingest(State(state): State<AppState>, body: Bytes) -> Result<StatusCode, ApiError> {
    let ingest: AdIngest = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest {
        code: "invalid_ad_event",
        message: format!("ad event: {e}"),
    })?;
    store(&state.db, &ingest, now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stores `ingest` at `now`; whether it was new. A campaign that does not exist is a 404.
pub async fn store(db: &AnyPool, ingest: &AdIngest, now: u64) -> Result<bool, ApiError> {
    let ad = &ingest.ad;
    // No transaction around the read and the insert: on SQLite a deferred one that reads
    // first cannot take the writer while another holds it and fails at once ("database is
    // locked", whatever the busy timeout), where a lone insert waits its turn. A campaign
    // paused between the two counts one event more, as if it had come a moment earlier.
    let campaign = super::get(&mut *db.acquire().await?, &ad.campaign)
        .await?
        .ok_or(ApiError::NotFound("campaign"))?;
    if campaign.status != "active" || ad.issued as i64 >= campaign.ends_at {
        return Ok(false);
    }
    let day = (ingest.received_at / 86_400) as i64;
    let added = sqlx::query(
        "INSERT INTO ad_events (ad_view, event, campaign_id, video_id, viewer, country, cpm_minor,
                                day, served_at, received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (ad_view, event) DO NOTHING",
    )
    .bind(&ad.ad_view)
    .bind(ingest.event.as_str())
    .bind(&campaign.id)
    .bind(ad.video.as_str())
    .bind(&ad.viewer)
    .bind(ad.country.as_ref().map_or("", |c| c.as_str()))
    .bind(campaign.cpm_minor)
    .bind(day)
    .bind(ad.issued as i64)
    .bind(ingest.received_at as i64)
    .execute(db)
    .await?
    .rows_affected()
        == 1;
    let capped = added
        && ingest.event == AdEvent::Impression
        && campaign.paused_until <= now as i64
        && super::impressions_on(&mut *db.acquire().await?, &campaign.id, day).await?
            >= campaign.daily_cap;
    if capped {
        pause_for_the_day(db, &campaign.id, day, ingest.received_at, now).await?;
    }
    Ok(added)
}

/// Pauses the campaign until the next UTC midnight and republishes the catalog, if it is
/// still at its cap and not paused already (counted again under the outbox's lock).
async fn pause_for_the_day(
    db: &AnyPool,
    campaign: &str,
    day: i64,
    received_at: u64,
    now: u64,
) -> sqlx::Result<()> {
    let mut tx = begin_write(db).await?;
    let Some(c) = super::get(&mut tx, campaign).await? else {
        return Ok(());
    };
    let count = super::impressions_on(&mut tx, campaign, day).await?;
    if c.paused_until > now as i64 || count < c.daily_cap {
        return Ok(());
    }
    sqlx::query("UPDATE ad_campaigns SET paused_until = $1 WHERE id = $2")
        .bind(super::next_midnight(received_at) as i64)
        .bind(campaign)
        .execute(&mut *tx)
        .await?;
    super::publish(&mut tx, now).await?;
    tx.commit().await?;
    tracing::info!(campaign, impressions = count, "daily cap reached");
    Ok(())
}
