//! `POST /internal/beacons`: the edge's checked beacons, appended to `playback_events`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use shared_wasm::beacon::{check_events, Ingest};
use sqlx::AnyPool;

use super::events::Events;
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
    store(&state.db, &state.events, &ingest).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks `ingest` against the video as stored and appends its events to `events`; how many
/// were new ([`Events::append`]).
pub async fn store(db: &AnyPool, events: &Events, ingest: &Ingest) -> Result<u64, ApiError> {
    let duration = super::duration(&mut *db.acquire().await?, ingest.view.video.as_str())
        .await?
        .ok_or(ApiError::NotFound("video"))?;
    check_events(&ingest.events, duration).map_err(|message| ApiError::BadRequest {
        code: "invalid_beacon",
        message,
    })?;
    events.append(db, ingest).await.map_err(ApiError::Internal)
}
