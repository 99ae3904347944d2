//! Video metadata writes: `POST /v1/videos` (a creator makes a video, waiting for its upload) and
//! `PATCH /v1/videos/{id}` (its owner, or an admin, edits it). Each write queues the video's new
//! record for the edge in the same transaction.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Deserializer};
use serde_json::json;
use shared_wasm::jwt::Role;
use shared_wasm::record::{CountryRule, VideoRecord, VideoState, Visibility};
use shared_wasm::VideoId;

use super::fields::slug;
use crate::caller::Caller;
use crate::channels;
use crate::clock::now;
use crate::error::{ApiError, ApiJson};
use crate::keys::random_bytes;
use crate::moderation::actions::{self, Action};
use crate::routes::fields;
use crate::state::AppState;
use crate::storage::media_prefix;
use crate::videos::{self, NewVideo, VideoPatch};

const MAX_TITLE: usize = 200;
const MAX_DESCRIPTION: usize = 5000;
const MAX_COUNTRIES: usize = 250;

fn category(c: Option<String>) -> Result<Option<String>, ApiError> {
    match c {
        Some(c) if !slug(&c) => Err(ApiError::InvalidField {
            field: "category",
            message: "1 to 32 of a-z, 0-9, '-'".into(),
        }),
        other => Ok(other),
    }
}

/// Tags as stored: comma-separated, each a slug, at most 10, without repeats.
fn tags(list: &[String]) -> Result<String, ApiError> {
    let mut seen: Vec<&str> = Vec::new();
    for t in list {
        if !slug(t) || seen.len() == 10 {
            return Err(ApiError::InvalidField {
                field: "tags",
                message: "at most 10 tags of 1 to 32 of a-z, 0-9, '-'".into(),
            });
        }
        if !seen.contains(&t.as_str()) {
            seen.push(t);
        }
    }
    Ok(seen.join(","))
}

fn countries(rule: Option<CountryRule>) -> Result<Option<CountryRule>, ApiError> {
    match rule {
        Some(r) if r.list.is_empty() || r.list.len() > MAX_COUNTRIES => {
            Err(ApiError::InvalidField {
                field: "countries",
                message: format!("list 1 to {MAX_COUNTRIES} countries, or send null for none"),
            })
        }
        other => Ok(other),
    }
}

fn public(rec: &VideoRecord, channel: Option<String>) -> serde_json::Value {
    json!({
        "id": rec.id,
        "channel_id": channel,
        "title": rec.title,
        "visibility": rec.visibility,
        "state": rec.state,
        "countries": rec.countries,
        "taken_down": rec.taken_down,
        "version": rec.version,
    })
}

/// Body of `POST /v1/videos`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateVideo {
    title: String,
    #[serde(default)]
    description: String,
    visibility: Visibility,
    category: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    /// One of the caller's channels; absent: their default channel.
    channel: Option<String>,
}

/// `channel` if it belongs to `owner`; any other id is an invalid field (someone else's
/// channel looks like no channel).
async fn own_channel(state: &AppState, owner: &str, channel: String) -> Result<String, ApiError> {
    match channels::get(&state.db, &channel).await? {
        Some(c) if c.owner_id == owner => Ok(channel),
        _ => Err(ApiError::InvalidField {
            field: "channel",
            message: "not a channel of the video's owner".into(),
        }),
    }
}

/// Creates a video owned by the caller (a creator), in state `uploading`.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateVideo>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Creator)?;
    let title = fields::line("title", &body.title, MAX_TITLE)?;
    let description = fields::text("description", &body.description, MAX_DESCRIPTION)?;
    let category = category(body.category)?;
    let tags = tags(&body.tags)?;
    let channel = match body.channel {
        Some(c) => Some(own_channel(&state, &caller.0.sub, c).await?),
        None => None,
    };
    let id = VideoId::parse(&format!(
        "v_{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<9>())
    ))
    .map_err(|e| anyhow::anyhow!("generated id: {e}"))?;
    let rec = videos::upsert(
        &state.db,
        NewVideo {
            id: &id,
            owner_id: Some(&caller.0.sub),
            channel_id: channel.as_deref(),
            title: &title,
            description: &description,
            visibility: body.visibility,
            state: VideoState::Uploading,
            duration_ms: None,
            countries: None,
            taken_down: false,
            binding: None,
            category: category.as_deref(),
            tags: &tags,
        },
    )
    .await?;
    state.outbox.wake();
    let channel = videos::channel_of(&state.db, &id).await?;
    Ok((StatusCode::CREATED, Json(public(&rec, channel))))
}

