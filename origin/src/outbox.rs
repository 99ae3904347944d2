//! The outbox: records for the edge, written in the same transaction as the change they
//! describe, and pushed to every configured edge deployment by a background task.
//!
//! Delivery is at least once and in `seq` order per edge: a batch is re-sent until the edge
//! answers 200, and only then does that edge's cursor move. The edge ignores a record whose
//! version it already has, so a re-sent batch has no second effect.
//!
//! This is not a kind of [`crate::jobs`] job, on purpose. The queue's unit is one independent
//! job, taken by any worker, retried and dead-lettered alone; the outbox is one ordered stream
//! per edge, read from a cursor. A job per record and edge would multiply rows by edges, lose
//! the batching (a hundred records per request), and break the order (a record retried in its
//! backoff would be overtaken by newer ones of the same key); a dead letter would be a gap the
//! edge never fills. Its durability is the table and the cursor already, and its retry is the
//! whole batch. The pushers run under the process's cancellation token like the job workers.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use shared_wasm::record::{
    AdCatalog, Entitlement, FeedVersion, RevokedSession, UserRecord, VideoRecord,
};
use shared_wasm::sync::{self, SyncBatch, SyncItem};
use shared_wasm::UnixTime;
use sqlx::AnyPool;

use crate::db::WriteTx;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::now;
use crate::keys::random_bytes;
use crate::metrics::{GaugeFamily, GaugeSource};

/// Most records per push.
const BATCH_ROWS: i64 = 100;
/// Ceiling of the retry backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// After a failed push, how soon a new write brings the next attempt.
const RETRY_ON_WRITE: Duration = Duration::from_secs(1);
/// How often an idle pusher looks again even without a wake-up (writes by another process
/// sharing the database do not wake this one).
const IDLE_POLL: Duration = Duration::from_secs(2);

/// A record ready for the outbox.
pub trait EdgeRecord {
    /// Its KV key, version, CBOR value and expiry.
    fn item(&self) -> SyncItem;
}

impl EdgeRecord for VideoRecord {
    fn item(&self) -> SyncItem {
        SyncItem {
            key: VideoRecord::key(&self.id),
            version: self.version,
            value: self.to_cbor(),
            expires_at: None,
        }
    }
}

impl EdgeRecord for UserRecord {
    fn item(&self) -> SyncItem {
        SyncItem {
            key: UserRecord::key(&self.id),
            version: self.version,
            value: self.to_cbor(),
            expires_at: None,
        }
    }
}

impl EdgeRecord for RevokedSession {
    fn item(&self) -> SyncItem {
        SyncItem {
            key: RevokedSession::key(&self.jti),
            version: self.version,
            value: self.to_cbor(),
            expires_at: Some(self.expires_at),
        }
    }
}

impl EdgeRecord for FeedVersion {
    fn item(&self) -> SyncItem {
        SyncItem {
            key: FeedVersion::key(&self.feed),
            version: self.version,
            value: self.to_cbor(),
            expires_at: None,
        }
    }
}

impl EdgeRecord for AdCatalog {
    fn item(&self) -> SyncItem {
        SyncItem {
            key: AdCatalog::KEY.to_owned(),
            version: self.version,
            value: self.to_cbor(),
            expires_at: None,
        }
    }
}

impl EdgeRecord for Entitlement {
    fn item(&self) -> SyncItem {
        SyncItem {
            key: Entitlement::key(&self.user),
            version: self.version,
            value: self.to_cbor(),
            expires_at: None,
        }
    }
}

