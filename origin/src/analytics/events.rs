//! Where the playback events are kept, behind one interface for the ingest ([`Events::append`])
//! and the rollup ([`Events::pending`], [`Events::taken`]):
//!
//! - **the database** (`playback_events`, the default): one row per view and sequence number, so
//!   a retried beacon hits the key; a `pending` mark the rollup clears.
//! - **ClickHouse** (`analytics.clickhouse`), for when a year of heartbeats outgrows one
//!   database: append-only, sorted by ClickHouse's own time of the insert, then view and
//!   sequence number. The rollup reads on from a cursor it keeps in the database
//!   (`analytics_cursor`), moved in the transaction that stores what it made of the events, so
//!   a crash redoes a batch whole or not at all, as with the database. It reads only inserts
//!   older than `settle_secs`, so that an insert still under way when it reads (stamped
//!   earlier, visible later) is not passed over. A retried beacon is stored twice here: the
//!   rollup counts each sequence number of a view once ([`super::seqs`]).
//!
//! Either way the views and hourly rows the statistics read stay in the database.
//!
//! Trust: the ClickHouse server is ours (loopback or a private network, a user of its own);
//! what goes in was checked by the edge and by the ingest, and every value is sent as RowBinary
//! or a bound parameter, never spliced into SQL.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clickhouse::Row;
use serde::{Deserialize, Serialize};
use shared_wasm::beacon::Ingest;
use sqlx::{Any, AnyPool, Row as _, Transaction};

use crate::settings::ClickHouseSettings;

/// The playback events' store.
#[derive(Clone)]
pub enum Events {
    /// `playback_events` in the origin's database.
    Database,
    /// A ClickHouse server (its client is large; one per process, shared).
    ClickHouse(Arc<ClickHouse>),
}

/// One stored event, as the rollup reads it.
pub struct Stored {
    pub view_id: String,
    pub seq: u32,
    pub video_id: String,
    pub viewer: String,
    pub country: String,
    pub device: String,
    pub issued_at: i64,
    pub received_at: i64,
    /// The event as the player sent it (JSON).
    pub data: String,
}

/// What the rollup took, to mark as taken in its transaction.
pub enum Taken {
    /// The database's rows.
    Rows(Vec<i64>),
    /// ClickHouse: the position of the last event read.
    Position(Position),
    /// Nothing.
    None,
}

/// A place in ClickHouse's order of the events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    inserted: u32,
    view_id: String,
    seq: u32,
}

impl Events {
    /// The store `settings` name: ClickHouse (its table made if missing) or the database.
    pub async fn open(settings: Option<&ClickHouseSettings>) -> anyhow::Result<Self> {
        Ok(match settings {
            Some(s) => Self::ClickHouse(Arc::new(ClickHouse::open(s).await?)),
            None => Self::Database,
        })
    }

    /// Appends the beacons' events (checked by the caller) in one write; how many were new
    /// (ClickHouse: how many were sent, duplicates counted later).
    pub async fn append(&self, db: &AnyPool, beacons: &[&Ingest]) -> anyhow::Result<u64> {
        match self {
            Self::Database => append_to_database(db, beacons).await,
            Self::ClickHouse(ch) => ch.append(beacons).await,
        }
    }

    /// Whether the store may give the same `(view, seq)` twice (the database's key drops it).
    pub fn keeps_duplicates(&self) -> bool {
        matches!(self, Self::ClickHouse(_))
    }

    /// At most `limit` events the rollup has not taken, in the store's order.
    pub async fn pending(
        &self,
        tx: &mut Transaction<'static, Any>,
        limit: usize,
    ) -> anyhow::Result<(Vec<Stored>, Taken)> {
        match self {
            Self::Database => pending_in_database(tx, limit).await,
            Self::ClickHouse(ch) => ch.pending(tx, limit).await,
        }
    }

