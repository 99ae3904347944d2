//! Admin and creator routes: change a user's role, log a user out everywhere (a ban's first
//! step), list one's own videos.

use axum::extract::{Path, State};
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
