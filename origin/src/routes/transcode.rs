//! `GET /v1/videos/{id}/transcode`: where the video's transcoding is (its owner or an admin).

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;
use shared_wasm::jwt::Role;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::transcode::reason::Reason;
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
    let job: Option<(String, Option<String>)> =
        sqlx::query_as("SELECT stage, last_error FROM transcode_jobs WHERE video_id = $1")
            .bind(video.as_str())
            .fetch_optional(&state.db)
            .await?;
    let tasks: Vec<(String, String, i64, i64, Option<String>)> = sqlx::query_as(
        "SELECT rendition, state, progress, attempts, last_error FROM transcode_tasks
         WHERE video_id = $1 ORDER BY height",
    )
    .bind(video.as_str())
    .fetch_all(&state.db)
    .await?;
    let progress = match job.as_ref().map(|j| j.0.as_str()) {
        Some("done") => 100,
        _ if tasks.is_empty() => 0,
        // Encoding is nearly all the work; finalizing shows as 99.
        _ => (tasks.iter().map(|t| t.2).sum::<i64>() / tasks.len() as i64).min(99),
    };
    let renditions: Vec<_> = tasks
        .iter()
        .map(|(name, state, progress, attempts, error)| {
            json!({"name": name, "state": state, "progress": progress, "attempts": attempts,
                   "error": shown(error.as_deref())})
        })
        .collect();
    Ok(Json(json!({
        "video_id": video,
        "state": rec.state,
        "stage": job.as_ref().map(|j| j.0.clone()),
        "progress": progress,
        "renditions": renditions,
        "error": shown(job.and_then(|j| j.1).as_deref()),
    })))
}

fn shown(kept: Option<&str>) -> serde_json::Value {
    kept.map_or(serde_json::Value::Null, |code| {
        Reason::from_code(code).to_json()
    })
}