    /// Removes the events the rollup has taken that arrived before `before` (unix seconds);
    /// how many. ClickHouse: whole months, ended before `before` and read past by the rollup.
    pub async fn forget_before(&self, db: &AnyPool, before: u64) -> anyhow::Result<u64> {
        match self {
            Self::Database => Ok(forget_in_database(db, before).await?),
            Self::ClickHouse(ch) => ch.forget_before(db, before).await,
        }
    }

    /// Marks what [`Events::pending`] gave as taken, in the rollup's transaction.
    pub async fn taken(tx: &mut Transaction<'static, Any>, taken: Taken) -> sqlx::Result<()> {
        match taken {
            Taken::Rows(ids) => {
                for chunk in ids.chunks(500) {
                    let list = chunk
                        .iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(",");
                    sqlx::query(&format!(
                        "UPDATE playback_events SET pending = 0 WHERE id IN ({list})"
                    ))
                    .execute(&mut **tx)
                    .await?;
                }
            }
            Taken::Position(p) => {
                sqlx::query(
                    "INSERT INTO analytics_cursor (store, inserted, view_id, seq)
                     VALUES ('clickhouse', $1, $2, $3)
                     ON CONFLICT (store) DO UPDATE SET inserted = excluded.inserted,
                       view_id = excluded.view_id, seq = excluded.seq",
                )
                .bind(i64::from(p.inserted))
                .bind(&p.view_id)
                .bind(i64::from(p.seq))
                .execute(&mut **tx)
                .await?;
            }
            Taken::None => {}
        }
        Ok(())
    }
}

async fn append_to_database(db: &AnyPool, beacons: &[&Ingest]) -> anyhow::Result<u64> {
    let mut tx = db.begin().await?;
    let mut added = 0;
    // Loops, not an iterator of pairs: a closure borrowing across the awaits makes the future
    // not `Send` (a higher-ranked lifetime the compiler cannot prove).
    for ingest in beacons {
        let v = &ingest.view;
        let country = v.country.as_ref().map_or("", |c| c.as_str());
        for e in &ingest.events {
            added += sqlx::query(
                "INSERT INTO playback_events
               (view_id, seq, video_id, viewer, country, device, issued_at, received_at, kind, data)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (view_id, seq) DO NOTHING",
            )
            .bind(&v.view)
            .bind(i64::from(e.seq()))
            .bind(v.video.as_str())
            .bind(&v.viewer)
            .bind(country)
            .bind(v.device.as_str())
            .bind(v.issued as i64)
            .bind(ingest.received_at as i64)
            .bind(e.kind())
            .bind(serde_json::to_string(e).expect("an event serializes"))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
    }
    tx.commit().await?;
    Ok(added)
}

/// Oldest first, a chunk at a time: the ids are read (no write lock meanwhile), then deleted.
async fn forget_in_database(db: &AnyPool, before: u64) -> sqlx::Result<u64> {
    let chunk = super::retention::CHUNK;
    let mut deleted = 0;
    loop {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM playback_events WHERE pending = 0 AND received_at < $1
             ORDER BY id LIMIT $2",
        )
        .bind(before as i64)
        .bind(chunk as i64)
        .fetch_all(db)
        .await?;
        if !ids.is_empty() {
            let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
            deleted += sqlx::query(&format!("DELETE FROM playback_events WHERE id IN ({list})"))
                .execute(db)
                .await?
                .rows_affected();
        }
        if ids.len() < chunk {
            return Ok(deleted);
        }
    }
}

async fn pending_in_database(
    tx: &mut Transaction<'static, Any>,
    limit: usize,
) -> anyhow::Result<(Vec<Stored>, Taken)> {
    let rows = sqlx::query(
        "SELECT id, view_id, seq, video_id, viewer, country, device, issued_at, received_at, data
         FROM playback_events WHERE pending = 1 ORDER BY id LIMIT $1",
    )
    .bind(limit as i64)
    .fetch_all(&mut **tx)
    .await?;
    let mut ids = Vec::with_capacity(rows.len());
    let mut events = Vec::with_capacity(rows.len());
    for r in &rows {
        ids.push(r.try_get("id")?);
        events.push(Stored {
            view_id: r.try_get("view_id")?,
            seq: u32::try_from(r.try_get::<i64, _>("seq")?).context("stored sequence number")?,
            video_id: r.try_get("video_id")?,
            viewer: r.try_get("viewer")?,
            country: r.try_get("country")?,
            device: r.try_get("device")?,
            issued_at: r.try_get("issued_at")?,
            received_at: r.try_get("received_at")?,
            data: r.try_get("data")?,
        });
    }
    let taken = if ids.is_empty() {
        Taken::None
    } else {
        Taken::Rows(ids)
    };
    Ok((events, taken))
}

