//! The durable transcoding pipeline. A complete upload queues a job (same transaction); workers
//! take its stages and its per-rendition tasks from the database under leases they renew while
//! they work, so a crashed worker's work is taken again when its lease runs out, and `attempts`
//! fences a worker that lost its lease. Work happens in a scratch folder on the worker's
//! machine; a finished rendition goes into the store whole (replacing what an earlier attempt
//! left, never beside it), and the master playlist goes last, so no half-written rendition or
//! video is ever visible. On PostgreSQL, claims skip rows other workers have locked
//! (`FOR UPDATE SKIP LOCKED`), so workers on many machines do not queue behind each other.

pub mod ffmpeg;
pub mod reason;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use shared_wasm::record::VideoState;
use shared_wasm::VideoId;
use sqlx::AnyPool;

use crate::clock::now;
use crate::container::Container;
use crate::db::{enum_name, Backend};
use crate::outbox::Waker;
use crate::settings::TranscodeSettings;
use crate::storage::{media_prefix, Store};
use crate::{outbox, videos};
use ffmpeg::{Measured, Probe, Rendition, Source};
use reason::{Because, Reason};

/// Attempts of a rendition or a stage before it is given up on (`dead`, the video `failed`).
pub const MAX_ATTEMPTS: i64 = 3;

/// Where workers find things.
#[derive(Clone)]
pub struct Worker {
    /// The database.
    pub db: AnyPool,
    /// Which one it is (claims differ).
    pub backend: Backend,
    /// Where sources are read from and media written to.
    pub store: Arc<dyn Store>,
    /// This machine's scratch folder (`{upload_dir}/work`): a folder per video being worked on.
    pub scratch: PathBuf,
    /// Leases, retries, the ffmpeg and ffprobe to run.
    pub settings: TranscodeSettings,
    /// Wakes the outbox when a video's record changes.
    pub outbox: Waker,
    /// Woken when an upload completes, so its job starts at once.
    pub wake: tokio::sync::watch::Receiver<u64>,
    /// Where encode times are recorded.
    pub metrics: Arc<crate::metrics::Metrics>,
}

fn work_dir(scratch: &Path, video: &VideoId) -> PathBuf {
    scratch.join(video.as_str())
}

impl Worker {
    fn lease_until(&self) -> i64 {
        (now() + self.lease().as_secs()) as i64
    }

    /// How long a lease lasts (at least 3 s); renewed at a third of it.
    fn lease(&self) -> Duration {
        Duration::from_secs(self.settings.lease_secs.max(3))
    }

    /// The wait before the next attempt: `retry_secs`, doubled for each attempt made.
    fn backoff(&self, attempts: i64) -> i64 {
        (self.settings.retry_secs << (attempts - 1).clamp(0, 6)) as i64
    }

