//! Upload routes. `POST /v1/videos/{id}/upload` (the owner, through the edge) signs a ticket;
//! the creator then sends the file straight to this origin: `PUT /uploads/{ticket}` in one
//! request here, or tus 1.0 ([`super::tus`]).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;
use shared_wasm::jwt::Role;
use shared_wasm::record::VideoState;
use shared_wasm::VideoId;
use sqlx::{Any, AnyConnection, Transaction};

use crate::caller::Caller;
use crate::clock::now;
use crate::error::ApiError;
use crate::keys::random_bytes;
use crate::state::AppState;
use crate::uploads::quota::{self, OpenPut};
use crate::uploads::store::{self, Finished, Written};
use crate::uploads::ticket::{self, Ticket};
use crate::videos;

pub(super) fn public_url(state: &AppState) -> String {
    let s = &state.settings.server;
    s.public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}:{}", s.host, s.port))
        .trim_end_matches('/')
        .to_owned()
}

pub(super) fn refused(r: ticket::Refusal) -> ApiError {
    match r {
        ticket::Refusal::Forged => ApiError::forbidden(
            "invalid_ticket",
            "the upload URL is not one this origin signed",
        ),
        ticket::Refusal::Expired => ApiError::gone(
            "ticket_expired",
            "the upload URL has expired; ask for a new one",
        ),
    }
}

/// Signs an upload ticket for a video of the caller's that waits for its file.
pub async fn issue(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Creator)?;
    let video = VideoId::parse(&id).map_err(|e| ApiError::BadRequest {
        code: "invalid_video_id",
        message: format!("video id {e}"),
    })?;
    let owner = videos::owner(&state.db, &video)
        .await?
        .ok_or(ApiError::NotFound("video"))?;
    if owner.as_deref() != Some(caller.0.sub.as_str()) {
        return Err(ApiError::NotFound("video"));
    }
    still_waiting(&state.db, &video).await?;
    let storage = &state.settings.storage;
    let t = Ticket {
        video: video.clone(),
        expires_at: now() + storage.upload_ticket_secs,
        max_bytes: storage.max_upload_bytes,
        types: ticket::TYPES.iter().map(|(_, m)| *m).collect(),
        nonce: URL_SAFE_NO_PAD.encode(random_bytes::<16>()),
    };
    ticket::record_issued(&state.db, &t).await?;
    let token = ticket::issue(&state.upload_key[..], &t);
    let base = public_url(&state);
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "upload_url": format!("{base}/uploads/{token}"),
            "tus_url": format!("{base}/uploads/{token}/tus"),
            "expires_at": t.expires_at,
            "max_bytes": t.max_bytes,
            "content_types": t.types,
        })),
    ))
}

/// Refuses (before a byte of the body is read) an upload for a video that has its file already
/// or is gone: a second ticket of a video that got its file must not cost a transfer.
pub(super) async fn still_waiting(
    db: impl sqlx::AnyExecutor<'_>,
    video: &VideoId,
) -> Result<(), ApiError> {
    match videos::record(db, video).await? {
        Some(rec) if rec.state == VideoState::Uploading => Ok(()),
        Some(_) => Err(already_uploaded()),
        None => Err(ApiError::NotFound("video")),
    }
}

fn already_uploaded() -> ApiError {
    ApiError::conflict("already_uploaded", "the video already has its file")
}

/// Marks the ticket used; a second use is refused (410).
pub(super) async fn consume(conn: &mut AnyConnection, t: &Ticket) -> Result<(), ApiError> {
    if ticket::consume(conn, t).await? {
        Ok(())
    } else {
        Err(ApiError::gone(
            "ticket_used",
            "the upload URL was already used; ask for a new one",
        ))
    }
}

