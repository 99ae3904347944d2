//! Bounds on what uploads may take: per creator, the uploads open at once and the bytes they
//! may write in all; per request, room on the disk they are written to. An upload is open from
//! its start until it is finished, terminated or expires (a resumable one: its `uploads` row)
//! or until its request ends (a plain `PUT`: its `put_uploads` row), and counts at the most it
//! may write. Both are checked before a byte of the body is read.

use std::path::{Path, PathBuf};

use shared_wasm::VideoId;
use sqlx::{AnyConnection, AnyPool};

use crate::error::ApiError;

/// One creator's bounds (`storage.max_open_uploads`, `storage.max_upload_bytes_in_flight`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Uploads open at once.
    pub open: u64,
    /// Bytes those may write in all.
    pub bytes: u64,
}

#[derive(sqlx::FromRow)]
struct Open {
    uploads: i64,
    bytes: i64,
}

/// Refuses (429) an upload of up to `bytes` for `video` that would take the video's owner past
/// `limits`. Runs in the caller's transaction, which records the upload before it commits: the
/// owner's row is written first, so concurrent starts by one creator count one after the other.
pub async fn admit(
    conn: &mut AnyConnection,
    video: &VideoId,
    bytes: u64,
    limits: Limits,
    now: u64,
) -> Result<(), ApiError> {
    // A write first: it locks the owner's row on PostgreSQL and takes SQLite's write lock (a
    // read first could not upgrade under contention), and names the owner.
    let owner: Option<String> = sqlx::query_scalar(
        "UPDATE users SET role = role WHERE id = (SELECT owner_id FROM videos WHERE id = $1)
         RETURNING id",
    )
    .bind(video.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let owner = owner.ok_or(ApiError::NotFound("video"))?;
    // An expired resumable upload takes no more bytes (and its owner cannot terminate it); the
    // sweep removes its file.
    let open: Open = sqlx::query_as(
        "SELECT COUNT(*) AS uploads, CAST(COALESCE(SUM(bytes), 0) AS BIGINT) AS bytes FROM (
             SELECT u.length AS bytes FROM uploads u JOIN videos v ON v.id = u.video_id
             WHERE v.owner_id = $1 AND u.expires_at > $2
             UNION ALL
             SELECT p.bytes FROM put_uploads p JOIN videos v ON v.id = p.video_id
             WHERE v.owner_id = $1
         ) open",
    )
    .bind(&owner)
    .bind(now as i64)
    .fetch_one(&mut *conn)
    .await?;
    if open.uploads as u64 >= limits.open {
        return Err(ApiError::TooManyUploads {
            code: "too_many_uploads",
            message: format!(
                "at most {} uploads may be open at once; finish or terminate one first",
                limits.open
            ),
        });
    }
    if (open.bytes as u64).saturating_add(bytes) > limits.bytes {
        return Err(ApiError::TooManyUploads {
            code: "upload_quota_exceeded",
            message: format!(
                "open uploads may hold at most {} bytes in all; finish or terminate one first",
                limits.bytes
            ),
        });
    }
    Ok(())
}

/// Bytes the filesystem holding `dir` has free for an unprivileged writer.
pub fn available(dir: &Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(dir)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Refuses (507) a request that may write `bytes` into `dir` when that could leave less than
/// `reserve` free there.
pub async fn ensure_room(dir: &Path, bytes: u64, reserve: u64) -> Result<(), ApiError> {
    let at = dir.to_owned();
    let free = tokio::task::spawn_blocking(move || available(&at))
        .await
        .map_err(anyhow::Error::from)?
        .map_err(|e| anyhow::anyhow!("free space of {}: {e}", dir.display()))?;
    if free < bytes.saturating_add(reserve) {
        tracing::warn!(free, bytes, reserve, dir = %dir.display(), "upload refused: disk full");
        return Err(ApiError::InsufficientStorage);
    }
    Ok(())
}

/// Records a plain upload of up to `bytes` for `video` as open, in the caller's transaction
/// (after [`admit`]).
pub async fn open_put(
    conn: &mut AnyConnection,
    id: &str,
    video: &VideoId,
    bytes: u64,
    now: u64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO put_uploads (id, video_id, bytes, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(video.as_str())
    .bind(bytes as i64)
    .bind(now as i64)
    .execute(conn)
    .await?;
    Ok(())
}

/// An open plain upload: its `put_uploads` row and partial file, removed by [`Self::close`] or,
/// when the handler is dropped mid-way (a client that goes away cancels it), right after.
pub struct OpenPut {
    db: AnyPool,
    id: String,
    /// Its partial file.
    pub path: PathBuf,
    closed: bool,
}

impl OpenPut {
    /// Holds the upload recorded as `id` (its file at `path`).
    pub fn new(db: AnyPool, id: String, path: PathBuf) -> Self {
        Self {
            db,
            id,
            path,
            closed: false,
        }
    }

    /// Frees the upload's place in its creator's bounds (and removes what is left of its file),
    /// before the answer goes out, so the next upload counts without it.
    pub async fn close(mut self) {
        self.closed = true;
        remove_put(&self.db, &self.id, &self.path).await;
    }
}

impl Drop for OpenPut {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let (db, id, path) = (
            self.db.clone(),
            std::mem::take(&mut self.id),
            std::mem::take(&mut self.path),
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { remove_put(&db, &id, &path).await });
        }
    }
}

async fn remove_put(db: &AnyPool, id: &str, path: &Path) {
    let _ = tokio::fs::remove_file(path).await;
    if let Err(e) = sqlx::query("DELETE FROM put_uploads WHERE id = $1")
        .bind(id)
        .execute(db)
        .await
    {
        // The sweep removes it once its file is stale.
        tracing::warn!(%id, error = %e, "open upload not closed");
    }
}