    /// What a claim's inner select adds so concurrent claims pass over each other's rows.
    fn skip_locked(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "", // one writer at a time anyway
        }
    }

    /// The video's source as a local file (fetched into its work folder if the store is
    /// remote), with the container its bytes are: checked again here, whatever the upload
    /// checked, since it decides how ffmpeg may open the file.
    async fn source(&self, video: &VideoId) -> anyhow::Result<Source> {
        let (key,): (Option<String>,) =
            sqlx::query_as("SELECT source FROM transcode_jobs WHERE video_id = $1")
                .bind(video.as_str())
                .fetch_one(&self.db)
                .await?;
        let key = key.with_context(|| format!("the job of {video} names no source"))?;
        let path = self
            .store
            .fetch(&key, &work_dir(&self.scratch, video))
            .await
            .because(Reason::StorageUnavailable)?;
        let container = Container::of_file(&path)
            .await?
            .context("the source is not a container uploads may be in")
            .because(Reason::UnsupportedMedia)?;
        Ok(Source { path, container })
    }

    /// Does one piece of due work; `false` if there was none.
    pub async fn run_once(&self) -> anyhow::Result<bool> {
        if let Some((video, stage, attempts)) = self.claim_job().await? {
            let video = VideoId::parse(&video).map_err(|e| anyhow::anyhow!("stored id: {e}"))?;
            let result = match stage.as_str() {
                "probe" => self.probe(&video, attempts).await,
                _ => self.finalize(&video, attempts).await,
            };
            if let Err(e) = result {
                // A file that is not a video it can read stays so; anything else (the store out
                // of reach, a crashed ffmpeg) may mend, so the stage is tried again later.
                let reason = reason::of(&e);
                let dead = reason.permanent() || attempts >= MAX_ATTEMPTS;
                tracing::warn!(video = %video, stage, attempts, dead, error = %format!("{e:#}"), "transcode stage failed");
                if dead {
                    self.fail(&video, reason).await?;
                } else {
                    self.retry_job(&video, attempts, reason).await?;
                }
            }
            return Ok(true);
        }
        if let Some(task) = self.claim_task().await? {
            self.encode(task).await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Puts a job's stage back in the queue, after a backoff, with the reason that stopped it.
    async fn retry_job(&self, video: &VideoId, attempts: i64, reason: Reason) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE transcode_jobs SET lease_until = 0, next_attempt_at = $1, last_error = $2
             WHERE video_id = $3 AND attempts = $4",
        )
        .bind(now() as i64 + self.backoff(attempts))
        .bind(reason.code())
        .bind(video.as_str())
        .bind(attempts)
        .execute(&self.db)
        .await
        .map(drop)
    }

    async fn claim_job(&self) -> sqlx::Result<Option<(String, String, i64)>> {
        let t = now() as i64;
        sqlx::query_as(&format!(
            "UPDATE transcode_jobs SET lease_until = $1, attempts = attempts + 1
             WHERE video_id = (SELECT video_id FROM transcode_jobs
                               WHERE stage IN ('probe', 'finalize') AND lease_until <= $2
                                 AND next_attempt_at <= $2
                               ORDER BY created_at LIMIT 1{})
               AND lease_until <= $2
             RETURNING video_id, stage, attempts",
            self.skip_locked()
        ))
        .bind(self.lease_until())
        .bind(t)
        .fetch_optional(&self.db)
        .await
    }

    async fn claim_task(&self) -> sqlx::Result<Option<(String, String, String, i64, i64)>> {
        let t = now() as i64;
        sqlx::query_as(&format!(
            "UPDATE transcode_tasks SET lease_until = $1, attempts = attempts + 1,
                 state = 'running', progress = 0
             WHERE id = (SELECT id FROM transcode_tasks
                         WHERE state IN ('queued', 'running') AND lease_until <= $2
                           AND next_attempt_at <= $2
                           -- none for a video already given up on
                           AND video_id IN (SELECT video_id FROM transcode_jobs
                                            WHERE stage = 'encode')
                         ORDER BY video_id, height LIMIT 1{})
               AND lease_until <= $2
             RETURNING id, video_id, rendition, height, attempts",
            self.skip_locked()
        ))
        .bind(self.lease_until())
        .bind(t)
        .fetch_optional(&self.db)
        .await
    }

    async fn probe_of(&self, video: &VideoId) -> anyhow::Result<Probe> {
        let row: (Option<i64>, Option<i64>, Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT width, height, duration_ms, has_audio FROM transcode_jobs WHERE video_id = $1",
        )
        .bind(video.as_str())
        .fetch_one(&self.db)
        .await?;
        match row {
            (Some(w), Some(h), Some(d), Some(a)) => Ok(Probe {
                width: w as u32,
                height: h as u32,
                duration_ms: d as u64,
                has_audio: a != 0,
            }),
            _ => anyhow::bail!("the job of {video} has no probe"),
        }
    }

    /// Reads the source and queues one task per rendition.
    async fn probe(&self, video: &VideoId, attempts: i64) -> anyhow::Result<()> {
        let source = self.source(video).await?;
        let p = ffmpeg::probe(&self.settings.ffprobe, &source).await?;
        let mut tx = self.db.begin().await?;
        let moved = sqlx::query(
            "UPDATE transcode_jobs SET stage = 'encode', lease_until = 0, width = $1, height = $2,
                 duration_ms = $3, has_audio = $4
             WHERE video_id = $5 AND stage = 'probe' AND attempts = $6",
        )
        .bind(i64::from(p.width))
        .bind(i64::from(p.height))
        .bind(p.duration_ms as i64)
        .bind(i64::from(p.has_audio))
        .bind(video.as_str())
        .bind(attempts)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            return Ok(()); // another worker has it now
        }
        for r in ffmpeg::ladder(&p) {
            sqlx::query(
                "INSERT INTO transcode_tasks (id, video_id, rendition, height, state)
                 VALUES ($1, $2, $3, $4, 'queued') ON CONFLICT (id) DO NOTHING",
            )
            .bind(format!("{video}:{}", r.name))
            .bind(video.as_str())
            .bind(&r.name)
            .bind(i64::from(r.height))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        tracing::info!(video = %video, width = p.width, height = p.height, "probed");
        Ok(())
    }

    /// Encodes one rendition into the video's work folder, renewing the lease as it goes.
    async fn encode(&self, task: (String, String, String, i64, i64)) -> anyhow::Result<()> {
        let (id, video, name, height, attempts) = task;
        let video = VideoId::parse(&video).map_err(|e| anyhow::anyhow!("stored id: {e}"))?;
        let r = Rendition {
            name,
            height: height as u32,
        };
        let started = std::time::Instant::now();
        let result = self.encode_inner(&id, &video, &r, attempts).await;
        let outcome = match &result {
            Ok(true) => "done",
            Ok(false) => "lost",
            Err(_) => "failed",
        };
        self.metrics.transcoded(&r.name, outcome, started.elapsed());
        match result {
            Ok(true) => {
                // The last rendition moves the job on to its finalize stage.
                sqlx::query(
                    // Its attempts start again: they count this stage's tries.
                    "UPDATE transcode_jobs SET stage = 'finalize', lease_until = 0, attempts = 0
                     WHERE video_id = $1 AND stage = 'encode'
                       AND NOT EXISTS (SELECT 1 FROM transcode_tasks
                                       WHERE video_id = $1 AND state <> 'done')",
                )
                .bind(video.as_str())
                .execute(&self.db)
                .await?;
            }
            Ok(false) => {} // fenced off: another worker owns the task
            Err(e) => {
                let dead = attempts >= MAX_ATTEMPTS;
                let reason = reason::of(&e);
                tracing::warn!(video = %video, rendition = %r.name, attempts, dead, error = %format!("{e:#}"), "rendition failed");
                sqlx::query(
                    "UPDATE transcode_tasks SET state = $1, lease_until = 0, next_attempt_at = $2,
                         last_error = $3
                     WHERE id = $4 AND attempts = $5",
                )
                .bind(if dead { "dead" } else { "queued" })
                .bind(now() as i64 + self.backoff(attempts))
                .bind(reason.code())
                .bind(&id)
                .bind(attempts)
                .execute(&self.db)
                .await?;
                if dead {
                    self.fail(&video, reason).await?;
                }
            }
        }
        Ok(())
    }

    /// `Ok(false)` when the lease was lost (the work is someone else's now).
    async fn encode_inner(
        &self,
        id: &str,
        video: &VideoId,
        r: &Rendition,
        attempts: i64,
    ) -> anyhow::Result<bool> {
        let tmp = work_dir(&self.scratch, video).join(format!(".{}-{attempts}", r.name));
        let _ = tokio::fs::remove_dir_all(&tmp).await;
        let result = self.encode_into(&tmp, id, video, r, attempts).await;
        // Whatever happened, the attempt's folder goes (the store took it if it succeeded).
        let _ = tokio::fs::remove_dir_all(&tmp).await;
        result
    }

    async fn encode_into(
        &self,
        tmp: &Path,
        id: &str,
        video: &VideoId,
        r: &Rendition,
        attempts: i64,
    ) -> anyhow::Result<bool> {
        let p = self.probe_of(video).await?;
        let source = self.source(video).await?;
        tokio::fs::create_dir_all(tmp).await?;
        let progress = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(0));
        let seen = progress.clone();
        let encoding = ffmpeg::encode(&self.settings.ffmpeg, &source, tmp, &p, r, move |pct| {
            seen.store(pct, std::sync::atomic::Ordering::Relaxed)
        });
        let encoding = async { encoding.await.because(Reason::EncodeFailed) };
        tokio::pin!(encoding);
        let mut beat = tokio::time::interval(self.lease() / 3);
        beat.tick().await;
        let outcome = loop {
            tokio::select! {
                done = &mut encoding => break done,
                _ = beat.tick() => {
                    let pct = progress.load(std::sync::atomic::Ordering::Relaxed);
                    if !self.renew(id, video, attempts, pct).await? {
                        // Lost the lease: stop (dropping the future kills ffmpeg).
                        return Ok(false);
                    }
                }
            }
        };
        outcome?;
        let measured = ffmpeg::measure(tmp).await?;
        // Still ours, and the video still wanted, just before it is published.
        if !self.renew(id, video, attempts, 100).await? {
            return Ok(false);
        }
        let prefix = format!("{}/{}", media_prefix(video), r.name);
        self.store
            .put_dir(&prefix, tmp, "index.m3u8")
            .await
            .context("storing the rendition")
            .because(Reason::StorageUnavailable)?;
        let done = sqlx::query(
            "UPDATE transcode_tasks SET state = 'done', progress = 100, lease_until = 0,
                 bandwidth = $1, average_bandwidth = $2
             WHERE id = $3 AND attempts = $4",
        )
        .bind(measured.peak as i64)
        .bind(measured.average as i64)
        .bind(id)
        .bind(attempts)
        .execute(&self.db)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Renews a task's lease and reports its progress; `false` if the task is no longer this
    /// attempt's or its video was given up on.
    async fn renew(
        &self,
        id: &str,
        video: &VideoId,
        attempts: i64,
        pct: u8,
    ) -> anyhow::Result<bool> {
        let held = sqlx::query(
            "UPDATE transcode_tasks SET lease_until = $1, progress = $2
             WHERE id = $3 AND attempts = $4
               AND EXISTS (SELECT 1 FROM transcode_jobs WHERE video_id = $5 AND stage = 'encode')",
        )
        .bind(self.lease_until())
        .bind(i64::from(pct))
        .bind(id)
        .bind(attempts)
        .bind(video.as_str())
        .execute(&self.db)
        .await?;
        Ok(held.rows_affected() == 1)
    }

    /// Poster, then the master playlist (last: its presence says the video is whole), then the
    /// video made `ready` (its record queued for the edge) in one transaction. Redone after a
    /// crash, it writes the same objects again.
    async fn finalize(&self, video: &VideoId, attempts: i64) -> anyhow::Result<()> {
        let p = self.probe_of(video).await?;
        let rows: Vec<(String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT rendition, height, bandwidth, average_bandwidth FROM transcode_tasks
             WHERE video_id = $1 ORDER BY height",
        )
        .bind(video.as_str())
        .fetch_all(&self.db)
        .await?;
        let renditions = rows
            .into_iter()
            .map(|(name, h, peak, average)| match (peak, average) {
                (Some(peak), Some(average)) => Ok((
                    Rendition {
                        name,
                        height: h as u32,
                    },
                    Measured {
                        peak: peak as u64,
                        average: average as u64,
                    },
                )),
                _ => Err(anyhow::anyhow!("rendition {name} has no measured bit rate")),
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let work = work_dir(&self.scratch, video);
        let source = self.source(video).await?;
        let poster = work.join(format!(".poster-{attempts}.jpg"));
        ffmpeg::poster(&self.settings.ffmpeg, &source, &poster, &p)
            .await
            .because(Reason::PosterFailed)?;
        let prefix = media_prefix(video);
        self.store
            .put_file(&format!("{prefix}/poster.jpg"), &poster)
            .await
            .because(Reason::StorageUnavailable)?;
        let master = work.join(format!(".master-{attempts}.m3u8"));
        tokio::fs::write(&master, ffmpeg::master(&p, &renditions)).await?;
        self.store
            .put_file(&format!("{prefix}/master.m3u8"), &master)
            .await
            .because(Reason::StorageUnavailable)?;
        let mut tx = crate::db::begin_write(&self.db).await?;
        let fenced = sqlx::query(
            "UPDATE transcode_jobs SET stage = 'done', lease_until = 0
             WHERE video_id = $1 AND stage = 'finalize' AND attempts = $2",
        )
        .bind(video.as_str())
        .bind(attempts)
        .execute(&mut *tx)
        .await?;
        if fenced.rows_affected() == 0 {
            return Ok(());
        }
        sqlx::query(
            "UPDATE videos SET state = $1, duration_ms = $2, updated_at = $3,
                 version = version + 1
             WHERE id = $4",
        )
        .bind(enum_name(VideoState::Ready))
        .bind(p.duration_ms as i64)
        .bind(now() as i64)
        .bind(video.as_str())
        .execute(&mut *tx)
        .await?;
        let rec = videos::record(&mut *tx, video)
            .await?
            .context("the video vanished inside its transaction")?;
        outbox::enqueue(&mut tx, &rec).await?;
        // It now appears in its channel's and category's feeds, and the home feed.
        let (channel, category): (Option<String>, Option<String>) =
            sqlx::query_as("SELECT channel_id, category FROM videos WHERE id = $1")
                .bind(video.as_str())
                .fetch_one(&mut *tx)
                .await?;
        let feeds = crate::feeds::of_video(channel.as_deref(), category.as_deref());
        crate::feeds::bump(&mut tx, &feeds).await?;
        tx.commit().await?;
        self.outbox.wake();
        // The scratch copy of the source, and leftovers of attempts cut short.
        let _ = tokio::fs::remove_dir_all(&work).await;
        tracing::info!(video = %video, "transcoded, ready");
        Ok(())
    }

    /// Gives up on a video: the job `failed` with the reason, the video `failed` (its record
    /// queued for the edge).
    async fn fail(&self, video: &VideoId, reason: Reason) -> anyhow::Result<()> {
        let mut tx = crate::db::begin_write(&self.db).await?;
        sqlx::query(
            "UPDATE transcode_jobs SET stage = 'failed', lease_until = 0, last_error = $1
             WHERE video_id = $2",
        )
        .bind(reason.code())
        .bind(video.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE videos SET state = $1, updated_at = $2, version = version + 1 WHERE id = $3",
        )
        .bind(enum_name(VideoState::Failed))
        .bind(now() as i64)
        .bind(video.as_str())
        .execute(&mut *tx)
        .await?;
        if let Some(rec) = videos::record(&mut *tx, video).await? {
            outbox::enqueue(&mut tx, &rec).await?;
        }
        tx.commit().await?;
        self.outbox.wake();
        let _ = tokio::fs::remove_dir_all(work_dir(&self.scratch, video)).await;
        if let Err(e) = self.store.delete_prefix(&media_prefix(video)).await {
            tracing::warn!(video = %video, error = %e, "media of a failed video not removed");
        }
        Ok(())
    }

    /// Runs the worker for good: work while there is some, otherwise look again shortly.
    pub fn spawn(mut self) {
        tokio::spawn(async move {
            loop {
                match self.run_once().await {
                    Ok(true) => continue,
                    Ok(false) => {
                        // Retries and leases come due with time; new jobs with a wake.
                        let wait = self.wake.changed();
                        let _ = tokio::time::timeout(Duration::from_millis(500), wait).await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "transcode worker");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
    }
}
