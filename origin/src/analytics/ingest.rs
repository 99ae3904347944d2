//! The edge's checked beacons, appended to the event store ([`Events`]):
//! `POST /internal/beacons` (one beacon) and `POST /internal/beacons/batch` (what an edge
//! gathered in a moment, [`Gathered`]: one write for all of them).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use shared_wasm::beacon::{check_events, Gathered, Ingest, MAX_GATHERED};
use sqlx::AnyPool;

use super::events::Events;
use crate::error::ApiError;
use crate::state::AppState;

/// Largest ingest body: a beacon as the edge took it ([`shared_wasm::beacon::MAX_BODY_BYTES`])
/// with its token replaced by the claims.
pub const MAX_BODY: usize = 2 * shared_wasm::beacon::MAX_BODY_BYTES;
/// Largest gathered body.
pub const MAX_GATHERED_BODY: usize = MAX_GATHERED * MAX_BODY;

fn invalid(message: String) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_beacon",
        message,
    }
}

/// Stores one beacon's events; 204. Events already stored (same view and `seq`) are skipped.
pub async fn beacons(State(state): State<AppState>, body: Bytes) -> Result<StatusCode, ApiError> {
    let ingest: Ingest =
        serde_json::from_slice(&body).map_err(|e| invalid(format!("beacon: {e}")))?;
    store(&state.db, &state.events, std::slice::from_ref(&ingest))
        .await?
        .refused
        .into_iter()
        .next()
        .map_or(Ok(StatusCode::NO_CONTENT), |(_, why)| Err(why.into()))
}

/// Stores the events of every beacon that fits its video; 200 with how many events were new
/// and which beacons (by index) were refused and why. One refused beacon is not the others'
/// loss: the edge gathered them from different viewers.
pub async fn gathered(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let batch: Gathered =
        serde_json::from_slice(&body).map_err(|e| invalid(format!("beacons: {e}")))?;
    if batch.beacons.is_empty() || batch.beacons.len() > MAX_GATHERED {
        return Err(invalid(format!("1 to {MAX_GATHERED} beacons at once")));
    }
    let stored = store(&state.db, &state.events, &batch.beacons).await?;
    let refused: Vec<Value> = stored
        .refused
        .iter()
        .map(|(i, why)| match why {
            Refusal::NoSuchVideo => json!({"beacon": i, "error": "not_found"}),
            Refusal::Invalid(m) => json!({"beacon": i, "error": "invalid_beacon", "message": m}),
        })
        .collect();
    Ok(Json(json!({"events": stored.events, "refused": refused})))
}

/// What [`store`] did.
pub struct Stored {
    /// New events ([`Events::append`]).
    pub events: u64,
    /// The beacons left out, by index, and why.
    pub refused: Vec<(usize, Refusal)>,
}

/// Why a beacon was left out.
pub enum Refusal {
    /// Its video is not (or no longer) here.
    NoSuchVideo,
    /// Its events do not fit the video as stored: what is wrong.
    Invalid(String),
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NoSuchVideo => ApiError::NotFound("video"),
            Refusal::Invalid(message) => invalid(message),
        }
    }
}

/// Checks each beacon against its video as stored and appends the events of those that fit,
/// in one write.
pub async fn store(db: &AnyPool, events: &Events, beacons: &[Ingest]) -> Result<Stored, ApiError> {
    let mut durations: HashMap<&str, Option<Option<u64>>> = HashMap::new();
    let mut conn = db.acquire().await?;
    let mut fit = Vec::with_capacity(beacons.len());
    let mut refused = Vec::new();
    for (i, ingest) in beacons.iter().enumerate() {
        let video = ingest.view.video.as_str();
        let duration = match durations.get(video) {
            Some(d) => *d,
            None => {
                let d = super::duration(&mut conn, video).await?;
                durations.insert(video, d);
                d
            }
        };
        let Some(duration) = duration else {
            refused.push((i, Refusal::NoSuchVideo));
            continue;
        };
        match check_events(&ingest.events, duration) {
            Ok(()) => fit.push(ingest),
            Err(message) => refused.push((i, Refusal::Invalid(message))),
        }
    }
    drop(conn);
    let events = if fit.is_empty() {
        0
    } else {
        events.append(db, &fit).await.map_err(ApiError::Internal)?
    };
    Ok(Stored { events, refused })
}
