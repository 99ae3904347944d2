//! Endpoints and their delivery log, as their owner manages them. Every query names the owner:
//! another caller's endpoint is "not found", never "forbidden".

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use sqlx::AnyPool;

use super::{EventType, DELIVER};
use crate::clock::now;
use crate::jobs::{self, NewJob, OnConflict};
use crate::keys::random_bytes;

/// An endpoint, as its owner sees it (the secret is shown only when made: [`create`],
/// [`rotate`]).
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Endpoint {
    /// `we_…`.
    pub id: String,
    /// Where deliveries go.
    pub url: String,
    /// The event types it receives.
    #[serde(serialize_with = "comma_list")]
    pub events: String,
    /// Whether it hears every creator's events (an admin's), not only its owner's.
    #[serde(serialize_with = "crate::db::flag")]
    pub all_creators: i64,
    /// Until when the secret before the last rotation still signs too (0: not rotating).
    pub previous_secret_until: i64,
    /// Unix seconds.
    pub created_at: i64,
}

fn comma_list<S: serde::Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.split(',').filter(|e| !e.is_empty()))
}

const COLUMNS: &str =
    "id, url, events, all_creators, previous_until AS previous_secret_until, created_at";

fn new_secret() -> String {
    format!("whsec_{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()))
}

/// The stored form of a set of event types.
pub fn events_column(events: &[EventType]) -> String {
    EventType::ALL
        .iter()
        .filter(|e| events.contains(e))
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// What [`create`] makes.
pub struct NewEndpoint<'a> {
    /// The owner.
    pub owner: &'a str,
    /// Checked by [`super::target::check`].
    pub url: &'a str,
    /// Non-empty.
    pub events: &'a [EventType],
    /// Every creator's events (the caller is an admin).
    pub all_creators: bool,
}

/// Registers an endpoint and returns it with its secret, unless its owner has `max` already
/// (`None`).
pub async fn create(
    db: &AnyPool,
    new: &NewEndpoint<'_>,
    max: usize,
) -> anyhow::Result<Option<(Endpoint, String)>> {
    let mut tx = db.begin().await?;
    // A write first, as for channels: concurrent registrations by one owner count one after
    // the other, so the cap holds.
    sqlx::query("UPDATE users SET role = role WHERE id = $1")
        .bind(new.owner)
        .execute(&mut *tx)
        .await?;
    let have: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM webhook_endpoints WHERE owner_id = $1")
            .bind(new.owner)
            .fetch_one(&mut *tx)
            .await?;
    if have >= max as i64 {
        return Ok(None);
    }
    let secret = new_secret();
    let endpoint = sqlx::query_as(&format!(
        "INSERT INTO webhook_endpoints (id, owner_id, url, events, all_creators, secret, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    ))
    .bind(format!(
        "we_{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<9>())
    ))
    .bind(new.owner)
    .bind(new.url)
    .bind(events_column(new.events))
    .bind(i64::from(new.all_creators))
    .bind(&secret)
    .bind(now() as i64)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some((endpoint, secret)))
}

/// The owner's endpoints, oldest first.
pub async fn list(db: &AnyPool, owner: &str) -> sqlx::Result<Vec<Endpoint>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM webhook_endpoints WHERE owner_id = $1 ORDER BY created_at, id"
    ))
    .bind(owner)
    .fetch_all(db)
    .await
}

/// One of the owner's endpoints.
pub async fn get(db: &AnyPool, owner: &str, id: &str) -> sqlx::Result<Option<Endpoint>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM webhook_endpoints WHERE owner_id = $1 AND id = $2"
    ))
    .bind(owner)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Changes an endpoint's URL and/or events; `None` when the owner has no such endpoint.
