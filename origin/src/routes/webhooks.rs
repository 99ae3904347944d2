//! Webhook endpoints, a creator's (or an admin's, for every creator): `POST`/`GET /v1/webhooks`,
//! `GET`/`PATCH`/`DELETE /v1/webhooks/{id}`, `POST /v1/webhooks/{id}/rotate`, the delivery log
//! `GET /v1/webhooks/{id}/deliveries` and `POST /v1/webhooks/{id}/deliveries/{event}/retry`.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use shared_wasm::jwt::Role;

use crate::caller::Caller;
use crate::error::{ApiError, ApiJson};
use crate::state::AppState;
use crate::webhooks::endpoints::{self, Again, NewEndpoint};
use crate::webhooks::{target, EventType};

/// Enough for any integration; bounds what one account makes the origin call.
const MAX_PER_OWNER: usize = 10;
/// Lines of the delivery log shown.
const LOG_LINES: u32 = 100;
/// Longest overlap of a rotated secret with the new one.
const MAX_OVERLAP_SECS: u64 = 7 * 24 * 3600;
const DEFAULT_OVERLAP_SECS: u64 = 24 * 3600;

/// Body of `POST /v1/webhooks`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    url: String,
    events: Vec<EventType>,
    #[serde(default)]
    all_creators: bool,
}

/// Body of `PATCH /v1/webhooks/{id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditEndpoint {
    url: Option<String>,
    events: Option<Vec<EventType>>,
}

/// Body of `POST /v1/webhooks/{id}/rotate` (`{}` for the default overlap).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    overlap_secs: Option<u64>,
}

fn checked_url<'a>(state: &AppState, url: &'a str) -> Result<&'a str, ApiError> {
    target::check(url, state.settings.webhooks.allow_private)
        .map(|_| url)
        .map_err(|message| ApiError::InvalidField {
            field: "url",
            message: message.into(),
        })
}

fn checked_events(events: &[EventType]) -> Result<&[EventType], ApiError> {
    if events.is_empty() {
        return Err(ApiError::InvalidField {
            field: "events",
            message: "name at least one event type".into(),
        });
    }
    Ok(events)
}

const NO_ENDPOINT: ApiError = ApiError::NotFound("webhook endpoint");

/// Registers an endpoint; its secret is in this answer and in a rotation's only.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateEndpoint>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Creator)?;
    if body.all_creators {
        caller.require(Role::Admin)?;
    }
    let new = NewEndpoint {
        owner: &caller.0.sub,
        url: checked_url(&state, &body.url)?,
        events: checked_events(&body.events)?,
        all_creators: body.all_creators,
    };
    let (endpoint, secret) = endpoints::create(&state.db, &new, MAX_PER_OWNER)
        .await?
        .ok_or(ApiError::conflict(
            "too_many_webhooks",
            "an account has at most 10 webhook endpoints",
        ))?;
    tracing::info!(endpoint = %endpoint.id, by = %caller.0.sub, "webhook endpoint created");
    let mut shown = serde_json::to_value(endpoint).map_err(anyhow::Error::from)?;
    shown["secret"] = secret.into();
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(shown),
    ))
}

/// The caller's endpoints.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Creator)?;
    let items = endpoints::list(&state.db, &caller.0.sub).await?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"items": items})),
    ))
}

/// One of the caller's endpoints.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Creator)?;
    let endpoint = endpoints::get(&state.db, &caller.0.sub, &id)
        .await?
        .ok_or(NO_ENDPOINT)?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(endpoint)))
}

/// Changes an endpoint's URL or events.
pub async fn edit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EditEndpoint>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Creator)?;
    let url = body
        .url
        .as_deref()
        .map(|u| checked_url(&state, u))
        .transpose()?;
    let events = body.events.as_deref().map(checked_events).transpose()?;
    let endpoint = endpoints::update(&state.db, &caller.0.sub, &id, url, events)
        .await?
        .ok_or(NO_ENDPOINT)?;
    Ok(Json(endpoint))
}

/// Removes an endpoint; its pending deliveries are dropped.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Creator)?;
    if !endpoints::delete(&state.db, &caller.0.sub, &id).await? {
        return Err(NO_ENDPOINT);
    }
    tracing::info!(endpoint = %id, by = %caller.0.sub, "webhook endpoint deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// A new secret; the old one signs beside it for `overlap_secs` (default a day).
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Rotate>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Creator)?;
    let overlap = body.overlap_secs.unwrap_or(DEFAULT_OVERLAP_SECS);
    if overlap > MAX_OVERLAP_SECS {
        return Err(ApiError::InvalidField {
            field: "overlap_secs",
            message: format!("at most {MAX_OVERLAP_SECS} (7 days)"),
        });
    }
    let (endpoint, secret) = endpoints::rotate(&state.db, &caller.0.sub, &id, overlap)
        .await?
        .ok_or(NO_ENDPOINT)?;
    tracing::info!(endpoint = %id, by = %caller.0.sub, "webhook secret rotated");
    let mut shown = serde_json::to_value(endpoint).map_err(anyhow::Error::from)?;
    shown["secret"] = secret.into();
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(shown)))
}

/// The endpoint's latest deliveries, newest first.
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Creator)?;
    let items = endpoints::deliveries(&state.db, &caller.0.sub, &id, LOG_LINES)
        .await?
        .ok_or(NO_ENDPOINT)?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"items": items})),
    ))
}

/// Sends an event to the endpoint again, under its id.
pub async fn send_again(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, event)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Creator)?;
    match endpoints::send_again(&state.db, &caller.0.sub, &id, &event).await? {
        Again::Queued => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"event": event, "state": "pending"})),
        )),
        Again::NoEndpoint => Err(NO_ENDPOINT),
        Again::NoDelivery => Err(ApiError::NotFound("delivery")),
    }
}
