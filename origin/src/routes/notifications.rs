//! Notifications: the list `GET /v1/me/notifications?before=…` (an `ETag` on its first page for
//! polling), `POST /v1/me/notifications/read`, the preferences
//! `GET`/`PUT /v1/me/notification-preferences`, and the emails' one-click unsubscribe
//! `GET`/`POST /v1/notifications/unsubscribe?t=…` (no sign-in: the signed token is the proof);
//! confirming an address: `POST /v1/me/email/confirm` sends a link, `GET`/`POST
//! /v1/auth/confirm-email?t=…` follows it.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use shared_wasm::jwt::Role;

use crate::caller::Caller;
use crate::clock::now;
use crate::error::{ApiError, ApiJson};
use crate::jobs::{self, NewJob, OnConflict};
use crate::notifications::inbox::{self, Mark};
use crate::notifications::unsubscribe::{self, Scope};
use crate::notifications::{confirm, prefs, Channels, Kind};
use crate::state::AppState;

/// Notifications per page.
const PAGE: u32 = 30;
/// Most ids one mark-read names.
const MAX_IDS: usize = 100;

fn bad_query(e: QueryRejection) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_query",
        message: e.body_text(),
    }
}

/// `GET /v1/me/notifications` parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    before: Option<i64>,
}

/// The caller's notifications, newest first, with the unread count. The first page carries an
/// `ETag` made of the newest id and the unread count: a poll with `If-None-Match` is a 304
/// until a notification comes or one is read.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(Role::User)?;
    let Query(q) = query.map_err(bad_query)?;
    let user = &caller.0.sub;
    // Private to the caller, and never used without asking the origin again.
    let cache = (
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    if q.before.is_some() {
        let page = inbox::page(&state.db, user, q.before, PAGE).await?;
        return Ok(([cache], Json(page)).into_response());
    }
    let (newest, unread) = inbox::version(&state.db, user).await?;
    let etag = format!("W/\"n{newest}-{unread}\"");
    let etag_value = HeaderValue::from_str(&etag).expect("digits and quotes");
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == etag);
    if matches {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [cache, (header::ETAG, etag_value)],
        )
            .into_response());
    }
    let page = inbox::page(&state.db, user, None, PAGE).await?;
    Ok(([cache, (header::ETAG, etag_value)], Json(page)).into_response())
}

/// Body of `POST /v1/me/notifications/read`: exactly one of the two.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadBody {
    up_to: Option<i64>,
    ids: Option<Vec<i64>>,
}

/// Marks notifications read: everything up to an id, or some by id.
pub async fn mark_read(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ReadBody>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::User)?;
    let mark = match (body.up_to, body.ids) {
        (Some(id), None) => Mark::UpTo(id),
        (None, Some(ids)) if (1..=MAX_IDS).contains(&ids.len()) => Mark::Ids(ids),
        _ => {
            return Err(ApiError::BadRequest {
                code: "invalid_mark",
                message: format!("give up_to, or ids (1 to {MAX_IDS} of them)"),
            })
        }
    };
    let unread = inbox::mark_read(&state.db, &caller.0.sub, &mark, now()).await?;
    Ok(Json(json!({"unread": unread})))
}

/// The caller's channels for every kind.
pub async fn preferences(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::User)?;
    let all = prefs::all(&mut *state.db.acquire().await?, &caller.0.sub).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(all)))
}

/// Sets the caller's channels for the kinds named (the others stay).
pub async fn set_preferences(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<BTreeMap<String, Channels>>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::User)?;
    let mut chosen = Vec::new();
    for (name, channels) in &body {
        let kind = Kind::parse(name).ok_or_else(|| ApiError::BadRequest {
            code: "invalid_kind",
            message: format!("kinds are {}", Kind::ALL.map(Kind::as_str).join(", ")),
        })?;
        chosen.push((kind, *channels));
    }
    let user = &caller.0.sub;
    let mut tx = state.db.begin().await?;
    for (kind, channels) in chosen {
        prefs::set(&mut tx, user, kind, channels).await?;
        if !channels.email {
            prefs::stop_email(&mut tx, user, &[kind]).await?;
        }
    }
    let all = prefs::all(&mut tx, user).await?;
    tx.commit().await?;
    Ok(Json(all))
}

/// `?t=` of the unsubscribe link.
#[derive(Deserialize)]
pub struct TokenQuery {
    t: String,
}

