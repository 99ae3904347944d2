//! tus 1.0 resumable uploads: `POST /uploads/{ticket}/tus` creates, `HEAD`/`PATCH`/`DELETE
//! /uploads/tus/{id}` report, append and terminate, `OPTIONS /uploads/tus` describes
//! (extensions: creation, expiration, termination).

use std::collections::HashSet;
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::json;
use shared_wasm::VideoId;

use super::uploads::{content_type_of, header_u64, idle, public_url, refused, start, too_large};
use crate::clock::now;
use crate::error::ApiError;
use crate::keys::random_bytes;
use crate::state::AppState;
use crate::uploads::quota;
use crate::uploads::store::{self, Finished, Written};
use crate::uploads::ticket;

const TUS_VERSION: &str = "1.0.0";

/// Uploads a PATCH is being written to: a second PATCH to the same upload waits its turn (423).
static BUSY: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Holds an upload in [`BUSY`] until dropped, even when the handler is dropped mid-way (a
/// client that goes away cancels it).
struct Busy(String);

impl Busy {
    fn take(id: &str) -> Option<Self> {
        let mut busy = BUSY.lock().expect("not poisoned");
        busy.get_or_insert_with(HashSet::new)
            .insert(id.to_owned())
            .then(|| Self(id.to_owned()))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(set) = BUSY.lock().expect("not poisoned").as_mut() {
            set.remove(&self.0);
        }
    }
}

fn tus_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn http_date(unix: u64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix))
}

/// The 412 for a request without `Tus-Resumable: 1.0.0`, if it is one.
fn without_tus(headers: &HeaderMap) -> Option<Response> {
    if headers.get("tus-resumable").and_then(|v| v.to_str().ok()) == Some(TUS_VERSION) {
        return None;
    }
    let mut r = (
        StatusCode::PRECONDITION_FAILED,
        Json(json!({"error": "tus_version", "message": "Tus-Resumable: 1.0.0 is required"})),
    )
        .into_response();
    r.headers_mut()
        .insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    Some(tus_headers(r))
}

/// `OPTIONS /uploads/tus`: what this server supports.
pub async fn options(State(state): State<AppState>) -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    h.insert(
        "tus-extension",
        HeaderValue::from_static("creation,expiration,termination"),
    );
    h.insert(
        "tus-max-size",
        HeaderValue::from(state.settings.storage.max_upload_bytes),
    );
    tus_headers(r)
}

/// The file type from `Upload-Metadata` (`key base64value,…`).
fn metadata_type(headers: &HeaderMap) -> Option<String> {
    let meta = headers.get("upload-metadata")?.to_str().ok()?;
    meta.split(',').find_map(|pair| {
        let mut it = pair.trim().splitn(2, ' ');
        let (k, v) = (it.next()?, it.next()?);
        (k == "filetype")
            .then(|| STANDARD.decode(v).ok())
            .flatten()
            .and_then(|b| String::from_utf8(b).ok())
    })
}

/// `POST /uploads/{ticket}/tus`: creates a resumable upload.
pub async fn create(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(r) = without_tus(&headers) {
        return Ok(r);
    }
    let t = ticket::verify(&state.upload_key[..], &token, now()).map_err(refused)?;
    let length = header_u64(&headers, "upload-length")?.ok_or(ApiError::BadRequest {
        code: "upload_length_required",
        message: "Upload-Length is required (deferred length is not supported)".into(),
    })?;
    if length > t.max_bytes {
        return Err(too_large(t.max_bytes));
    }
    let content_type = content_type_of(&t, metadata_type(&headers).as_deref())?;
    let mut tx = start(&state, &t, length).await?;
    let id = URL_SAFE_NO_PAD.encode(random_bytes::<16>());
    let root = state.settings.storage.upload_dir();
    tokio::fs::File::create(store::partial_dir(&root).join(&id))
        .await
        .map_err(anyhow::Error::from)?;
    store::open_resumable(&mut tx, &id, &t.video, length, content_type, t.expires_at).await?;
    tx.commit().await?;
    let mut r = StatusCode::CREATED.into_response();
    let h = r.headers_mut();
    let location = format!("{}/uploads/tus/{id}", public_url(&state));
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(&location).map_err(anyhow::Error::from)?,
    );
    h.insert(
        "upload-expires",
        HeaderValue::from_str(&http_date(t.expires_at)).map_err(anyhow::Error::from)?,
    );
    Ok(tus_headers(r))
}

struct Upload {
    video: VideoId,
    content_type: String,
    length: u64,
    received: u64,
    expires_at: u64,
}

async fn load(state: &AppState, id: &str) -> Result<Upload, ApiError> {
    if id.len() > 64 {
        return Err(ApiError::NotFound("upload"));
    }
    let row = store::resumable(&state.db, id)
        .await?
        .ok_or(ApiError::NotFound("upload"))?;
    // The file is the record of what arrived: bytes are appended in order, so its length is
    // the offset even when a handler was cut off before it could write the offset down.
    let root = state.settings.storage.upload_dir();
    let on_disk = tokio::fs::metadata(store::partial_dir(&root).join(id))
        .await
        .map_err(|e| anyhow::anyhow!("partial upload {id}: {e}"))?
        .len();
    let u = Upload {
        video: VideoId::parse(&row.video_id)
            .map_err(|e| anyhow::anyhow!("stored video id: {e}"))?,
        content_type: row.content_type,
        length: row.length as u64,
        received: on_disk.min(row.length as u64),
        expires_at: row.expires_at as u64,
    };
    if now() >= u.expires_at {
        return Err(ApiError::gone("upload_expired", "the upload has expired"));
    }
    Ok(u)
}

