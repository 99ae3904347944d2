//! Admin and creator routes: find users, change a user's role, log a user out everywhere (a
//! ban's first step), list one's own videos.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use shared_wasm::jwt::Role;

use crate::caller::Caller;
use crate::error::{ApiError, ApiJson};
use crate::state::AppState;
use crate::{users, videos};

/// Longest `q` of a user search: the longest email address.
const MAX_QUERY: usize = 254;
/// Most users one search returns: an admin narrows the query rather than pages.
const MAX_FOUND: u32 = 20;

/// Parameters of `GET /v1/admin/users`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindUsers {
    /// Optional here so that a missing one gets the same JSON error as an empty one.
    q: Option<String>,
}

/// Finds users by id or by part of their email (admins only).
pub async fn find_users(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<FindUsers>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Admin)?;
    let invalid = |message: String| ApiError::BadRequest {
        code: "invalid_query",
        message,
    };
    let Query(p) = query.map_err(|e| invalid(e.body_text()))?;
    let q = p.q.as_deref().unwrap_or_default().trim();
    if q.is_empty() || q.chars().count() > MAX_QUERY {
        return Err(invalid(format!(
            "q is an id or part of an email, 1 to {MAX_QUERY} characters"
        )));
    }
    let items = users::search(&state.db, q, MAX_FOUND).await?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"items": items})),
    ))
}

/// Role change body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    role: Role,
}

/// Sets a user's role. Tokens carrying the old role are refused from now on (the user's epoch
/// moves), so a demotion takes effect at once; the user logs in again for the new role.
pub async fn set_role(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    ApiJson(body): ApiJson<SetRole>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Admin)?;
    if !users::set_role(&state.db, &user_id, body.role).await? {
        return Err(ApiError::NotFound("user"));
    }
    state.outbox.wake();
    tracing::info!(admin = %caller.0.sub, user = %user_id, role = ?body.role, "role changed");
    Ok(Json(json!({"id": user_id, "role": body.role})))
}

/// Ends every session of a user and refuses every token issued to them so far.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Admin)?;
    if !users::revoke(&state.db, &user_id).await? {
        return Err(ApiError::NotFound("user"));
    }
    state.outbox.wake();
    tracing::info!(admin = %caller.0.sub, user = %user_id, "user revoked");
    Ok(Json(json!({"id": user_id, "status": "revoked"})))
}

/// The caller's own videos, newest first.
pub async fn my_videos(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Creator)?;
    let items = videos::owned_by(&state.db, &caller.0.sub).await?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"items": items})),
    ))
}
