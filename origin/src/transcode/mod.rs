//! The durable transcoding pipeline, on the job queue ([`crate::jobs`]). A complete upload
//! queues its video's probe (same transaction); the probe queues one job per rendition, the
//! last rendition done queues the finalize stage. Each runs under a lease the runner renews
//! while it works, so a crashed worker's work is taken again when its lease runs out, and the
//! claim's attempt fences a worker that lost its lease. Work happens in a scratch folder on
//! the worker's machine; a finished rendition goes into the store whole (replacing what an
//! earlier attempt left, never beside it), and the master playlist goes last, so no
//! half-written rendition or video is ever visible. `transcode_jobs` and `transcode_tasks`
//! keep what the status API shows: the stage, each rendition's state, progress, attempts and
//! the reason code of its last failure.

mod encode;
pub mod ffmpeg;
pub mod reason;
pub mod status;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use shared_wasm::record::VideoState;
use shared_wasm::VideoId;
use sqlx::{AnyConnection, AnyPool};

use crate::clock::now;
use crate::container::Container;
use crate::db::{enum_name, WriteTx};
use crate::jobs::{self, Fate, Finished, Job, Lane, NewJob, OnConflict, Policy};
use crate::outbox::Waker;
use crate::settings::TranscodeSettings;
use crate::storage::{media_prefix, Store};
use crate::webhooks::{self, EventType};
use crate::{outbox, videos};
use ffmpeg::{Measured, Probe, Rendition, Source};
use reason::{Because, Reason};

/// Attempts of a rendition or a stage before it is given up on (`dead`, the video `failed`).
pub const MAX_ATTEMPTS: i64 = 3;

/// The job that reads a video's source and queues its renditions (keyed by the video).
pub const PROBE: &str = "transcode.probe";
/// The job that encodes one rendition (keyed by its task, `{video}:{rendition}`).
pub const ENCODE: &str = "transcode.encode";
/// The job that writes the poster and master playlist and makes the video ready.
pub const FINALIZE: &str = "transcode.finalize";

/// Stages go before renditions, so a video is finished before the next one's renditions
/// take the workers.
const STAGE_PRIORITY: i64 = 1;

/// Queues a video's transcoding on `conn`, inside the transaction that makes it `processing`:
/// its status row, naming the stored source, and its probe.
pub async fn queue(conn: &mut AnyConnection, video: &VideoId, source: &str) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO transcode_jobs (video_id, source, stage, created_at)
         VALUES ($1, $2, 'probe', $3)
         ON CONFLICT (video_id) DO UPDATE SET source = excluded.source, stage = 'probe',
             attempts = 0, last_error = NULL",
    )
    .bind(video.as_str())
    .bind(source)
    .bind(now() as i64)
    .execute(&mut *conn)
    .await?;
    stage_job(conn, PROBE, video).await
}

async fn stage_job(conn: &mut AnyConnection, kind: &str, video: &VideoId) -> sqlx::Result<()> {
    let job = NewJob {
        priority: STAGE_PRIORITY,
        ..NewJob::new(kind, video.as_str())
    };
    jobs::enqueue(conn, &job, OnConflict::Replace, now())
        .await
        .map(drop)
}

/// Where workers find things.
#[derive(Clone)]
pub struct Worker {
    /// The database.
    pub db: AnyPool,
    /// Where sources are read from and media written to.
    pub store: Arc<dyn Store>,
    /// This machine's scratch folder (`{upload_dir}/work`): a folder per video being worked on.
    pub scratch: PathBuf,
    /// Leases, retries, the ffmpeg and ffprobe to run.
    pub settings: TranscodeSettings,
    /// Wakes the outbox when a video's record changes.
    pub outbox: Waker,
    /// Where encode times are recorded.
    pub metrics: Arc<crate::metrics::Metrics>,
}

fn work_dir(scratch: &Path, video: &VideoId) -> PathBuf {
    scratch.join(video.as_str())
}

fn video_of(id: &str) -> anyhow::Result<VideoId> {
    VideoId::parse(id).map_err(|e| anyhow::anyhow!("stored id: {e}"))
}

impl Worker {
    /// `transcode.workers` workers for the three kinds, woken when an upload completes.
    pub fn lane(self, wake: tokio::sync::watch::Receiver<u64>) -> Lane {
        let workers = self.settings.workers;
        Lane::new(&[PROBE, ENCODE, FINALIZE], self.policy(), self)
            .workers(workers)
            .woken_by(wake)
            .poll(Duration::from_millis(500))
    }

