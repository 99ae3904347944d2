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

use crate::caller::Caller;
use crate::error::{ApiError, ApiJson};
use crate::keys::random_bytes;
use crate::startup::AppState;
use crate::videos::{self, NewVideo, VideoPatch};

const MAX_TITLE: usize = 200;
const MAX_DESCRIPTION: usize = 5000;
const MAX_COUNTRIES: usize = 250;

fn title(t: &str) -> Result<String, ApiError> {
    let t = t.trim();
    if t.is_empty() || t.chars().count() > MAX_TITLE {
        return Err(ApiError::InvalidField {
            field: "title",
            message: format!("1 to {MAX_TITLE} characters"),
        });
    }
    Ok(t.to_owned())
}

fn description(d: &str) -> Result<String, ApiError> {
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::InvalidField {
            field: "description",
            message: format!("at most {MAX_DESCRIPTION} characters"),
        });
    }
    Ok(d.to_owned())
}

fn slug(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

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

fn public(rec: &VideoRecord) -> serde_json::Value {
    json!({
        "id": rec.id,
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
}

/// Creates a video owned by the caller (a creator), in state `uploading`.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateVideo>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Creator)?;
    let title = title(&body.title)?;
    let description = description(&body.description)?;
    let category = category(body.category)?;
    let tags = tags(&body.tags)?;
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
    Ok((StatusCode::CREATED, Json(public(&rec))))
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
}

/// The video `raw` names, if the caller owns it or is an admin. Someone else's video looks like
/// no video at all.
async fn owned_video(state: &AppState, caller: &Caller, raw: &str) -> Result<VideoId, ApiError> {
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
    Ok(id)
}

/// Edits a video: its owner, or an admin; only an admin takes a video down or restores it.
pub async fn edit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EditVideo>,
) -> Result<impl IntoResponse, ApiError> {
    let id = owned_video(&state, &caller, &id).await?;
    let admin = caller.0.role == Role::Admin;
    if body.taken_down.is_some() && !admin {
        return Err(ApiError::Forbidden {
            code: "admin_only",
            message: "only an admin takes a video down or restores it",
        });
    }
    let patch = VideoPatch {
        title: body.title.as_deref().map(title).transpose()?,
        description: body.description.as_deref().map(description).transpose()?,
        visibility: body.visibility,
        countries: body.countries.map(countries).transpose()?,
        taken_down: body.taken_down,
        category: body.category.map(category).transpose()?,
        tags: body.tags.as_deref().map(tags).transpose()?,
    };
    let rec = videos::update(&state.db, &id, &patch)
        .await?
        .ok_or(ApiError::NotFound("video"))?;
    state.outbox.wake();
    tracing::info!(video = %id, by = %caller.0.sub, version = rec.version, "video edited");
    Ok(Json(public(&rec)))
}

/// Deletes a video: its owner or an admin. The edge learns through a tombstone record; the media
/// files go after the commit (a failure there is logged, and leaves files nobody can reach).
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = owned_video(&state, &caller, &id).await?;
    if videos::delete(&state.db, &id).await?.is_none() {
        return Err(ApiError::NotFound("video"));
    }
    state.outbox.wake();
    let dir = std::path::Path::new(&state.settings.storage.media_dir).join(id.as_str());
    if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(video = %id, error = %e, "media of a deleted video not removed");
        }
    }
    tracing::info!(video = %id, by = %caller.0.sub, "video deleted");
    Ok(StatusCode::NO_CONTENT)
}
