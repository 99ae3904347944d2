//! `GET /v1/videos/{id}`, `/v1/search`, `/v1/categories`, `/v1/users/{id}`: what viewers read
//! before they play. Search and categories are shared answers, which the edge caches.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;

use crate::caller::Caller;
use crate::catalog;
use crate::db::Backend;
use crate::error::ApiError;
use crate::state::AppState;

/// One video's details; who asks matters (its owner sees it unfinished), so never shared.
pub async fn video(
    State(state): State<AppState>,
    caller: Option<Caller>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let details = catalog::details(&state.db, &id, caller.as_ref().map(|c| &c.0)).await?;
    Ok((
        [(header::CACHE_CONTROL, "private, no-store")],
        Json(details),
    ))
}

/// Search parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Optional here so that a missing one gets the same JSON error as an empty one.
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

/// Public videos matching `q`, most relevant first.
pub async fn search(
    State(state): State<AppState>,
    Query(p): Query<SearchQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let backend = Backend::of_url(&state.settings.database.url)?;
    let page = catalog::search(
        &state.db,
        backend,
        &state.cursors,
        p.q.as_deref().unwrap_or_default(),
        p.cursor.as_deref(),
        p.limit.unwrap_or(20),
    )
    .await?;
    Ok(([(header::CACHE_CONTROL, "public, max-age=30")], Json(page)))
}

/// The categories in use.
pub async fn categories(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let list = catalog::categories(&state.db).await?;
    Ok((
        [(header::CACHE_CONTROL, "public, max-age=30")],
        Json(serde_json::json!({ "categories": list })),
    ))
}

/// A creator's public profile.
pub async fn profile(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(catalog::profile(&state.db, &id).await?))
}
