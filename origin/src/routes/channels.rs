//! Channels: `POST /v1/channels` (a creator makes one), `GET /v1/channels/{id}`,
//! `PATCH`/`DELETE /v1/channels/{id}` (its owner or an admin), `GET /v1/users/{id}/channels`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use shared_wasm::jwt::Role;

use crate::caller::Caller;
use crate::channels::{self, Channel};
use crate::error::{ApiError, ApiJson};
use crate::routes::fields;
use crate::state::AppState;

const MAX_NAME: usize = 100;
const MAX_DESCRIPTION: usize = 5000;
/// Enough for any real creator; bounds what one account can make.
const MAX_PER_CREATOR: usize = 20;

/// Body of `POST /v1/channels`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateChannel {
    name: String,
    #[serde(default)]
    description: String,
}

/// Makes a channel for the caller (a creator).
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateChannel>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Creator)?;
    let name = fields::line("name", &body.name, MAX_NAME)?;
    let description = fields::text("description", &body.description, MAX_DESCRIPTION)?;
    let channel = channels::create(
        &state.db,
        &caller.0.sub,
        &name,
        &description,
        MAX_PER_CREATOR,
    )
    .await?
    .ok_or(ApiError::conflict(
        "too_many_channels",
        "a creator has at most 20 channels",
    ))?;
    tracing::info!(channel = %channel.id, by = %caller.0.sub, "channel created");
    Ok((StatusCode::CREATED, Json(channel)))
}

async fn shown(state: &AppState, channel: Channel) -> Result<serde_json::Value, ApiError> {
    let subscribers = channels::subscribers(&state.db, &channel.id).await?;
    let mut v = serde_json::to_value(channel).map_err(anyhow::Error::from)?;
    v["subscribers"] = json!(subscribers);
    Ok(v)
}

/// One channel, with its subscriber count.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let channel = channels::get(&state.db, &id)
        .await?
        .ok_or(ApiError::NotFound("channel"))?;
    Ok(Json(shown(&state, channel).await?))
}

/// A creator's channels, the default (oldest) first.
pub async fn of_user(
    State(state): State<AppState>,
    Path(user): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let list = channels::of_owner(&state.db, &user).await?;
    Ok(Json(json!({"channels": list})))
}

/// The channel `id`, if the caller owns it or is an admin; anyone else's looks like none.
async fn owned(state: &AppState, caller: &Caller, id: &str) -> Result<(), ApiError> {
    caller.require(Role::Creator)?;
    match channels::get(&state.db, id).await? {
        Some(c) if c.owner_id == caller.0.sub || caller.0.role == Role::Admin => Ok(()),
        _ => Err(ApiError::NotFound("channel")),
    }
}

/// Body of `PATCH /v1/channels/{id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditChannel {
    name: Option<String>,
    description: Option<String>,
}

/// Renames or re-describes a channel.
pub async fn edit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EditChannel>,
) -> Result<impl IntoResponse, ApiError> {
    owned(&state, &caller, &id).await?;
    let name = body
        .name
        .as_deref()
        .map(|n| fields::line("name", n, MAX_NAME))
        .transpose()?;
    let description = body
        .description
        .as_deref()
        .map(|d| fields::text("description", d, MAX_DESCRIPTION))
        .transpose()?;
    let channel = channels::update(&state.db, &id, name.as_deref(), description.as_deref())
        .await?
        .ok_or(ApiError::NotFound("channel"))?;
    Ok(Json(shown(&state, channel).await?))
}

/// Deletes an empty channel (409 `channel_not_empty` while it has videos).
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    owned(&state, &caller, &id).await?;
    if !channels::delete(&state.db, &id).await? {
        return Err(ApiError::NotFound("channel"));
    }
    state.outbox.wake();
    tracing::info!(channel = %id, by = %caller.0.sub, "channel deleted");
    Ok(StatusCode::NO_CONTENT)
}
