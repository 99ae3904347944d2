//! `GET /v1/videos/{id}/transcode`: where the video's transcoding is (its owner or an admin).

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;
use shared_wasm::jwt::Role;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use crate::transcode::reason::Reason;
use crate::transcode::status;
use crate::videos;

/// State, overall progress, each rendition's state, progress, attempts and error (a code and a
/// message of ours, [`Reason`]).
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Creator)?;
    let (video, _) = super::videos::owned_video(&state, &caller, &id).await?;
    let rec = videos::record(&state.db, &video)
        .await?
        .ok_or(ApiError::NotFound("video"))?;
    let (job, tasks) = status::of(&state.db, &video).await?;
    let progress = status::progress(job.as_ref(), &tasks);
    let renditions: Vec<_> = tasks
        .iter()
        .map(|t| {
            json!({"name": t.rendition, "state": t.state, "progress": t.progress,
                   "attempts": t.attempts, "error": shown(t.last_error.as_deref())})
        })
        .collect();
    Ok(Json(json!({
        "video_id": video,
        "state": rec.state,
        "stage": job.as_ref().map(|j| j.stage.clone()),
        "progress": progress,
        "renditions": renditions,
        "error": shown(job.and_then(|j| j.last_error).as_deref()),
    })))
}

fn shown(kept: Option<&str>) -> serde_json::Value {
    kept.map_or(serde_json::Value::Null, |code| {
        Reason::from_code(code).to_json()
    })
}
