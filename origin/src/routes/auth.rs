//! `POST /v1/auth/login` and `GET /.well-known/jwks.json`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::error::{ApiError, ApiJson};
use crate::startup::AppState;
use crate::users::{self, MAX_PASSWORD_LEN};

/// Login request body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    email: String,
    password: String,
}

/// Checks the password and issues a short-lived EdDSA access token.
pub async fn login(
    State(state): State<AppState>,
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
    let user = users::authenticate(&state.db, &body.email, &body.password)
        .await?
        .ok_or(ApiError::Unauthorized {
            code: "invalid_credentials",
            message: "email or password is wrong",
        })?;
    let (token, ttl) = state
        .keys
        .issue(&state.settings.auth, &user.id, user.role)?;
    tracing::info!(user = %user.id, "login");
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": ttl,
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
