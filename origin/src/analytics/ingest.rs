//! `POST /internal/beacons`: the edge's checked beacons, appended to `playback_events`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use shared_wasm::beacon::{check_events, Ingest};
use sqlx::AnyPool;

use crate::error::ApiError;
use crate::state::AppState;

/// Largest ingest body: a beacon as the edge took it ([`shared_wasm::beacon::MAX_BODY_BYTES`])
/// with its token replaced by the claims.
pub const MAX_BODY: usize = 2 * shared_wasm::beacon::MAX_BODY_BYTES;

/// Stores one beacon's events; 204. Events already stored (same view and `seq`) are skipped.
pub async fn beacons(State(state): State<AppState>, body: Bytes) -> Result<StatusCode, ApiError> {
    let ingest: Ingest = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest {
        code: "invalid_beacon",
        message: format!("beacon: {e}"),
    })?;
    store(&state.db, &ingest).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks `ingest` against the video as stored and appends its new events; how many were new.
pub async fn store(db: &AnyPool, ingest: &Ingest) -> Result<u64, ApiError> {
    let duration = super::duration(&mut *db.acquire().await?, ingest.view.video.as_str())
        .await?
        .ok_or(ApiError::NotFound("video"))?;
    check_events(&ingest.events, duration).map_err(|message| ApiError::BadRequest {
        code: "invalid_beacon",
        message,
    })?;
    let v = &ingest.view;
    let country = v.country.as_ref().map_or("", |c| c.as_str());
    let mut tx = db.begin().await?;
    let mut added = 0;
    for e in &ingest.events {
        added += sqlx::query(
            "INSERT INTO playback_events
               (view_id, seq, video_id, viewer, country, device, issued_at, received_at, kind, data)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (view_id, seq) DO NOTHING",
        )
        .bind(&v.view)
        .bind(i64::from(e.seq()))
        .bind(v.video.as_str())
        .bind(&v.viewer)
        .bind(country)
        .bind(v.device.as_str())
        .bind(v.issued as i64)
        .bind(ingest.received_at as i64)
        .bind(e.kind())
        .bind(serde_json::to_string(e).expect("an event serializes"))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(added)
}
