//! `POST /internal/ads/events`: one tracking event of an ad, as the edge checked it.
//!
//! Each event counts once per ad view (the table's key). An impression that brings its campaign
//! to the daily cap pauses the campaign until the next UTC midnight and republishes the catalog
//! in the same transaction, so the edge stops serving it with the next sync. On PostgreSQL,
//! impressions arriving at once may each see the count below the cap: a campaign can run over
//! its cap by the impressions in flight, never under.

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
    let mut tx = begin_write(db).await?;
    let campaign = super::get(&mut tx, &ad.campaign)
        .await?
        .ok_or(ApiError::NotFound("campaign"))?;
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
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if added && ingest.event == AdEvent::Impression && campaign.paused_until <= now as i64 {
        let today: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM ad_events
             WHERE campaign_id = $1 AND event = 'impression' AND day = $2",
        )
        .bind(&campaign.id)
        .bind(day)
        .fetch_one(&mut *tx)
        .await?;
        if today >= campaign.daily_cap {
            let until = super::next_midnight(ingest.received_at);
            sqlx::query("UPDATE ad_campaigns SET paused_until = $1 WHERE id = $2")
                .bind(until as i64)
                .bind(&campaign.id)
                .execute(&mut *tx)
                .await?;
            super::publish(&mut tx, now).await?;
            tracing::info!(campaign = %campaign.id, impressions = today, "daily cap reached");
        }
    }
    tx.commit().await?;
    Ok(added)
}
