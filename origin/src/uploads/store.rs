//! Upload files and rows: streaming a body to disk with a size cap, finishing an upload (file
//! put into the store, then video to `processing`, its record and its transcoding job queued,
//! in one transaction), and sweeping what was abandoned.

use std::path::{Path, PathBuf};

use axum::body::Body;
use futures_util::StreamExt;
use shared_wasm::record::VideoState;
use shared_wasm::VideoId;
use sqlx::AnyPool;
use tokio::io::AsyncWriteExt;

use crate::clock::now;
use crate::container::Container;
use crate::db::enum_name;
use crate::error::ApiError;
use crate::storage::Store;
use crate::videos;
use crate::webhooks::{self, EventType};

/// The origin's upload-ticket key, made on first start and kept in the database.
pub async fn ticket_key(db: &AnyPool) -> anyhow::Result<[u8; 32]> {
    crate::keys::stored_secret(db, "upload_ticket_key").await
}

/// Where partial uploads are written.
pub fn partial_dir(root: &Path) -> PathBuf {
    root.join("partial")
}

/// How a body stream ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    /// The body ended; this many bytes were appended.
    Done(u64),
    /// It would have passed the cap: nothing past the cap was written.
    TooLarge,
    /// The connection failed part way; this many bytes were appended (and flushed).
    Dropped(u64),
}

/// Appends `body` to `file` (opened for appending), never writing past `cap` bytes in all
/// (`already` are there). Chunks go straight to disk: memory holds one chunk at a time. A body
/// silent for `idle` counts as dropped.
pub async fn append(
    file: &mut tokio::fs::File,
    body: Body,
    already: u64,
    cap: u64,
    idle: std::time::Duration,
) -> std::io::Result<Written> {
    let mut stream = body.into_data_stream();
    let mut written = 0u64;
    let end = loop {
        match tokio::time::timeout(idle, stream.next()).await {
            Err(_) | Ok(Some(Err(_))) => break Written::Dropped(written),
            Ok(None) => break Written::Done(written),
            Ok(Some(Ok(chunk))) => {
                if already + written + chunk.len() as u64 > cap {
                    break Written::TooLarge;
                }
                file.write_all(&chunk).await?;
                written += chunk.len() as u64;
            }
        }
    };
    file.flush().await?;
    file.sync_data().await?;
    Ok(end)
}

/// Whether the file's first bytes are a container uploads may be in, the one its declared type
/// names ([`crate::container`] says why nothing else may reach ffmpeg).
pub async fn is_declared_media(path: &Path, declared: &str) -> std::io::Result<bool> {
    let found = Container::of_file(path).await?;
    Ok(found.is_some() && found == Container::of_type(declared))
}

/// The answer for an upload whose bytes are not the video it claims to be.
pub fn not_media() -> ApiError {
    ApiError::unsupported_media_type(
        "unsupported_media",
        "the file is not an MP4, QuickTime, Matroska, WebM or MPEG-TS video of the \
                  type it was sent as",
    )
}

/// What became of a finished upload.
#[derive(Debug, PartialEq, Eq)]
pub enum Finished {
    /// It is the video's source now, its transcoding queued.
    Done,
    /// The video was not waiting for an upload any more (another one finished first, or it
    /// was deleted).
    NotWaiting,
    /// Its bytes are not the media its declared type says ([`is_declared_media`]).
    NotMedia,
}

/// Makes a finished upload of declared type `declared` the video's source: its bytes are
/// checked, the file goes into the store under a key of its own (whole or not at all), then, in
/// one transaction, the video moves from `uploading` to `processing`, its record is queued for
/// the edge and its transcoding job is queued with that key. Unless it is `Done`, the file (and
/// the object) are removed.
pub async fn finish(
    db: &AnyPool,
    store: &dyn Store,
    video: &VideoId,
    partial: &Path,
    declared: &str,
) -> anyhow::Result<Finished> {
    if !is_declared_media(partial, declared).await? {
        let _ = tokio::fs::remove_file(partial).await;
        return Ok(Finished::NotMedia);
    }
    let waiting: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM videos WHERE id = $1 AND state = $2")
            .bind(video.as_str())
            .bind(enum_name(VideoState::Uploading))
            .fetch_optional(db)
            .await?;
    if waiting.is_none() {
        let _ = tokio::fs::remove_file(partial).await;
        return Ok(Finished::NotWaiting);
    }
    // Stored before the transaction, which must not wait on a multi-gigabyte copy. A crash in
    // between leaves an object no job names, never a job without its object.
    let key = crate::storage::source_key(video);
    store
        .put_file(&key, partial)
        .await
        .map_err(|e| anyhow::Error::new(Unstored(e)))?;
    let committed = commit_finish(db, video, &key).await;
    if !matches!(committed, Ok(true)) {
        if let Err(e) = store.delete(&key).await {
            tracing::warn!(%key, error = %e, "source of a refused upload not removed");
        }
    }
    Ok(match committed? {
        true => Finished::Done,
        false => Finished::NotWaiting,
    })
}

/// The store refused or could not be reached: the upload is whole on this origin's disk and
/// finishing it can be tried again.
#[derive(Debug)]
struct Unstored(anyhow::Error);

impl std::fmt::Display for Unstored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "storing the upload: {:#}", self.0)
    }
}

impl std::error::Error for Unstored {}