    /// A `lease_secs` lease; retries after `retry_secs`, doubling.
    fn policy(&self) -> Policy {
        Policy {
            lease_secs: self.settings.lease_secs,
            max_attempts: MAX_ATTEMPTS,
            backoff_base_secs: self.settings.retry_secs,
            backoff_cap_secs: self.settings.retry_secs << 6,
        }
    }

    /// The video's source as a local file (fetched into its work folder if the store is
    /// remote), with the container its bytes are: checked again here, whatever the upload
    /// checked, since it decides how ffmpeg may open the file.
    async fn source(&self, video: &VideoId) -> anyhow::Result<Source> {
        let key: Option<String> =
            sqlx::query_scalar("SELECT source FROM transcode_jobs WHERE video_id = $1")
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

    /// Runs a video's probe or finalize stage, if the video is still at it (not deleted or
    /// given up on). A failure is recorded with its reason: a file that is not a video it can
    /// read stays so and fails the video at once; anything else (the store out of reach, a
    /// crashed ffmpeg) may mend, so the stage is tried again later.
    async fn stage(&self, job: &Job) -> anyhow::Result<Finished> {
        let video = video_of(job.key())?;
        let stage = if job.kind == PROBE {
            "probe"
        } else {
            "finalize"
        };
        // The status shows this stage's attempts.
        let current = sqlx::query(
            "UPDATE transcode_jobs SET attempts = $1 WHERE video_id = $2 AND stage = $3",
        )
        .bind(job.attempts)
        .bind(video.as_str())
        .bind(stage)
        .execute(&self.db)
        .await?;
        if current.rows_affected() == 0 {
            return Ok(Finished::Done("abandoned"));
        }
        let result = match stage {
            "probe" => self.probe(&video, job).await,
            _ => self.finalize(&video, job).await,
        };
        let Err(e) = result else {
            return Ok(Finished::Recorded);
        };
        let reason = reason::of(&e);
        let error = format!("{e:#}");
        let mut tx = crate::db::begin_write(&self.db).await?;
        let policy = self.policy();
        let fate = jobs::fail(
            &mut tx,
            job.lease(),
            &policy,
            &error,
            reason.permanent(),
            now(),
        );
        let Some(fate) = fate.await? else {
            return Ok(Finished::Recorded); // another worker has it now
        };
        tracing::warn!(video = %video, stage, attempts = job.attempts, ?fate, %error, "transcode stage failed");
        if fate == Fate::Dead {
            self.fail(tx, &video, reason).await?;
        } else {
            sqlx::query("UPDATE transcode_jobs SET last_error = $1 WHERE video_id = $2")
                .bind(reason.code())
                .bind(video.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(Finished::Recorded)
    }

    async fn probe_of(&self, video: &VideoId) -> anyhow::Result<Probe> {
        #[derive(sqlx::FromRow)]
        struct Row {
            width: Option<i64>,
            height: Option<i64>,
            duration_ms: Option<i64>,
            has_audio: Option<i64>,
        }
        let row: Row = sqlx::query_as(
            "SELECT width, height, duration_ms, has_audio FROM transcode_jobs WHERE video_id = $1",
        )
        .bind(video.as_str())
        .fetch_one(&self.db)
        .await?;
        match (row.width, row.height, row.duration_ms, row.has_audio) {
            (Some(w), Some(h), Some(d), Some(a)) => Ok(Probe {
                width: w as u32,
                height: h as u32,
                duration_ms: d as u64,
                has_audio: a != 0,
            }),
            _ => anyhow::bail!("the job of {video} has no probe"),
        }
    }

    /// Reads the source and queues one job per rendition, with the probe's completion.
    async fn probe(&self, video: &VideoId, job: &Job) -> anyhow::Result<()> {
        let source = self.source(video).await?;
        let p = ffmpeg::probe(&self.settings.ffprobe, &source).await?;
        let mut tx = self.db.begin().await?;
        if !jobs::complete(&mut tx, job.lease(), "probed", now()).await? {
            return Ok(()); // another worker has it now
        }
        let moved = sqlx::query(
            "UPDATE transcode_jobs SET stage = 'encode', width = $1, height = $2,
                 duration_ms = $3, has_audio = $4
             WHERE video_id = $5 AND stage = 'probe'",
        )
        .bind(i64::from(p.width))
        .bind(i64::from(p.height))
        .bind(p.duration_ms as i64)
        .bind(i64::from(p.has_audio))
        .bind(video.as_str())
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            tx.commit().await?; // the video went meanwhile
            return Ok(());
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
        let todo: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM transcode_tasks WHERE video_id = $1 AND state IN ('queued', 'running')
             ORDER BY height",
        )
        .bind(video.as_str())
        .fetch_all(&mut *tx)
        .await?;
        for task in &todo {
            jobs::enqueue(
                &mut tx,
                &NewJob::new(ENCODE, task),
                OnConflict::Replace,
                now(),
            )
            .await?;
        }
        tx.commit().await?;
        tracing::info!(video = %video, width = p.width, height = p.height, "probed");
        Ok(())
    }

    /// Poster, then the master playlist (last: its presence says the video is whole), then the
    /// video made `ready` (its record queued for the edge) with the job's completion, in one
    /// transaction. Redone after a crash, it writes the same objects again.
    async fn finalize(&self, video: &VideoId, job: &Job) -> anyhow::Result<()> {
        let p = self.probe_of(video).await?;
        #[derive(sqlx::FromRow)]
        struct Row {
            rendition: String,
            height: i64,
            bandwidth: Option<i64>,
            average_bandwidth: Option<i64>,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT rendition, height, bandwidth, average_bandwidth FROM transcode_tasks
             WHERE video_id = $1 ORDER BY height",
        )
        .bind(video.as_str())
        .fetch_all(&self.db)
        .await?;
        let renditions = rows
            .into_iter()
            .map(|r| match (r.bandwidth, r.average_bandwidth) {
                (Some(peak), Some(average)) => Ok((
                    Rendition {
                        name: r.rendition,
                        height: r.height as u32,
                    },
                    Measured {
                        peak: peak as u64,
                        average: average as u64,
                    },
                )),
                _ => Err(anyhow::anyhow!(
                    "rendition {} has no measured bit rate",
                    r.rendition
                )),
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let work = work_dir(&self.scratch, video);
        let source = self.source(video).await?;
        let poster = work.join(format!(".poster-{}.jpg", job.attempts));
        ffmpeg::poster(&self.settings.ffmpeg, &source, &poster, &p)
            .await
            .because(Reason::PosterFailed)?;
        let prefix = media_prefix(video);
        self.store
            .put_file(&format!("{prefix}/poster.jpg"), &poster)
            .await
            .because(Reason::StorageUnavailable)?;
        let master = work.join(format!(".master-{}.m3u8", job.attempts));
        tokio::fs::write(&master, ffmpeg::master(&p, &renditions)).await?;
        self.store
            .put_file(&format!("{prefix}/master.m3u8"), &master)
            .await
            .because(Reason::StorageUnavailable)?;
        let mut tx = crate::db::begin_write(&self.db).await?;
        if !jobs::complete(&mut tx, job.lease(), "ready", now()).await? {
            return Ok(()); // another worker has it now
        }
        let finished = sqlx::query(
            "UPDATE transcode_jobs SET stage = 'done' WHERE video_id = $1 AND stage = 'finalize'",
        )
        .bind(video.as_str())
        .execute(&mut *tx)
        .await?;
        if finished.rows_affected() == 0 {
            tx.commit().await?; // the video went meanwhile
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
        // It now appears in its channel's and category's feeds, and the home feed.
        videos::publish(&mut tx, video, Vec::new()).await?;
        webhooks::emit(&mut tx, EventType::VideoReady, video, None).await?;
        tx.commit().await?;
        self.outbox.wake();
        // The scratch copy of the source, and leftovers of attempts cut short.
        let _ = tokio::fs::remove_dir_all(&work).await;
        tracing::info!(video = %video, "transcoded, ready");
        Ok(())
    }

    /// Gives up on a video in `tx`: the job `failed` with the reason, the video `failed` (its
    /// record queued for the edge); then its scratch folder and media go.
    async fn fail(&self, mut tx: WriteTx, video: &VideoId, reason: Reason) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE transcode_jobs SET stage = 'failed', last_error = $1 WHERE video_id = $2",
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
        // The video may have been deleted meanwhile: then there is nothing to tell the edge.
        if let Some(rec) = videos::record(&mut *tx, video).await? {
            outbox::enqueue(&mut tx, &rec).await?;
        }
        webhooks::emit(&mut tx, EventType::VideoFailed, video, Some(reason.code())).await?;
        tx.commit().await?;
        self.outbox.wake();
        let _ = tokio::fs::remove_dir_all(work_dir(&self.scratch, video)).await;
        if let Err(e) = self.store.delete_prefix(&media_prefix(video)).await {
            tracing::warn!(video = %video, error = %e, "media of a failed video not removed");
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl jobs::Handler for Worker {
    async fn run(&self, job: &Job) -> anyhow::Result<Finished> {
        match job.kind.as_str() {
            ENCODE => self.encode(job).await,
            _ => self.stage(job).await,
        }
    }
}
