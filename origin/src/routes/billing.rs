//! `POST /billing/stripe/webhook` (Stripe calls it: verified, stored, acknowledged; a worker
//! applies it) and `POST /v1/billing/checkout` (a user starts a subscription).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;
use shared_wasm::jwt::Role;

use crate::billing::{checkout, events, signature};
use crate::caller::Caller;
use crate::clock::now;
use crate::error::ApiError;
use crate::state::AppState;

/// Largest webhook body accepted (Stripe's events are a few kilobytes).
pub const MAX_WEBHOOK_BODY: usize = 256 * 1024;

/// Verifies the signature over the raw body, stores the event once, and answers at once.
/// Nothing is stored unless the signature holds and the event is well formed.
pub async fn stripe_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let cfg = &state.settings.billing;
    let secrets = cfg.webhook_secrets();
    if secrets.is_empty() {
        return Err(ApiError::unavailable(
            "billing_unavailable",
            "webhooks are not configured",
        ));
    }
    let header = match headers.get("stripe-signature") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::InvalidSignature(signature::Refusal::Malformed.code()))?,
        ),
    };
    signature::verify(header, &body, &secrets, now(), cfg.tolerance_secs)
        .map_err(|r| ApiError::InvalidSignature(r.code()))?;
    let event = events::parse(&body).map_err(|m| ApiError::BadRequest {
        code: "invalid_event",
        message: m.into(),
    })?;
    // Valid JSON is valid UTF-8.
    let text = std::str::from_utf8(&body).map_err(anyhow::Error::from)?;
    let new = events::store(&state.db, &event, text).await?;
    if new {
        state.billing.wake();
    }
    Ok(Json(json!({"received": true, "duplicate": !new})))
}

/// Starts Checkout for the caller's subscription: `{id, url}`.
pub async fn start_checkout(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::User)?;
    let email = crate::users::account(&state.db, &caller.0.sub)
        .await?
        .ok_or(ApiError::NotFound("user"))?
        .email;
    let session = checkout::start(
        &state.db,
        &state.http,
        &state.settings.billing,
        &caller.0.sub,
        &email,
    )
    .await?;
    tracing::info!(user = %caller.0.sub, session = %session.id, "checkout started");
    Ok(Json(session))
}