/// Adds a record to the outbox inside the caller's transaction.
pub async fn enqueue(tx: &mut WriteTx, record: &impl EdgeRecord) -> sqlx::Result<()> {
    let item = record.item();
    sqlx::query(
        "INSERT INTO edge_outbox (key, version, value, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&item.key)
    .bind(item.version as i64)
    .bind(&item.value)
    .bind(item.expires_at.map(|t| t as i64))
    .bind(now() as i64)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Wakes the pushers after a commit that enqueued records.
#[derive(Clone)]
pub struct Waker(watch::Sender<u64>);

impl Waker {
    /// A waker and the receiver the pushers wait on.
    pub fn new() -> (Self, watch::Receiver<u64>) {
        let (tx, rx) = watch::channel(0);
        (Self(tx), rx)
    }

    /// Tells every pusher that there is something new.
    pub fn wake(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Where and how to push.
#[derive(Clone)]
pub struct PushConfig {
    /// Each edge deployment's sync URL (`https://edge.example/internal/sync`).
    pub edges: Vec<String>,
    /// Shared with the edges (`SYNC_SECRET` there).
    pub secret: SecretString,
}

/// Starts one pusher task per edge in `tasks`; each stops between pushes when `stop` is
/// cancelled (a push cut short is sent again: the cursor moves only after the edge's 200).
pub fn spawn(
    tasks: &mut JoinSet<()>,
    stop: &CancellationToken,
    db: AnyPool,
    config: PushConfig,
    wake: watch::Receiver<u64>,
) {
    let edges = std::sync::Arc::new(config.edges.clone());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client builds");
    for url in config.edges.clone() {
        let pusher = Pusher {
            db: db.clone(),
            client: client.clone(),
            secret: config.secret.clone(),
            url,
            edges: edges.clone(),
        };
        tasks.spawn(pusher.run(wake.clone(), stop.clone()));
    }
}

struct Pusher {
    db: AnyPool,
    client: reqwest::Client,
    secret: SecretString,
    url: String,
    /// Every configured edge, for compaction.
    edges: std::sync::Arc<Vec<String>>,
}

type Row = (i64, String, i64, Vec<u8>, Option<i64>);

impl Pusher {
    async fn run(self, mut wake: watch::Receiver<u64>, stop: CancellationToken) {
        let mut backoff = Duration::from_millis(250);
        loop {
            let pushed = tokio::select! {
                pushed = self.push_once() => pushed,
                _ = stop.cancelled() => return,
            };
            // Idle: until a write wakes it, or the poll. After a failure: the backoff.
            let (wait, idle) = match pushed {
                Ok(true) => {
                    backoff = Duration::from_millis(250);
                    continue;
                }
                Ok(false) => (IDLE_POLL, true),
                Err(e) => {
                    tracing::warn!(edge = %self.url, error = %e, retry_in = ?backoff, "edge sync failed");
                    let wait = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    (wait, false)
                }
            };
            // A write wakes an idle pusher at once. After a failure it cuts the backoff short
            // to a second: a down edge is not retried faster than that however many writes
            // come, but an edge back up gets a revocation without sitting out a backoff that
            // grew while it was away (up to MAX_BACKOFF).
            let woken = async {
                if wake.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
                if !idle {
                    tokio::time::sleep(RETRY_ON_WRITE.min(wait)).await;
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
                _ = woken => {}
            }
        }
    }

    /// Sends the next batch; `Ok(false)` when there was none.
    async fn push_once(&self) -> anyhow::Result<bool> {
        let cursor: i64 = sqlx::query_scalar(
            "SELECT COALESCE((SELECT last_seq FROM edge_sync_cursors WHERE edge = $1), 0)",
        )
        .bind(&self.url)
        .fetch_one(&self.db)
        .await?;
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT seq, key, version, value, expires_at FROM edge_outbox
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(cursor)
        .bind(BATCH_ROWS)
        .fetch_all(&self.db)
        .await?;
        if rows.is_empty() {
            return Ok(false);
        }
        let now = now();
        let (mut last, mut size, mut items) = (cursor, 0usize, Vec::new());
        for (seq, key, version, value, expires_at) in rows {
            // Stay well under the edge's body cap, whatever the records weigh.
            size += key.len() + value.len() + 32;
            if !items.is_empty() && size > sync::MAX_BATCH_BYTES / 2 {
                break;
            }
            last = seq;
            // Already expired (a revoked session whose tokens are all dead): nothing to say.
            if expires_at.is_some_and(|t| t as u64 <= now) {
                continue;
            }
            items.push(SyncItem {
                key,
                version: version as u64,
                value,
                expires_at: expires_at.map(|t| t as u64),
            });
        }
        let body = SyncBatch { v: 1, items }.to_cbor();
        let nonce = base64_nonce();
        let auth = sync::sign(
            self.secret.expose_secret().as_bytes(),
            &body,
            &nonce,
            UnixTime(now),
        );
        let resp = self
            .client
            .post(&self.url)
            .header(sync::HEADER, auth)
            .header("content-type", "application/cbor")
            .body(body)
            .send()
            .await?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            anyhow::bail!(
                "edge answered {status}: {}",
                text.chars().take(200).collect::<String>()
            );
        }
        sqlx::query(
            "INSERT INTO edge_sync_cursors (edge, last_seq) VALUES ($1, $2)
             ON CONFLICT (edge) DO UPDATE SET last_seq = CASE
                 WHEN excluded.last_seq > edge_sync_cursors.last_seq THEN excluded.last_seq
                 ELSE edge_sync_cursors.last_seq END",
        )
        .bind(&self.url)
        .bind(last)
        .execute(&self.db)
        .await?;
        compact(&self.db, &self.edges).await?;
        Ok(true)
    }
}

/// Drops outbox rows every configured edge has received, except the newest row of each key:
/// those stay as a snapshot from which a newly added edge deployment learns every current
/// record (revocations included). Rows of records past their expiry go too.
pub async fn compact(db: &AnyPool, edges: &[String]) -> sqlx::Result<u64> {
    if edges.is_empty() {
        return Ok(0);
    }
    let marks = (1..=edges.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",");
    let sql = format!(
        "SELECT COUNT(*), COALESCE(MIN(last_seq), 0) FROM edge_sync_cursors WHERE edge IN ({marks})"
    );
    let mut q = sqlx::query_as::<_, (i64, i64)>(&sql);
    for e in edges {
        q = q.bind(e);
    }
    let (known, min_seq) = q.fetch_one(db).await?;
    if known < edges.len() as i64 {
        return Ok(0); // an edge has received nothing yet
    }
    let done = sqlx::query(
        "DELETE FROM edge_outbox WHERE seq <= $1 AND (
             seq NOT IN (SELECT MAX(seq) FROM edge_outbox GROUP BY key)
             OR (expires_at IS NOT NULL AND expires_at <= $2))",
    )
    .bind(min_seq)
    .bind(now() as i64)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Each edge's backlog, read when metrics are scraped: records not yet delivered, and how long
/// the oldest of them has waited (0 when none).
pub struct Backlog {
    /// The database.
    pub db: AnyPool,
    /// Every configured edge's sync URL.
    pub edges: Vec<String>,
}

#[async_trait::async_trait]
impl GaugeSource for Backlog {
    fn name(&self) -> &'static str {
        "edge sync backlog"
    }

    async fn read(&self) -> anyhow::Result<Vec<GaugeFamily>> {
        let now = now();
        let (mut pending, mut oldest) = (Vec::new(), Vec::new());
        for edge in &self.edges {
            let (count, first): (i64, Option<i64>) = sqlx::query_as(
                "SELECT COUNT(*), MIN(created_at) FROM edge_outbox WHERE seq >
                     COALESCE((SELECT last_seq FROM edge_sync_cursors WHERE edge = $1), 0)",
            )
            .bind(edge)
            .fetch_one(&self.db)
            .await?;
            let labels = vec![("edge", edge.clone())];
            let age = first.map_or(0, |t| now.saturating_sub(t as u64));
            pending.push((labels.clone(), count as f64));
            oldest.push((labels, age as f64));
        }
        Ok(vec![
            GaugeFamily {
                name: "edge_sync_pending_records",
                help: "Outbox records an edge has not acknowledged yet, by edge sync URL",
                samples: pending,
            },
            GaugeFamily {
                name: "edge_sync_oldest_pending_age_seconds",
                help: "How long the oldest record an edge has not acknowledged has waited \
                       (0: none waiting), by edge sync URL",
                samples: oldest,
            },
        ])
    }
}

fn base64_nonce() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<16>())
}