fn offset_response(status: StatusCode, u: &Upload, offset: u64) -> Result<Response, ApiError> {
    let mut r = status.into_response();
    let h = r.headers_mut();
    h.insert("upload-offset", HeaderValue::from(offset));
    h.insert("upload-length", HeaderValue::from(u.length));
    h.insert(
        "upload-expires",
        HeaderValue::from_str(&http_date(u.expires_at)).map_err(anyhow::Error::from)?,
    );
    Ok(tus_headers(r))
}

/// `HEAD /uploads/tus/{id}`: how much is on disk.
pub async fn head(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(r) = without_tus(&headers) {
        return Ok(r);
    }
    let u = load(&state, &id).await?;
    offset_response(StatusCode::OK, &u, u.received)
}

/// `PATCH /uploads/tus/{id}`: appends at `Upload-Offset`. Whatever reached the disk before a
/// dropped connection counts, so the client resumes from the offset `HEAD` reports.
pub async fn patch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if let Some(r) = without_tus(&headers) {
        return Ok(r);
    }
    if headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        != Some("application/offset+octet-stream")
    {
        return Err(ApiError::unsupported_media_type(
            "unsupported_type",
            "PATCH bodies are application/offset+octet-stream",
        ));
    }
    let offset = header_u64(&headers, "upload-offset")?.ok_or(ApiError::BadRequest {
        code: "upload_offset_required",
        message: "Upload-Offset is required".into(),
    })?;
    // The offset is read and checked under the lock the append holds, so two PATCHes at the
    // same offset cannot both pass the check.
    let Some(_busy) = Busy::take(&id) else {
        return Err(ApiError::Locked);
    };
    let u = load(&state, &id).await?;
    if offset != u.received {
        return Err(ApiError::conflict(
            "offset_mismatch",
            "Upload-Offset is not the upload's current offset (ask with HEAD)",
        ));
    }
    if u.received < u.length {
        let storage = &state.settings.storage;
        quota::ensure_room(
            &storage.upload_dir(),
            u.length - u.received,
            storage.min_free_bytes,
        )
        .await?;
    }
    patch_locked(&state, &id, &u, body).await
}

async fn patch_locked(
    state: &AppState,
    id: &str,
    u: &Upload,
    body: Body,
) -> Result<Response, ApiError> {
    let root = state.settings.storage.upload_dir();
    let path = store::partial_dir(&root).join(id);
    let mut file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .await
        .map_err(anyhow::Error::from)?;
    let written = store::append(&mut file, body, u.received, u.length, idle(state))
        .await
        .map_err(anyhow::Error::from)?;
    drop(file);
    if let Written::Done(n) | Written::Dropped(n) = written {
        state.metrics.upload_bytes("tus", n);
    }
    let added = match written {
        Written::Done(n) | Written::Dropped(n) => n,
        Written::TooLarge => {
            // Nothing past the declared length was written; what came before it stays.
            return Err(too_large(u.length));
        }
    };
    let offset = u.received + added;
    store::set_received(&state.db, id, offset).await?;
    // As soon as its first bytes are in, a file that is not the media it claims is refused,
    // before the rest of a large upload is sent for nothing.
    let head = (crate::container::HEAD as u64).min(u.length);
    if u.received < head
        && offset >= head
        && offset < u.length
        && !store::is_declared_media(&path, &u.content_type)
            .await
            .map_err(anyhow::Error::from)?
    {
        terminate(state, id).await?;
        return Err(store::not_media());
    }
    if offset == u.length {
        // Whole. If storing it fails the upload stays, and a PATCH of no bytes at this offset
        // finishes it.
        let finished = store::finish(
            &state.db,
            state.store.as_ref(),
            &u.video,
            &path,
            &u.content_type,
        )
        .await
        .map_err(store::finish_error)?;
        terminate(state, id).await?;
        match finished {
            Finished::Done => {
                state.outbox.wake();
                state.transcode.wake();
                tracing::info!(video = %u.video, bytes = offset, "resumable upload complete");
            }
            Finished::NotWaiting => {}
            Finished::NotMedia => return Err(store::not_media()),
        }
    }
    offset_response(StatusCode::NO_CONTENT, u, offset)
}

/// Removes an upload: its row and its partial file (if still there).
async fn terminate(state: &AppState, id: &str) -> Result<(), ApiError> {
    let root = state.settings.storage.upload_dir();
    Ok(store::remove_resumable(&state.db, &root, id).await?)
}

/// `DELETE /uploads/tus/{id}`: termination; the partial file goes.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(r) = without_tus(&headers) {
        return Ok(r);
    }
    load(&state, &id).await?;
    terminate(&state, &id).await?;
    Ok(tus_headers(StatusCode::NO_CONTENT.into_response()))
}