/// Pending deliveries go to the new URL.
pub async fn update(
    db: &AnyPool,
    owner: &str,
    id: &str,
    url: Option<&str>,
    events: Option<&[EventType]>,
) -> sqlx::Result<Option<Endpoint>> {
    sqlx::query_as(&format!(
        "UPDATE webhook_endpoints SET url = COALESCE($1, url), events = COALESCE($2, events)
         WHERE owner_id = $3 AND id = $4 RETURNING {COLUMNS}"
    ))
    .bind(url)
    .bind(events.map(events_column))
    .bind(owner)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Removes an endpoint with its deliveries (their jobs find nothing to send and end).
pub async fn delete(db: &AnyPool, owner: &str, id: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM webhook_endpoints WHERE owner_id = $1 AND id = $2")
        .bind(owner)
        .bind(id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives the endpoint a new secret and returns it; the old one keeps signing beside it for
/// `overlap_secs` (0: it stops at once). A secret older than the old one stops at once: one
/// overlap at a time, as Stripe rolls them. `None` when the owner has no such endpoint.
pub async fn rotate(
    db: &AnyPool,
    owner: &str,
    id: &str,
    overlap_secs: u64,
) -> sqlx::Result<Option<(Endpoint, String)>> {
    let secret = new_secret();
    let until = if overlap_secs == 0 {
        0
    } else {
        now() + overlap_secs
    };
    let endpoint = sqlx::query_as(&format!(
        "UPDATE webhook_endpoints SET previous_secret = secret, previous_until = $1, secret = $2
         WHERE owner_id = $3 AND id = $4 RETURNING {COLUMNS}"
    ))
    .bind(until as i64)
    .bind(&secret)
    .bind(owner)
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(endpoint.map(|e| (e, secret)))
}

/// One line of an endpoint's delivery log.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Delivery {
    /// The event's id (what the receiver de-duplicates on).
    pub event: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its video.
    pub video: String,
    /// `pending`, `delivered` or `failed` (given up on).
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// The HTTP status of the last attempt, if it got one.
    pub last_status: Option<i64>,
    /// Why the last attempt failed, in our words.
    pub last_error: Option<String>,
    /// Unix seconds.
    pub last_attempt_at: Option<i64>,
    /// Unix seconds.
    pub delivered_at: Option<i64>,
    /// When a pending delivery is next tried (Unix seconds).
    pub next_attempt_at: Option<i64>,
    /// The event's time.
    pub created_at: i64,
}

/// The endpoint's latest `limit` deliveries, newest first; `None` when the owner has no such
/// endpoint.
pub async fn deliveries(
    db: &AnyPool,
    owner: &str,
    id: &str,
    limit: u32,
) -> sqlx::Result<Option<Vec<Delivery>>> {
    if get(db, owner, id).await?.is_none() {
        return Ok(None);
    }
    let rows = sqlx::query_as(
        "SELECT e.id AS event, e.type AS kind, e.video_id AS video, d.state, d.attempts,
                d.last_status, d.last_error, d.last_attempt_at, d.delivered_at,
                CASE WHEN d.state = 'pending' THEN j.run_at END AS next_attempt_at,
                e.created_at
         FROM webhook_deliveries d
         JOIN webhook_events e ON e.seq = d.event_seq
         LEFT JOIN jobs j ON j.kind = $1 AND j.key = d.endpoint_id || ':' || CAST(d.event_seq AS TEXT)
         WHERE d.endpoint_id = $2
         ORDER BY d.event_seq DESC LIMIT $3",
    )
    .bind(DELIVER)
    .bind(id)
    .bind(i64::from(limit))
    .fetch_all(db)
    .await?;
    Ok(Some(rows))
}

/// What [`send_again`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Again {
    /// Queued: it is sent again at once, and retried for a day from now if it fails.
    Queued,
    /// No such endpoint of the owner's.
    NoEndpoint,
    /// The endpoint never had that event.
    NoDelivery,
}

/// Sends an event to an endpoint again (a receiver that lost it, or a failed delivery after
/// its endpoint was fixed), under the same event id and body.
pub async fn send_again(db: &AnyPool, owner: &str, id: &str, event: &str) -> sqlx::Result<Again> {
    // The job row before the delivery's, in the order a delivery's own record takes them (no
    // deadlock with an attempt finishing meanwhile); IMMEDIATE on SQLite, as this reads first.
    let mut tx = crate::db::begin_write(db).await?;
    let seq: Option<i64> = sqlx::query_scalar(
        "SELECT d.event_seq FROM webhook_deliveries d
         JOIN webhook_endpoints w ON w.id = d.endpoint_id
         JOIN webhook_events e ON e.seq = d.event_seq
         WHERE w.owner_id = $1 AND w.id = $2 AND e.id = $3",
    )
    .bind(owner)
    .bind(id)
    .bind(event)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(seq) = seq else {
        drop(tx);
        return Ok(match get(db, owner, id).await? {
            Some(_) => Again::NoDelivery,
            None => Again::NoEndpoint,
        });
    };
    let at = now();
    // A new job row: a worker still on the old one is fenced off.
    let key = format!("{id}:{seq}");
    jobs::enqueue(
        &mut tx,
        &NewJob::new(DELIVER, &key),
        OnConflict::Replace,
        at,
    )
    .await?;
    sqlx::query(
        "UPDATE webhook_deliveries SET state = 'pending', retry_from = $1
         WHERE endpoint_id = $2 AND event_seq = $3",
    )
    .bind(at as i64)
    .bind(id)
    .bind(seq)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Again::Queued)
}
