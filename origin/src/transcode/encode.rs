//! One rendition: encoded into a scratch folder with its progress reported, measured, put into
//! the store whole, and marked done with its job's completion (the last one queues the
//! finalize stage).

use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use anyhow::Context;
use shared_wasm::VideoId;

use super::reason::{self, Because, Reason};
use super::{ffmpeg, media_prefix, stage_job, video_of, work_dir, Worker, FINALIZE};
use crate::clock::now;
use crate::jobs::{self, Fate, Finished, Job};
use ffmpeg::Rendition;

/// A rendition to encode, as its job finds it.
#[derive(sqlx::FromRow)]
struct Task {
    id: String,
    video_id: String,
    rendition: String,
    height: i64,
}

impl Worker {
    /// Encodes the job's rendition while its video still wants it (not failed or deleted).
    pub(super) async fn encode(&self, job: &Job) -> anyhow::Result<Finished> {
        let task: Option<Task> = sqlx::query_as(
            "UPDATE transcode_tasks SET state = 'running', progress = 0, attempts = $1
             WHERE id = $2 AND state IN ('queued', 'running')
               AND video_id IN (SELECT video_id FROM transcode_jobs WHERE stage = 'encode')
             RETURNING id, video_id, rendition, height",
        )
        .bind(job.attempts)
        .bind(job.key())
        .fetch_optional(&self.db)
        .await?;
        let Some(task) = task else {
            return Ok(Finished::Done("abandoned"));
        };
        let video = video_of(&task.video_id)?;
        let r = Rendition {
            name: task.rendition,
            height: task.height as u32,
        };
        let tmp = work_dir(&self.scratch, &video).join(format!(".{}-{}", r.name, job.attempts));
        let _ = tokio::fs::remove_dir_all(&tmp).await;
        let started = std::time::Instant::now();
        let result = self.encode_into(&tmp, job, &task.id, &video, &r).await;
        let outcome = match &result {
            Ok(true) => "done",
            Ok(false) => "lost",
            Err(_) => "failed",
        };
        self.metrics.transcoded(&r.name, outcome, started.elapsed());
        // Whatever happened, the attempt's folder goes (the store took it if it succeeded).
        let _ = tokio::fs::remove_dir_all(&tmp).await;
        match result {
            Ok(true) => Ok(Finished::Recorded),
            Ok(false) => Ok(Finished::Done("abandoned")),
            Err(e) => {
                self.encode_failed(job, &task.id, &video, &r, e).await?;
                Ok(Finished::Recorded)
            }
        }
    }

    /// Records a failed attempt: the rendition queued again after the backoff, or dead with
    /// its video failed after the last attempt.
    async fn encode_failed(
        &self,
        job: &Job,
        task: &str,
        video: &VideoId,
        r: &Rendition,
        e: anyhow::Error,
    ) -> anyhow::Result<()> {
        let reason = reason::of(&e);
        let error = format!("{e:#}");
        let mut tx = crate::db::begin_write(&self.db).await?;
        let policy = self.policy();
        let fate = jobs::fail(&mut tx, job.lease(), &policy, &error, false, now()).await?;
        let Some(fate) = fate else {
            return Ok(()); // another worker has it now
        };
        let dead = fate == Fate::Dead;
        tracing::warn!(video = %video, rendition = %r.name, attempts = job.attempts, dead, %error, "rendition failed");
        sqlx::query("UPDATE transcode_tasks SET state = $1, last_error = $2 WHERE id = $3")
            .bind(if dead { "dead" } else { "queued" })
            .bind(reason.code())
            .bind(task)
            .execute(&mut *tx)
            .await?;
        if dead {
            self.fail(tx, video, reason).await
        } else {
            Ok(tx.commit().await?)
        }
    }

    /// `Ok(false)` when the video no longer wants the rendition, or this attempt no longer
    /// owns it: it stops (dropping the encoding kills ffmpeg).
    async fn encode_into(
        &self,
        tmp: &Path,
        job: &Job,
        task: &str,
        video: &VideoId,
        r: &Rendition,
    ) -> anyhow::Result<bool> {
        let p = self.probe_of(video).await?;
        let source = self.source(video).await?;
        tokio::fs::create_dir_all(tmp).await?;
        let progress = Arc::new(AtomicU8::new(0));
        let seen = progress.clone();
        let encoding = ffmpeg::encode(&self.settings.ffmpeg, &source, tmp, &p, r, move |pct| {
            seen.store(pct, Ordering::Relaxed)
        });
        let encoding = async { encoding.await.because(Reason::EncodeFailed) };
        tokio::pin!(encoding);
        let mut report =
            tokio::time::interval(std::time::Duration::from_secs(self.policy().lease() / 3));
        report.tick().await;
        let outcome = loop {
            tokio::select! {
                done = &mut encoding => break done,
                _ = report.tick() => {
                    let pct = progress.load(Ordering::Relaxed);
                    if !self.report(task, video, job.attempts, pct).await? {
                        return Ok(false);
                    }
                }
            }
        };
        outcome?;
        let measured = ffmpeg::measure(tmp).await?;
        // Still ours, and the video still wanted, just before it is published.
        let lease = self.policy().lease();
        if jobs::heartbeat(&self.db, job.lease(), lease, now()).await? != jobs::Beat::Held
            || !self.report(task, video, job.attempts, 100).await?
        {
            return Ok(false);
        }
        let prefix = format!("{}/{}", media_prefix(video), r.name);
        self.store
            .put_dir(&prefix, tmp, "index.m3u8")
            .await
            .context("storing the rendition")
            .because(Reason::StorageUnavailable)?;
        // One writer at a time, so of two renditions finishing together the later one sees
        // the other done and moves the video on.
        let mut tx = crate::db::begin_write(&self.db).await?;
        if !jobs::complete(&mut tx, job.lease(), "encoded", now()).await? {
            return Ok(true); // another worker has it now
        }
        sqlx::query(
            "UPDATE transcode_tasks SET state = 'done', progress = 100, bandwidth = $1,
                 average_bandwidth = $2
             WHERE id = $3",
        )
        .bind(measured.peak as i64)
        .bind(measured.average as i64)
        .bind(task)
        .execute(&mut *tx)
        .await?;
        // The last rendition moves the job on to its finalize stage, whose attempts start
        // again: they count that stage's tries.
        let last = sqlx::query(
            "UPDATE transcode_jobs SET stage = 'finalize', attempts = 0
             WHERE video_id = $1 AND stage = 'encode'
               AND NOT EXISTS (SELECT 1 FROM transcode_tasks
                               WHERE video_id = $1 AND state <> 'done')",
        )
        .bind(video.as_str())
        .execute(&mut *tx)
        .await?;
        if last.rows_affected() == 1 {
            stage_job(&mut tx, FINALIZE, video).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Reports the rendition's progress; `false` if it is no longer this attempt's or its
    /// video was given up on.
    async fn report(
        &self,
        task: &str,
        video: &VideoId,
        attempts: i64,
        pct: u8,
    ) -> anyhow::Result<bool> {
        let held = sqlx::query(
            "UPDATE transcode_tasks SET progress = $1
             WHERE id = $2 AND attempts = $3
               AND EXISTS (SELECT 1 FROM transcode_jobs WHERE video_id = $4 AND stage = 'encode')",
        )
        .bind(i64::from(pct))
        .bind(task)
        .bind(attempts)
        .bind(video.as_str())
        .execute(&self.db)
        .await?;
        Ok(held.rows_affected() == 1)
    }
}