pub(super) fn content_type_of(t: &Ticket, ct: Option<&str>) -> Result<&'static str, ApiError> {
    let ct = ct.map(|c| {
        c.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    t.types
        .iter()
        .find(|m| Some(**m) == ct.as_deref())
        .copied()
        .ok_or(ApiError::unsupported_media_type(
            "unsupported_type",
            "the upload's content type is not one the URL allows",
        ))
}

/// Starts an upload of up to `bytes` with ticket `t`: the upload folder's free space checked,
/// then, in the transaction returned, the upload within its creator's bounds
/// ([`quota::admit`]), the ticket used and the video still waiting. The caller records the
/// upload in it and commits; refused or dropped, it leaves the ticket unused and nothing
/// recorded.
pub(super) async fn start(
    state: &AppState,
    t: &Ticket,
    bytes: u64,
) -> Result<Transaction<'static, Any>, ApiError> {
    let storage = &state.settings.storage;
    let root = storage.upload_dir();
    tokio::fs::create_dir_all(store::partial_dir(&root))
        .await
        .map_err(anyhow::Error::from)?;
    quota::ensure_room(&root, bytes, storage.min_free_bytes).await?;
    let limits = quota::Limits {
        open: storage.max_open_uploads,
        bytes: storage.upload_bytes_in_flight(),
    };
    let mut tx = state.db.begin().await?;
    quota::admit(&mut tx, &t.video, bytes, limits, now()).await?;
    consume(&mut tx, t).await?;
    still_waiting(&mut *tx, &t.video).await?;
    Ok(tx)
}

pub(super) fn idle(state: &AppState) -> std::time::Duration {
    std::time::Duration::from_secs(state.settings.storage.upload_idle_secs)
}

pub(super) fn too_large(max: u64) -> ApiError {
    ApiError::PayloadTooLargeFor { max }
}

pub(super) fn header_u64(headers: &HeaderMap, name: &str) -> Result<Option<u64>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(ApiError::BadRequest {
                    code: "invalid_header",
                    message: format!("{name} is not a number"),
                })
        })
        .transpose()
}

/// `PUT /uploads/{ticket}`: the whole file in one request.
pub async fn put(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let t = ticket::verify(&state.upload_key[..], &token, now()).map_err(refused)?;
    let declared = content_type_of(
        &t,
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    )?;
    let length = header_u64(&headers, "content-length")?;
    if length.is_some_and(|n| n > t.max_bytes) {
        return Err(too_large(t.max_bytes));
    }
    let id = format!("put-{}", URL_SAFE_NO_PAD.encode(random_bytes::<12>()));
    // The most this request may write: hyper ends the body at its Content-Length.
    let bytes = length.unwrap_or(t.max_bytes);
    let mut tx = start(&state, &t, bytes).await?;
    let root = state.settings.storage.upload_dir();
    let open = OpenPut::new(
        state.db.clone(),
        id.clone(),
        store::partial_dir(&root).join(&id),
    );
    quota::open_put(&mut tx, &id, &t.video, bytes, now()).await?;
    tx.commit().await?;
    let received = receive(&state, &t, declared, &open.path, body).await;
    open.close().await;
    let bytes = received?;
    state.outbox.wake();
    state.transcode.wake();
    tracing::info!(video = %t.video, bytes, "upload complete");
    Ok((
        StatusCode::CREATED,
        Json(json!({"video_id": t.video, "bytes": bytes, "state": "processing"})),
    ))
}

/// Streams a PUT's body to `partial` and makes it the video's source; how many bytes it had.
async fn receive(
    state: &AppState,
    t: &Ticket,
    declared: &str,
    partial: &std::path::Path,
    body: Body,
) -> Result<u64, ApiError> {
    let mut file = tokio::fs::File::create(partial)
        .await
        .map_err(anyhow::Error::from)?;
    let written = store::append(&mut file, body, 0, t.max_bytes, idle(state))
        .await
        .map_err(anyhow::Error::from)?;
    drop(file);
    if let Written::Done(n) | Written::Dropped(n) = written {
        state.metrics.upload_bytes("put", n);
    }
    let bytes = match written {
        Written::Done(n) => n,
        Written::TooLarge => return Err(too_large(t.max_bytes)),
        Written::Dropped(_) => {
            return Err(ApiError::BadRequest {
                code: "upload_interrupted",
                message: "the body ended early; use tus to resume uploads".into(),
            })
        }
    };
    match store::finish(&state.db, state.store.as_ref(), &t.video, partial, declared)
        .await
        .map_err(store::finish_error)?
    {
        Finished::Done => Ok(bytes),
        Finished::NotWaiting => Err(already_uploaded()),
        Finished::NotMedia => Err(store::not_media()),
    }
}