fn token(
    state: &AppState,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Result<(String, Scope), ApiError> {
    let Query(q) = query.map_err(bad_query)?;
    unsubscribe::check(state.email_link_key.as_slice(), &q.t).ok_or(ApiError::BadRequest {
        code: "invalid_token",
        message: "this unsubscribe link is not valid; change your emails in your account".into(),
    })
}

fn what(scope: Scope) -> String {
    match scope {
        Scope::Kind(k) => format!("emails about {}", k.as_str().replace('_', " ")),
        Scope::All => "all notification emails".into(),
    }
}

/// A page of our own: no script, no style, nothing loaded, a form that posts only back here.
fn page(title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title>\
         <h1>{title}</h1>{body}</html>"
    );
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
            ),
        ],
        Html(html),
    )
        .into_response()
}

/// The link in an email, opened: asks to confirm, since link scanners open links too.
pub async fn unsubscribe_page(
    State(state): State<AppState>,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (_, scope) = token(&state, query)?;
    Ok(page(
        "Unsubscribe",
        &format!(
            "<p>Stop {}?</p><form method=\"post\"><button>Unsubscribe</button></form>\
             <p>Notifications stay in the app; change them in your account.</p>",
            what(scope)
        ),
    ))
}

/// Unsubscribes: the confirmation's form, or a mail client's one-click POST (RFC 8058).
pub async fn unsubscribe(
    State(state): State<AppState>,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (user, scope) = token(&state, query)?;
    let mut tx = state.db.begin().await?;
    prefs::stop_email(&mut tx, &user, &scope.kinds()).await?;
    tx.commit().await?;
    tracing::info!(user, scope = ?scope, "unsubscribed from notification emails");
    Ok(page(
        "Unsubscribed",
        &format!("<p>You will get no more {}.</p>", what(scope)),
    ))
}

/// How often a user may ask for a confirmation link.
const CONFIRM_EVERY_SECS: u64 = 600;

/// Queues an email with a link that confirms the caller's address (also done at signup). One a
/// user per [`CONFIRM_EVERY_SECS`]; 503 where this origin sends no email.
pub async fn request_confirmation(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::User)?;
    let account = crate::users::account(&state.db, &caller.0.sub)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    if account.email_confirmed_at.is_some() {
        return Err(ApiError::conflict(
            "already_confirmed",
            "your email address is confirmed already",
        ));
    }
    match queue_confirmation(&state, &caller.0.sub).await? {
        Ok(()) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"sent_to": account.email})),
        )),
        Err(wait) => Err(ApiError::TooManyAttempts(wait)),
    }
}

/// Queues `user`'s confirmation email, unless one was asked for in the last
/// [`CONFIRM_EVERY_SECS`] (`Err`: the seconds to wait).
pub async fn queue_confirmation(state: &AppState, user: &str) -> Result<Result<(), u64>, ApiError> {
    if state.settings.notifications.smtp_url.is_none() {
        return Err(ApiError::unavailable(
            "email_unavailable",
            "this service sends no email",
        ));
    }
    let t = now();
    let mut conn = state.db.acquire().await?;
    let last: Option<i64> =
        sqlx::query_scalar("SELECT created_at FROM jobs WHERE kind = $1 AND key = $2")
            .bind(crate::notifications::mail::CONFIRM)
            .bind(user)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(last) = last {
        let next = last.max(0) as u64 + CONFIRM_EVERY_SECS;
        if next > t {
            return Ok(Err(next - t));
        }
    }
    let job = NewJob::new(crate::notifications::mail::CONFIRM, user);
    jobs::enqueue(&mut conn, &job, OnConflict::Renew, t).await?;
    Ok(Ok(()))
}

/// A confirmation link, opened: asks to confirm (link scanners open links too).
pub async fn confirm_page(
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(bad_query)?;
    if q.t.len() > confirm::MAX_TOKEN {
        return Err(bad_confirm_token());
    }
    Ok(page(
        "Confirm your email address",
        "<form method=\"post\"><button>Confirm</button></form>",
    ))
}

fn bad_confirm_token() -> ApiError {
    ApiError::BadRequest {
        code: "invalid_token",
        message: "this confirmation link is not valid; ask for a new one in your account".into(),
    }
}

/// Confirms the address the link was sent to.
pub async fn confirm(
    State(state): State<AppState>,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(bad_query)?;
    let key = state.email_link_key.as_slice();
    match confirm::confirm(&state.db, key, &q.t, now()).await? {
        Ok(user) => {
            tracing::info!(user, "email address confirmed");
            Ok(page(
                "Email address confirmed",
                "<p>Your notifications can now come by email; choose which in your account.</p>",
            ))
        }
        Err(confirm::Refused::Expired) => Err(ApiError::gone(
            "link_expired",
            "this confirmation link has expired; ask for a new one in your account",
        )),
        Err(confirm::Refused::Invalid) => Err(bad_confirm_token()),
    }
}
