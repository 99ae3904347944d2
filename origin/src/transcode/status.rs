//! Where a video's transcoding is, as its owner sees it.

use shared_wasm::VideoId;
use sqlx::AnyPool;

/// The job of one video: its stage and the reason it failed, if it did.
#[derive(Debug, sqlx::FromRow)]
pub struct JobStatus {
    /// `probe`, `encode`, `finalize`, `done` or `failed`.
    pub stage: String,
    /// A [`Reason`](super::reason::Reason) code.
    pub last_error: Option<String>,
}

/// One rendition's encode.
#[derive(Debug, sqlx::FromRow)]
pub struct TaskStatus {
    /// Its name (`720p`, …).
    pub rendition: String,
    /// `pending`, `running`, `done` or `failed`.
    pub state: String,
    /// Percent.
    pub progress: i64,
    /// Attempts so far.
    pub attempts: i64,
    /// A [`Reason`](super::reason::Reason) code.
    pub last_error: Option<String>,
}

/// A video's job (`None` before its upload completed) and its renditions, smallest first.
pub async fn of(
    db: &AnyPool,
    video: &VideoId,
) -> sqlx::Result<(Option<JobStatus>, Vec<TaskStatus>)> {
    let job = sqlx::query_as("SELECT stage, last_error FROM transcode_jobs WHERE video_id = $1")
        .bind(video.as_str())
        .fetch_optional(db)
        .await?;
    let tasks = sqlx::query_as(
        "SELECT rendition, state, progress, attempts, last_error FROM transcode_tasks
         WHERE video_id = $1 ORDER BY height",
    )
    .bind(video.as_str())
    .fetch_all(db)
    .await?;
    Ok((job, tasks))
}

/// Overall progress in percent: encoding is nearly all the work, so the renditions' mean,
/// with finalizing shown as 99 and only a finished job as 100.
pub fn progress(job: Option<&JobStatus>, tasks: &[TaskStatus]) -> i64 {
    match job.map(|j| j.stage.as_str()) {
        Some("done") => 100,
        _ if tasks.is_empty() => 0,
        _ => (tasks.iter().map(|t| t.progress).sum::<i64>() / tasks.len() as i64).min(99),
    }
}

/// The key of the source kept for video `id`'s transcoding, if any.
pub async fn source_of(
    db: impl sqlx::AnyExecutor<'_>,
    video: &VideoId,
) -> sqlx::Result<Option<String>> {
    let row: Option<Option<String>> =
        sqlx::query_scalar("SELECT source FROM transcode_jobs WHERE video_id = $1")
            .bind(video.as_str())
            .fetch_optional(db)
            .await?;
    Ok(row.flatten())
}
