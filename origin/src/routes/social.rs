//! Comments, likes/dislikes and channel subscriptions over HTTP.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use shared_wasm::jwt::Role;

use crate::caller::Caller;
use crate::error::{ApiError, ApiJson};
use crate::routes::fields;
use crate::social::{self, CommentRef, Target};
use crate::state::AppState;

const MAX_COMMENT: usize = 2000;

/// A comment's text.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    body: String,
}

/// A new comment: its text, and the comment it answers, if any.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    body: String,
    reply_to: Option<String>,
}

/// Paging parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paging {
    cursor: Option<String>,
    limit: Option<u32>,
}

/// `GET /v1/videos/{id}/comments`: oldest first, paged; to those who may watch the video.
pub async fn list_comments(
    State(state): State<AppState>,
    caller: Option<Caller>,
    Path(video): Path<String>,
    Query(p): Query<Paging>,
) -> Result<impl IntoResponse, ApiError> {
    social::video_rules(&state.db, &video, caller.as_ref().map(|c| &c.0)).await?;
    let page = social::comments(
        &state.db,
        &state.cursors,
        &video,
        p.cursor.as_deref(),
        p.limit.unwrap_or(50),
    )
    .await?;
    Ok(Json(page))
}

/// `POST /v1/videos/{id}/comments`.
pub async fn add_comment(
    State(state): State<AppState>,
    caller: Caller,
    Path(video): Path<String>,
    ApiJson(body): ApiJson<NewComment>,
) -> Result<impl IntoResponse, ApiError> {
    let text = fields::line("body", &body.body, MAX_COMMENT)?;
    social::video_rules(&state.db, &video, Some(&caller.0)).await?;
    let reply_to = body.reply_to.as_deref();
    let c = social::add_comment(&state.db, &video, &caller.0.sub, &text, reply_to)
        .await?
        .ok_or(ApiError::NotFound("video"))?;
    Ok((StatusCode::CREATED, Json(c)))
}

fn may_change(caller: &Caller, comment: &CommentRef) -> Result<(), ApiError> {
    if comment.author.as_deref() == Some(caller.0.sub.as_str()) {
        return Ok(());
    }
    Err(ApiError::forbidden(
        "not_author",
        "only its author changes a comment",
    ))
}

/// `PATCH /v1/comments/{id}`: the author edits, while the video's rules let them see it.
pub async fn edit_comment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CommentBody>,
) -> Result<impl IntoResponse, ApiError> {
    let text = fields::line("body", &body.body, MAX_COMMENT)?;
    let comment = social::comment_ref(&state.db, &id).await?;
    may_change(&caller, &comment)?;
    social::video_rules(&state.db, &comment.video, Some(&caller.0)).await?;
    Ok(Json(social::edit_comment(&state.db, &id, &text).await?))
}

/// `DELETE /v1/comments/{id}`: the author, or an admin, removes it, whatever became of the
/// video (taking one's words back is always allowed).
pub async fn delete_comment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let comment = social::comment_ref(&state.db, &id).await?;
    if caller.0.role != Role::Admin {
        may_change(&caller, &comment)?;
    }
    social::delete_comment(&state.db, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A reaction.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reaction {
    value: ReactionValue,
}

/// What a user thinks of something.
#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum ReactionValue {
    /// Like.
    Like,
    /// Dislike.
    Dislike,
    /// Neither (removes a reaction).
    None,
}

async fn react(
    state: &AppState,
    caller: &Caller,
    target: Target<'_>,
    value: ReactionValue,
    what: &'static str,
) -> Result<impl IntoResponse, ApiError> {
    let v = match value {
        ReactionValue::Like => 1,
        ReactionValue::Dislike => -1,
        ReactionValue::None => 0,
    };
    let counts = social::react(&state.db, &caller.0.sub, target, v)
        .await?
        .ok_or(ApiError::NotFound(what))?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(counts)))
}

/// `PUT /v1/videos/{id}/reaction`.
pub async fn react_video(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Reaction>,
) -> Result<impl IntoResponse, ApiError> {
    social::video_rules(&state.db, &id, Some(&caller.0)).await?;
    react(&state, &caller, Target::Video(&id), body.value, "video").await
}

/// `PUT /v1/comments/{id}/reaction`.
pub async fn react_comment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Reaction>,
) -> Result<impl IntoResponse, ApiError> {
    let comment = social::comment_ref(&state.db, &id).await?;
    social::video_rules(&state.db, &comment.video, Some(&caller.0)).await?;
    react(&state, &caller, Target::Comment(&id), body.value, "comment").await
}

/// `PUT /v1/channels/{id}/subscription`.
pub async fn subscribe(
    State(state): State<AppState>,
    caller: Caller,
    Path(channel): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    if !social::subscribe(&state.db, &caller.0.sub, &channel).await? {
        return Err(ApiError::NotFound("channel"));
    }
    Ok(Json(json!({"channel": channel, "subscribed": true})))
}

/// `DELETE /v1/channels/{id}/subscription`.
pub async fn unsubscribe(
    State(state): State<AppState>,
    caller: Caller,
    Path(channel): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    social::unsubscribe(&state.db, &caller.0.sub, &channel).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/me/subscriptions`.
pub async fn my_subscriptions(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    let channels = social::subscriptions(&state.db, &caller.0.sub).await?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"channels": channels})),
    ))
}
