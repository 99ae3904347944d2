//! Moderation: `POST /v1/reports` (any user), the queue `GET /v1/moderation/queue` and
//! `POST /v1/moderation/actions` (moderators and admins), the audit log
//! `GET /v1/moderation/log?before=…` (admins).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use shared_wasm::jwt::Role;

use crate::caller::Caller;
use crate::clock::now;
use crate::error::{ApiError, ApiJson};
use crate::moderation::actions::{self, Action, Refusal};
use crate::moderation::{self, queue, NotFiled, Reason, Target};
use crate::routes::fields;
use crate::state::AppState;

const MAX_NOTE: usize = 1000;
const MAX_REASON: usize = 500;
const QUEUE_ITEMS: u32 = 50;
const LOG_PAGE: u32 = 50;

/// Exactly one of a body's `video`, `comment`, `user` (those `allowed`).
fn one_target(
    video: Option<String>,
    comment: Option<String>,
    user: Option<String>,
) -> Result<Target, ApiError> {
    match (video, comment, user) {
        (Some(v), None, None) => Ok(Target::Video(v)),
        (None, Some(c), None) => Ok(Target::Comment(c)),
        (None, None, Some(u)) => Ok(Target::User(u)),
        _ => Err(ApiError::BadRequest {
            code: "invalid_target",
            message: "name exactly one target".into(),
        }),
    }
}

/// Body of `POST /v1/reports`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewReport {
    video: Option<String>,
    comment: Option<String>,
    reason: Reason,
    #[serde(default)]
    note: String,
}

/// Reports a video or a comment.
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewReport>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::User)?;
    let target = one_target(body.video, body.comment, None)?;
    let note = fields::text("note", body.note.trim(), MAX_NOTE)?;
    let filed =
        moderation::report(&state.db, &caller.0.sub, &target, body.reason, &note, now()).await?;
    match filed {
        Ok(id) => Ok((
            StatusCode::CREATED,
            Json(json!({"id": id, "target": target.json(), "reason": body.reason})),
        )),
        Err(NotFiled::NoTarget) => Err(ApiError::NotFound(match target {
            Target::Video(_) => "video",
            _ => "comment",
        })),
        Err(NotFiled::AlreadyOpen) => Err(ApiError::conflict(
            "already_reported",
            "you have reported this already; moderators will look at it",
        )),
        Err(NotFiled::TooMany(wait)) => Err(ApiError::TooManyReports(wait)),
    }
}

/// The review queue.
pub async fn queue(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Moderator)?;
    let items = queue::open(&state.db, QUEUE_ITEMS).await?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"items": items})),
    ))
}

/// Body of `POST /v1/moderation/actions`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAction {
    action: Action,
    video: Option<String>,
    comment: Option<String>,
    user: Option<String>,
    reason: String,
}

/// Takes an action.
pub async fn act(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewAction>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Moderator)?;
    let target = one_target(body.video, body.comment, body.user)?;
    let reason = fields::line("reason", &body.reason, MAX_REASON)?;
    let acted = actions::act(
        &state.db,
        &caller.0.sub,
        caller.0.role,
        body.action,
        &target,
        &reason,
    )
    .await?;
    let acted = acted.map_err(|refusal| match refusal {
        Refusal::NoTarget => ApiError::NotFound("target"),
        Refusal::WrongTarget => ApiError::BadRequest {
            code: "invalid_target",
            message: "that action does not apply to that kind of target".into(),
        },
        Refusal::NothingToDismiss => {
            ApiError::conflict("no_open_reports", "there are no open reports to dismiss")
        }
        Refusal::Outranked => ApiError::forbidden(
            "outranked",
            "someone of a higher role owns this, or took this action; it is theirs to change",
        ),
        Refusal::OwnContent => ApiError::forbidden(
            "own_content",
            "moderators do not act on their own videos and comments",
        ),
        Refusal::SuspendedOwner => ApiError::conflict(
            "suspended_owner",
            "this video went down with its owner's suspension: reinstate the owner to restore it",
        ),
        Refusal::AlreadySo => ApiError::conflict(
            "already_so",
            "the account is already suspended, or is not suspended",
        ),
    })?;
    state.outbox.wake();
    Ok(Json(acted))
}

/// `GET /v1/moderation/log` parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    before: Option<i64>,
}

/// The audit log, newest first.
pub async fn log(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<Page>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Admin)?;
    let Query(page) = query.map_err(|e| ApiError::BadRequest {
        code: "invalid_query",
        message: e.body_text(),
    })?;
    let items = actions::history(&state.db, page.before, LOG_PAGE).await?;
    let next = (items.len() == LOG_PAGE as usize)
        .then(|| items.last().map(|e| e.seq))
        .flatten();
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"items": items, "next_before": next})),
    ))
}