/// The events in ClickHouse.
pub struct ClickHouse {
    client: clickhouse::Client,
    settle_secs: u64,
}

/// How long one request to ClickHouse may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The table: partitioned by month, UTC (old months go whole), sorted in the rollup's order.
/// `inserted` is the server's clock when the insert arrived, one clock for every origin.
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS playback_events (
    inserted DateTime DEFAULT now(),
    view_id String,
    seq UInt32,
    video_id String,
    viewer String,
    country String,
    device String,
    issued_at Int64,
    received_at Int64,
    kind String,
    data String
) ENGINE = MergeTree() PARTITION BY toYYYYMM(inserted, 'UTC') ORDER BY (inserted, view_id, seq)";

#[derive(Row, Serialize)]
struct NewEvent<'a> {
    view_id: &'a str,
    seq: u32,
    video_id: &'a str,
    viewer: &'a str,
    country: &'a str,
    device: &'a str,
    issued_at: i64,
    received_at: i64,
    kind: &'a str,
    data: String,
}

#[derive(Row, Deserialize)]
struct ReadEvent {
    inserted: u32,
    view_id: String,
    seq: u32,
    video_id: String,
    viewer: String,
    country: String,
    device: String,
    issued_at: i64,
    received_at: i64,
    data: String,
}

impl ClickHouse {
    /// Connects, making the database and the table if missing.
    pub async fn open(s: &ClickHouseSettings) -> anyhow::Result<Self> {
        // RowBinary without the schema check: the server may predate the format that carries
        // names and types; the table above is the one schema, and the tests read back through it.
        let mut client = clickhouse::Client::default()
            .with_url(&s.url)
            .with_validation(false);
        if let Some(user) = &s.user {
            client = client.with_user(user);
        }
        if let Some(password) = &s.password {
            use secrecy::ExposeSecret;
            client = client.with_password(password.expose_secret());
        }
        within(
            client
                .query("CREATE DATABASE IF NOT EXISTS ?")
                .bind(clickhouse::sql::Identifier(&s.database))
                .execute(),
        )
        .await
        .context("creating the ClickHouse database")?;
        let client = client.with_database(&s.database);
        within(client.query(CREATE_TABLE).execute())
            .await
            .context("creating the ClickHouse table playback_events")?;
        Ok(Self {
            client,
            settle_secs: s.settle_secs,
        })
    }

    async fn append(&self, beacons: &[&Ingest]) -> anyhow::Result<u64> {
        let mut insert = self
            .client
            .insert::<NewEvent<'_>>("playback_events")
            .await?
            .with_timeouts(Some(TIMEOUT), Some(TIMEOUT));
        let mut sent = 0;
        for ingest in beacons {
            let v = &ingest.view;
            let country = v.country.as_ref().map_or("", |c| c.as_str());
            for e in &ingest.events {
                sent += 1;
                insert
                    .write(&NewEvent {
                        view_id: &v.view,
                        seq: e.seq(),
                        video_id: v.video.as_str(),
                        viewer: &v.viewer,
                        country,
                        device: v.device.as_str(),
                        issued_at: v.issued as i64,
                        received_at: ingest.received_at as i64,
                        kind: e.kind(),
                        data: serde_json::to_string(e).expect("an event serializes"),
                    })
                    .await?;
            }
        }
        insert.end().await?;
        Ok(sent)
    }

