//! Sessions: `POST /v1/auth/login`, `/refresh`, `/logout`; `GET /v1/me`; and the JWKS.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::caller::Caller;
use crate::clock::now_ms;
use crate::error::{ApiError, ApiJson};
use crate::passwords;
use crate::sessions::Issued;
use crate::state::AppState;
use crate::users::{self, MAX_PASSWORD_LEN};

/// Login request body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    email: String,
    password: String,
}

/// The JSON a login, signup or refresh answers with.
pub fn tokens(issued: Issued) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "refresh_token": issued.refresh_token,
            "refresh_expires_in": issued.refresh_expires_in,
        })),
    )
}

/// Checks the password and starts a session: a short-lived EdDSA access token and a refresh
/// token.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Login>,
) -> Result<impl IntoResponse, ApiError> {
    if body.email.is_empty() || body.email.len() > 254 {
        return Err(ApiError::BadRequest {
            code: "invalid_email",
            message: "email must be 1 to 254 characters".into(),
        });
    }
    if body.password.is_empty() || body.password.len() > MAX_PASSWORD_LEN {
        return Err(ApiError::BadRequest {
            code: "invalid_password",
            message: format!("password must be 1 to {MAX_PASSWORD_LEN} bytes"),
        });
    }
    // Addresses are stored lower-case (signup folds them).
    let email = body.email.trim().to_ascii_lowercase();
    let (limits, addr) = (&state.password_limits, passwords::client_addr(&headers));
    limits
        .may_check(&email, addr.as_deref(), now_ms())
        .map_err(ApiError::TooManyAttempts)?;
    let Some(user) = users::authenticate(&state.db, &email, &body.password).await? else {
        limits.failed(&email, addr.as_deref(), now_ms());
        return Err(ApiError::unauthorized(
            "invalid_credentials",
            "email or password is wrong",
        ));
    };
    // A suspended account gets no session (`Sessions::start` refuses it, 403), told only
    // after its password: to its holder.
    let issued = state
        .sessions
        .start(&user.id, user.role, user.home_region.as_deref())
        .await?;
    tracing::info!(user = %user.id, "login");
    Ok(tokens(issued))
}

/// Refresh request body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refresh {
    refresh_token: String,
}

/// Rotates the refresh token and issues a new access token (with the user's current role).
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Refresh>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(tokens(state.sessions.refresh(&body.refresh_token).await?))
}

/// Logout request body (optional).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Logout {
    /// Also end every other session of the user.
    #[serde(default)]
    everywhere: bool,
}

/// Ends the caller's session, or all of the user's sessions with `{"everywhere": true}`.
pub async fn logout(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let body: Logout = if body.iter().all(u8::is_ascii_whitespace) {
        Logout::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest {
            code: "invalid_body",
            message: format!("expected {{\"everywhere\": bool}}: {e}"),
        })?
    };
    state
        .sessions
        .logout(&caller.0.sub, caller.0.jti.as_deref(), body.everywhere)
        .await?;
    tracing::info!(user = %caller.0.sub, everywhere = body.everywhere, "logout");
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"status": "logged_out"})),
    ))
}

/// The caller's profile.
pub async fn me(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    let account = users::account(&state.db, &caller.0.sub)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    let membership = crate::entitlements::record(&state.db, &caller.0.sub)
        .await?
        .map(|e| json!({"tier": e.tier, "status": e.status, "period_end": e.period_end}));
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "id": caller.0.sub,
            "email": account.email,
            "role": account.role,
            "home_region": account.home_region,
            "display_name": account.display_name,
            "email_confirmed": account.email_confirmed_at.is_some(),
            "membership": membership,
        })),
    ))
}

/// The public keys the edge verifies access tokens with.
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.keys.jwks()),
    )
}
