//! `GET /v1/feeds/home`, `/channel/{id}`, `/category/{slug}`, `/trending`: shared feeds, which
//! the edge caches.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;

use crate::channels;
use crate::error::ApiError;
use crate::feeds::{self, Filter};
use crate::state::AppState;

/// Paging parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paging {
    cursor: Option<String>,
    limit: Option<u32>,
}

/// The newest public videos.
pub async fn home(
    State(state): State<AppState>,
    Query(p): Query<Paging>,
) -> Result<impl IntoResponse, ApiError> {
    let page = feeds::page(
        &state.db,
        &state.cursors,
        Filter::All,
        p.cursor.as_deref(),
        p.limit.unwrap_or(20),
    )
    .await?;
    Ok(([(header::CACHE_CONTROL, "public, max-age=30")], Json(page)))
}

/// A channel's public videos; 404 for no such channel (the edge's subscriptions feed skips it).
pub async fn channel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<Paging>,
) -> Result<impl IntoResponse, ApiError> {
    if channels::get(&state.db, &id).await?.is_none() {
        return Err(ApiError::NotFound("channel"));
    }
    let page = feeds::page(
        &state.db,
        &state.cursors,
        Filter::Channel(&id),
        p.cursor.as_deref(),
        p.limit.unwrap_or(20),
    )
    .await?;
    Ok(([(header::CACHE_CONTROL, "public, max-age=30")], Json(page)))
}

/// One category's public videos.
pub async fn category(
    State(state): State<AppState>,
    Path(category): Path<String>,
    Query(p): Query<Paging>,
) -> Result<impl IntoResponse, ApiError> {
    let page = feeds::page(
        &state.db,
        &state.cursors,
        Filter::Category(&category),
        p.cursor.as_deref(),
        p.limit.unwrap_or(20),
    )
    .await?;
    Ok(([(header::CACHE_CONTROL, "public, max-age=30")], Json(page)))
}

/// Trending parameters: one page.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Top {
    limit: Option<u32>,
}

/// The top videos by recent net likes.
pub async fn trending(
    State(state): State<AppState>,
    Query(p): Query<Top>,
) -> Result<impl IntoResponse, ApiError> {
    let page = feeds::trending(&state.db, p.limit.unwrap_or(20)).await?;
    Ok(([(header::CACHE_CONTROL, "public, max-age=30")], Json(page)))
}
