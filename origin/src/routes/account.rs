//! Accounts: `POST /v1/auth/signup`, `PATCH /v1/me` (display name, password) and `DELETE /v1/me`.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use shared_wasm::jwt::Role;

use crate::caller::Caller;
use crate::error::{ApiError, ApiJson};
use crate::passwords;
use crate::routes::auth::tokens;
use crate::state::AppState;
use crate::users::{self, MAX_PASSWORD_LEN};

/// Shortest password accepted at signup or change.
pub const MIN_PASSWORD_LEN: usize = 10;

fn email(e: &str) -> Result<String, ApiError> {
    let e = e.trim();
    let ok = e.len() <= 254
        && !e.chars().any(char::is_whitespace)
        && e.split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if ok {
        Ok(e.to_ascii_lowercase())
    } else {
        Err(ApiError::InvalidField {
            field: "email",
            message: "an address like name@example.com".into(),
        })
    }
}

fn new_password(field: &'static str, p: &str) -> Result<(), ApiError> {
    if (MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&p.len()) {
        Ok(())
    } else {
        Err(ApiError::InvalidField {
            field,
            message: format!("{MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} bytes"),
        })
    }
}

/// Signup body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signup {
    email: String,
    password: String,
    #[serde(default)]
    display_name: String,
}

/// Creates a user (role `user`, homed in this region) and starts a session.
pub async fn signup(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Signup>,
) -> Result<impl IntoResponse, ApiError> {
    let email = email(&body.email)?;
    new_password("password", &body.password)?;
    let name = display_name(&body.display_name)?;
    // Counted before the work (an argon2 hash), whatever its outcome.
    let addr = passwords::client_addr(&headers);
    state
        .password_limits
        .signup(addr.as_deref(), crate::clock::now_ms())
        .map_err(ApiError::TooManyAttempts)?;
    let region = state.settings.server.region.clone();
    let user = users::create(
        &state.db,
        &email,
        &body.password,
        &name,
        Role::User,
        &region,
    )
    .await?
    .ok_or(ApiError::InvalidField {
        field: "email",
        message: "an account with this email exists; log in instead".into(),
    })?;
    let issued = state
        .sessions
        .start(&user.id, user.role, Some(&region))
        .await?;
    tracing::info!(user = %user.id, "signup");
    // A link to confirm the address, where this origin sends email: notification emails wait
    // for it. A failure here leaves the account as it is; the account page asks again.
    if state.settings.notifications.smtp_url.is_some() {
        if let Err(e) = crate::routes::notifications::queue_confirmation(&state, &user.id).await {
            tracing::warn!(user = %user.id, error = %e, "queueing the address confirmation");
        }
    }
    Ok((StatusCode::CREATED, tokens(issued)))
}

fn display_name(n: &str) -> Result<String, ApiError> {
    let n = n.trim();
    if n.chars().count() > 64 || n.chars().any(char::is_control) {
        return Err(ApiError::InvalidField {
            field: "display_name",
            message: "at most 64 characters, no control characters".into(),
        });
    }
    Ok(n.to_owned())
}

/// Profile change body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditProfile {
    display_name: Option<String>,
    /// `{current, new}`: changing the password ends every session.
    password: Option<PasswordChange>,
}

/// A password change.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current: String,
    new: String,
}

async fn check_password(
    state: &AppState,
    headers: &HeaderMap,
    user_id: &str,
    password: &str,
) -> Result<(), ApiError> {
    let (limits, addr) = (&state.password_limits, passwords::client_addr(headers));
    let now = crate::clock::now_ms();
    limits
        .may_check(user_id, addr.as_deref(), now)
        .map_err(ApiError::TooManyAttempts)?;
    if users::verify_by_id(&state.db, user_id, password).await? {
        Ok(())
    } else {
        limits.failed(user_id, addr.as_deref(), now);
        Err(ApiError::forbidden(
            "wrong_password",
            "the current password is wrong",
        ))
    }
}

/// Changes the display name and/or the password (which logs the user out everywhere).
pub async fn edit_profile(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<EditProfile>,
) -> Result<impl IntoResponse, ApiError> {
    let user_id = &caller.0.sub;
    if let Some(name) = &body.display_name {
        let name = display_name(name)?;
        users::set_display_name(&state.db, user_id, &name).await?;
    }
    let mut signed_out = false;
    if let Some(change) = &body.password {
        new_password("password.new", &change.new)?;
        check_password(&state, &headers, user_id, &change.current).await?;
        users::set_password(&state.db, user_id, change.new.clone()).await?;
        state.outbox.wake();
        signed_out = true;
    }
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"status": "updated", "signed_out": signed_out})),
    ))
}

/// Account deletion body: the password again, so a stolen access token cannot delete.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteAccount {
    password: String,
}

/// Deletes the account ([`users::delete`]).
pub async fn delete_account(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<DeleteAccount>,
) -> Result<impl IntoResponse, ApiError> {
    let user_id = caller.0.sub.clone();
    check_password(&state, &headers, &user_id, &body.password).await?;
    users::delete(&state.db, &user_id).await?;
    state.outbox.wake();
    tracing::info!(user = %user_id, "account deleted");
    Ok(StatusCode::NO_CONTENT)
}
