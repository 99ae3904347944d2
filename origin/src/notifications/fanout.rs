//! Telling a channel's subscribers of a new video: one `notify.fanout` job per video, queued
//! with the change that publishes it ([`announce`]); the job writes the notifications in
//! batches of subscribers in id order, each batch in one transaction with the job's progress
//! (the last subscriber done), so a worker that dies resumes after the last batch committed. A
//! batch written twice anyway (a lease taken over mid-batch) writes nothing twice: the
//! notification's key is unique per user.

use std::time::Duration;

use serde_json::json;
use shared_wasm::VideoId;
use sqlx::AnyPool;

use super::Kind;
use crate::clock::now;
use crate::db::WriteTx;
use crate::jobs::{self, Finished, Job, Lane, NewJob, OnConflict, Policy};

/// The job kind, keyed `video:{id}`; its payload is the last subscriber told.
pub const FANOUT: &str = "notify.fanout";

const POLICY: Policy = Policy {
    lease_secs: 30,
    max_attempts: 20,
    backoff_base_secs: 5,
    backoff_cap_secs: 600,
};

/// Queues the fan-out of `video` in `tx` if it is published now (ready, public or for members,
/// not taken down, in a channel) and its subscribers were never told of it: once per video, so
/// an edit, a restore or a second publication tells nobody again.
pub async fn announce(tx: &mut WriteTx, video: &VideoId) -> sqlx::Result<()> {
    let at = now();
    let first = sqlx::query(
        "UPDATE videos SET announced_at = $1
         WHERE id = $2 AND announced_at IS NULL AND state = 'ready' AND visibility <> 'private'
           AND taken_down = 0 AND channel_id IS NOT NULL",
    )
    .bind(at as i64)
    .bind(video.as_str())
    .execute(&mut **tx)
    .await?;
    if first.rows_affected() == 1 {
        let key = format!("video:{video}");
        jobs::enqueue(tx, &NewJob::new(FANOUT, &key), OnConflict::Keep, at).await?;
    }
    Ok(())
}

/// Writes the notifications of `notify.fanout` jobs.
pub struct Fanout {
    /// The database.
    pub db: AnyPool,
    /// Subscribers per transaction.
    pub batch: usize,
}

impl Fanout {
    /// `workers` workers, looking for due fan-outs every second (videos are published by
    /// transcoding workers and edits that need not know of them).
    pub fn lane(self, workers: usize) -> Lane {
        Lane::new(&[FANOUT], POLICY, self)
            .workers(workers)
            .poll(Duration::from_secs(1))
    }
}

#[derive(sqlx::FromRow)]
struct Published {
    title: String,
    channel_id: String,
    channel_name: String,
    owner_id: Option<String>,
}

#[async_trait::async_trait]
impl jobs::Handler for Fanout {
    async fn run(&self, job: &Job) -> anyhow::Result<Finished> {
        let video = job
            .key()
            .strip_prefix("video:")
            .ok_or_else(|| anyhow::anyhow!("malformed fan-out key"))?;
        let (mut after, mut told) = (job.payload.clone(), 0u64);
        loop {
            // Again for every batch: a video taken down or made private mid-way stops here.
            let Some(v) = sqlx::query_as::<_, Published>(
                "SELECT v.title, v.channel_id, c.name AS channel_name, v.owner_id
                 FROM videos v JOIN channels c ON c.id = v.channel_id
                 WHERE v.id = $1 AND v.state = 'ready' AND v.visibility <> 'private'
                   AND v.taken_down = 0",
            )
            .bind(video)
            .fetch_optional(&self.db)
            .await?
            else {
                tracing::info!(
                    video,
                    told,
                    "fan-out stopped: the video is no longer published"
                );
                return Ok(Finished::Done("withdrawn"));
            };
            let last: Option<String> = sqlx::query_scalar(
                "SELECT MAX(user_id) FROM (SELECT user_id FROM subscriptions
                     WHERE channel_id = $1 AND user_id > $2 ORDER BY user_id LIMIT $3) AS b",
            )
            .bind(&v.channel_id)
            .bind(&after)
            .bind(self.batch as i64)
            .fetch_one(&self.db)
            .await?;
            let Some(last) = last else {
                tracing::info!(video, told, "fan-out done");
                return Ok(Finished::Done("told"));
            };
            let mut tx = self.db.begin().await?;
            // A write first (SQLite takes its write lock at once), and the fence: a worker
            // whose lease was taken over writes nothing.
            if !jobs::checkpoint(&mut tx, job.lease(), &last).await? {
                return Ok(Finished::Recorded);
            }
            let (in_app, email) = {
                let d = Kind::NewVideo.default_channels();
                (i64::from(d.in_app), i64::from(d.email))
            };
            let data = json!({
                "video": video,
                "title": v.title,
                "channel": v.channel_id,
                "channel_name": v.channel_name,
            });
            let written = sqlx::query(
                "INSERT INTO notifications (user_id, kind, key, data, in_app, email, created_at)
                 SELECT s.user_id, 'new_video', $1, $2, COALESCE(p.in_app, $3),
                        CASE WHEN COALESCE(p.email, $4) = 1 AND u.email_confirmed_at IS NOT NULL
                             THEN 'pending' ELSE 'none' END, $5
                 FROM subscriptions s
                 JOIN users u ON u.id = s.user_id
                 LEFT JOIN notification_prefs p ON p.user_id = s.user_id AND p.kind = 'new_video'
                 WHERE s.channel_id = $6 AND s.user_id > $7 AND s.user_id <= $8
                   AND s.user_id <> $9
                   AND (COALESCE(p.in_app, $10) = 1
                        OR (COALESCE(p.email, $11) = 1 AND u.email_confirmed_at IS NOT NULL))
                 ON CONFLICT (user_id, key) DO NOTHING",
            )
            .bind(format!("video:{video}"))
            .bind(data.to_string())
            .bind(in_app)
            .bind(email)
            .bind(now() as i64)
            .bind(&v.channel_id)
            .bind(&after)
            .bind(&last)
            .bind(v.owner_id.as_deref().unwrap_or_default())
            .bind(in_app)
            .bind(email)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            told += written;
            after = last;
        }
    }
}