/// `Some(x)` for any present value, including `null` (`Some(None)`): tells "clear it" apart
/// from "leave it".
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Body of `PATCH /v1/videos/{id}`: only the fields to change.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditVideo {
    title: Option<String>,
    description: Option<String>,
    visibility: Option<Visibility>,
    #[serde(default, deserialize_with = "present")]
    countries: Option<Option<CountryRule>>,
    taken_down: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    category: Option<Option<String>>,
    tags: Option<Vec<String>>,
    channel: Option<String>,
}

/// The video `raw` names, if the caller owns it and is still a creator, or is an admin.
/// Someone else's video looks like no video at all; an owner demoted below creator keeps the
/// video but no longer changes it (403), whatever the edge let through.
pub(crate) async fn owned_video(
    state: &AppState,
    caller: &Caller,
    raw: &str,
) -> Result<(VideoId, Option<String>), ApiError> {
    caller.require(Role::Creator)?;
    let id = VideoId::parse(raw).map_err(|e| ApiError::BadRequest {
        code: "invalid_video_id",
        message: format!("video id {e}"),
    })?;
    let owner = videos::owner(&state.db, &id)
        .await?
        .ok_or(ApiError::NotFound("video"))?;
    if caller.0.role != Role::Admin && owner.as_deref() != Some(caller.0.sub.as_str()) {
        return Err(ApiError::NotFound("video"));
    }
    Ok((id, owner))
}

/// Edits a video: its owner, or an admin; only an admin takes a video down or restores it.
pub async fn edit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EditVideo>,
) -> Result<impl IntoResponse, ApiError> {
    let (id, owner) = owned_video(&state, &caller, &id).await?;
    let admin = caller.0.role == Role::Admin;
    if body.taken_down.is_some() && !admin {
        return Err(ApiError::forbidden(
            "admin_only",
            "only an admin takes a video down or restores it",
        ));
    }
    let patch = VideoPatch {
        title: body
            .title
            .as_deref()
            .map(|t| fields::line("title", t, MAX_TITLE))
            .transpose()?,
        description: body
            .description
            .as_deref()
            .map(|d| fields::text("description", d, MAX_DESCRIPTION))
            .transpose()?,
        visibility: body.visibility,
        countries: body.countries.map(countries).transpose()?,
        taken_down: body.taken_down,
        category: body.category.map(category).transpose()?,
        tags: body.tags.as_deref().map(tags).transpose()?,
        channel: match (body.channel, owner) {
            (Some(c), Some(owner)) => Some(own_channel(&state, &owner, c).await?),
            (Some(_), None) => {
                return Err(ApiError::InvalidField {
                    field: "channel",
                    message: "the video has no owner".into(),
                })
            }
            (None, _) => None,
        },
    };
    let mut tx = crate::db::begin_write(&state.db).await?;
    let was_down: Option<i64> = sqlx::query_scalar("SELECT taken_down FROM videos WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    let rec = videos::update_in(&mut tx, &id, &patch)
        .await?
        .ok_or(ApiError::NotFound("video"))?;
    // A takedown or a restore here is a moderation action like any other: its reports closed,
    // in the audit log. Viewers get the general message (this route takes no reason).
    if let Some(down) = body.taken_down.filter(|d| was_down != Some(i64::from(*d))) {
        let action = if down {
            Action::TakeDown
        } else {
            Action::Restore
        };
        let by = down.then_some(("", caller.0.role));
        actions::takedown_columns(&mut tx, id.as_str(), by, false).await?;
        let reason = "set on the video's edit";
        actions::record(
            &mut tx,
            &caller.0.sub,
            action,
            &format!("video:{id}"),
            reason,
            now(),
        )
        .await?;
    }
    tx.commit().await?;
    state.outbox.wake();
    tracing::info!(video = %id, by = %caller.0.sub, version = rec.version, "video edited");
    let channel = videos::channel_of(&state.db, &id).await?;
    Ok(Json(public(&rec, channel)))
}

/// Deletes a video: its owner or an admin. The edge learns through a tombstone record; the media
/// files go after the commit (a failure there is logged, and leaves files nobody can reach).
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let (id, _) = owned_video(&state, &caller, &id).await?;
    let Some(deleted) = videos::delete(&state.db, &id).await? else {
        return Err(ApiError::NotFound("video"));
    };
    state.outbox.wake();
    let removed = async {
        state.store.delete_prefix(&media_prefix(&id)).await?;
        if let Some(key) = &deleted.source {
            state.store.delete(key).await?;
        }
        anyhow::Ok(())
    };
    if let Err(e) = removed.await {
        tracing::warn!(video = %id, error = %e, "media of a deleted video not removed");
    }
    tracing::info!(video = %id, by = %caller.0.sub, "video deleted");
    Ok(StatusCode::NO_CONTENT)
}