/// The answer for a [`finish`] that failed: 503 `storage_unavailable` when the store was the
/// cause (logged, never shown), otherwise a 500.
pub fn finish_error(e: anyhow::Error) -> ApiError {
    if e.downcast_ref::<Unstored>().is_some() {
        tracing::error!(error = %e, "upload not stored");
        return ApiError::unavailable(
            "storage_unavailable",
            "the upload could not be stored; try again",
        );
    }
    ApiError::Internal(e)
}

async fn commit_finish(db: &AnyPool, video: &VideoId, key: &str) -> anyhow::Result<bool> {
    let mut tx = crate::db::begin_write(db).await?;
    let done = sqlx::query(
        "UPDATE videos SET state = $1, updated_at = $2, version = version + 1
         WHERE id = $3 AND state = $4",
    )
    .bind(enum_name(VideoState::Processing))
    .bind(now() as i64)
    .bind(video.as_str())
    .bind(enum_name(VideoState::Uploading))
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false); // another upload of the same video finished first
    }
    videos::push_record(&mut tx, video).await?;
    // The transcoding job, in the same transaction: a complete upload is never without one.
    crate::transcode::queue(&mut tx, video, key).await?;
    webhooks::emit(&mut tx, EventType::UploadCompleted, video, None).await?;
    tx.commit().await?;
    Ok(true)
}

/// Removes resumable uploads past their expiry (rows and files) and partial files of plain
/// uploads a crash left behind (untouched for longer than `stale_secs`), with the rows that
/// kept them open. Returns how many files went.
pub async fn sweep(db: &AnyPool, root: &Path, now: u64, stale_secs: u64) -> anyhow::Result<usize> {
    let expired: Vec<String> =
        sqlx::query_scalar("DELETE FROM uploads WHERE expires_at <= $1 RETURNING id")
            .bind(now as i64)
            .fetch_all(db)
            .await?;
    let mut removed = 0;
    for id in &expired {
        if tokio::fs::remove_file(partial_dir(root).join(id))
            .await
            .is_ok()
        {
            removed += 1;
        }
    }
    // A plain upload's row outlives its request only when the process died mid-way: its file
    // is then stale or gone (a live request writes at least every `upload_idle_secs`).
    let puts: Vec<String> = sqlx::query_scalar("SELECT id FROM put_uploads WHERE created_at <= $1")
        .bind(now.saturating_sub(stale_secs) as i64)
        .fetch_all(db)
        .await?;
    for id in &puts {
        let stale = match tokio::fs::metadata(partial_dir(root).join(id)).await {
            Ok(m) => age_secs(&m)? >= stale_secs,
            Err(_) => true,
        };
        if stale {
            sqlx::query("DELETE FROM put_uploads WHERE id = $1")
                .bind(id)
                .execute(db)
                .await?;
        }
    }
    let live: Vec<String> = sqlx::query_scalar("SELECT id FROM uploads")
        .fetch_all(db)
        .await?;
    let Ok(mut entries) = tokio::fs::read_dir(partial_dir(root)).await else {
        return Ok(removed);
    };
    while let Some(e) = entries.next_entry().await? {
        let name = e.file_name().to_string_lossy().into_owned();
        if live.contains(&name) {
            continue;
        }
        if age_secs(&e.metadata().await?)? >= stale_secs
            && tokio::fs::remove_file(e.path()).await.is_ok()
        {
            removed += 1;
        }
    }
    Ok(removed)
}

fn age_secs(m: &std::fs::Metadata) -> std::io::Result<u64> {
    Ok(std::time::SystemTime::now()
        .duration_since(m.modified()?)
        .map_or(0, |d| d.as_secs()))
}

/// A resumable (tus) upload's row.
#[derive(Debug, sqlx::FromRow)]
pub struct Resumable {
    /// The video it is for.
    pub video_id: String,
    /// The content type the ticket allowed and the client declared.
    pub content_type: String,
    /// Its declared length.
    pub length: i64,
    /// Unix seconds after which it is refused and swept.
    pub expires_at: i64,
}

/// Opens resumable upload `id` (its empty partial file already made), in the transaction that
/// used its ticket.
pub async fn open_resumable(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    video: &VideoId,
    length: u64,
    content_type: &str,
    expires_at: u64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO uploads (id, video_id, length, content_type, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(video.as_str())
    .bind(length as i64)
    .bind(content_type)
    .bind(expires_at as i64)
    .bind(now() as i64)
    .execute(conn)
    .await
    .map(drop)
}

/// Resumable upload `id`, if it is open.
pub async fn resumable(db: &AnyPool, id: &str) -> sqlx::Result<Option<Resumable>> {
    sqlx::query_as("SELECT video_id, content_type, length, expires_at FROM uploads WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Writes down how much of resumable upload `id` has arrived.
pub async fn set_received(db: &AnyPool, id: &str, offset: u64) -> sqlx::Result<()> {
    sqlx::query("UPDATE uploads SET received = $1 WHERE id = $2")
        .bind(offset as i64)
        .bind(id)
        .execute(db)
        .await
        .map(drop)
}

/// Removes resumable upload `id`: its row, then its partial file (if still there).
pub async fn remove_resumable(db: &AnyPool, root: &Path, id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM uploads WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    let _ = tokio::fs::remove_file(partial_dir(root).join(id)).await;
    Ok(())
}