    /// Drops each month (a partition, `YYYYMM`) that ended before `before` and whose every row
    /// came in a second before the rollup's cursor (all read, whatever the order within a
    /// second).
    async fn forget_before(&self, db: &AnyPool, before: u64) -> anyhow::Result<u64> {
        let cursor: Option<i64> =
            sqlx::query_scalar("SELECT inserted FROM analytics_cursor WHERE store = 'clickhouse'")
                .fetch_optional(db)
                .await?;
        let read_past = cursor.unwrap_or(0).max(0) as u64;
        #[derive(Row, Deserialize)]
        struct Part {
            partition: String,
            rows: u64,
            last: u32,
        }
        let parts: Vec<Part> = within(
            self.client
                .query(
                    "SELECT partition, sum(rows) AS rows, toUInt32(max(max_time)) AS last
                     FROM system.parts
                     WHERE database = currentDatabase() AND table = 'playback_events' AND active
                     GROUP BY partition ORDER BY partition",
                )
                .fetch_all(),
        )
        .await
        .context("listing ClickHouse's partitions of playback_events")?;
        let mut dropped = 0;
        for part in parts {
            let Some(month) = crate::earnings::Month::parse_compact(&part.partition) else {
                tracing::warn!(partition = %part.partition, "playback_events partition not a month, kept");
                continue;
            };
            if month.end() > before || u64::from(part.last) >= read_past {
                break;
            }
            within(
                self.client
                    .query("ALTER TABLE playback_events DROP PARTITION ?")
                    .bind(month.compact())
                    .execute(),
            )
            .await
            .with_context(|| format!("dropping the partition {}", part.partition))?;
            dropped += part.rows;
        }
        Ok(dropped)
    }

    async fn pending(
        &self,
        tx: &mut Transaction<'static, Any>,
        limit: usize,
    ) -> anyhow::Result<(Vec<Stored>, Taken)> {
        let cursor = sqlx::query(
            "SELECT inserted, view_id, seq FROM analytics_cursor WHERE store = 'clickhouse'",
        )
        .fetch_optional(&mut **tx)
        .await?;
        let after = match cursor {
            Some(r) => Position {
                inserted: u32::try_from(r.try_get::<i64, _>("inserted")?)?,
                view_id: r.try_get("view_id")?,
                seq: u32::try_from(r.try_get::<i64, _>("seq")?)?,
            },
            None => Position {
                inserted: 0,
                view_id: String::new(),
                seq: 0,
            },
        };
        // `inserted >= …` as well as the tuple: the sort key's first column prunes the parts.
        let rows: Vec<ReadEvent> = within(
            self.client
                .query(
                    "SELECT ?fields FROM playback_events
                     WHERE inserted >= toDateTime(?)
                       AND (inserted, view_id, seq) > (toDateTime(?), ?, ?)
                       AND inserted <= now() - ?
                     ORDER BY inserted, view_id, seq
                     LIMIT ?",
                )
                .bind(after.inserted)
                .bind(after.inserted)
                .bind(&after.view_id)
                .bind(after.seq)
                .bind(self.settle_secs)
                .bind(limit as u64)
                .fetch_all(),
        )
        .await
        .context("reading playback events from ClickHouse")?;
        let taken = match rows.last() {
            Some(last) => Taken::Position(Position {
                inserted: last.inserted,
                view_id: last.view_id.clone(),
                seq: last.seq,
            }),
            None => Taken::None,
        };
        let events = rows
            .into_iter()
            .map(|r| Stored {
                view_id: r.view_id,
                seq: r.seq,
                video_id: r.video_id,
                viewer: r.viewer,
                country: r.country,
                device: r.device,
                issued_at: r.issued_at,
                received_at: r.received_at,
                data: r.data,
            })
            .collect();
        Ok((events, taken))
    }
}

async fn within<T>(
    request: impl std::future::Future<Output = clickhouse::error::Result<T>>,
) -> anyhow::Result<T> {
    Ok(tokio::time::timeout(TIMEOUT, request)
        .await
        .context("ClickHouse did not answer in time")??)
}
