//! Webhook events: parsed, stored once per event id, and applied by a worker that survives
//! restarts (the event table is the queue: a lease marks the worker that owns an event, and
//! an event whose worker died is taken again when the lease runs out).

use std::time::Duration;

use serde_json::Value;
use sqlx::AnyPool;
use tokio::sync::watch;

use crate::billing::apply::{self, Outcome};
use crate::clock::now;
use crate::outbox::Waker;
use crate::settings::BillingSettings;

/// An event as the worker needs it.
#[derive(Debug, Clone)]
pub struct Event {
    /// `evt_…`: deliveries of one event share it.
    pub id: String,
    /// `customer.subscription.updated`, …
    pub kind: String,
    /// When Stripe made the event (seconds): orders the events of one subscription.
    pub created: i64,
    /// `data.object`.
    pub object: Value,
}

/// Reads what a verified body must hold; `Err` says what is missing.
pub fn parse(body: &[u8]) -> Result<Event, &'static str> {
    let v: Value = serde_json::from_slice(body).map_err(|_| "the body is not JSON")?;
    let id = v["id"].as_str().filter(|s| (1..=255).contains(&s.len()));
    let kind = v["type"].as_str().filter(|s| (1..=255).contains(&s.len()));
    let (Some(id), Some(kind)) = (id, kind) else {
        return Err("the event has no id or type");
    };
    let created = v["created"]
        .as_i64()
        .ok_or("the event has no created time")?;
    let object = v["data"]["object"].clone();
    if !object.is_object() {
        return Err("the event has no data.object");
    }
    Ok(Event {
        id: id.to_owned(),
        kind: kind.to_owned(),
        created,
        object,
    })
}

/// Stores an event unless one with its id is already stored; `false` for a redelivery.
pub async fn store(db: &AnyPool, event: &Event, body: &str) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO billing_events (id, type, created, payload, received_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&event.id)
    .bind(&event.kind)
    .bind(event.created)
    .bind(body)
    .bind(now() as i64)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Attempts before an event is given up on (outcome `failed`, its last error kept).
pub const MAX_ATTEMPTS: i64 = 8;
/// How long a worker owns an event it took.
const LEASE_SECS: u64 = 30;

fn backoff(attempts: i64) -> u64 {
    (1u64 << attempts.clamp(1, 12)).min(3600)
}

/// Takes the oldest due event, if any: one statement, so two workers never take the same one.
async fn claim(db: &AnyPool) -> sqlx::Result<Option<(i64, i64, Event)>> {
    let t = now() as i64;
    let row: Option<(i64, String, String, i64, String, i64)> = sqlx::query_as(
        "UPDATE billing_events SET lease_until = $1, attempts = attempts + 1
         WHERE seq = (SELECT seq FROM billing_events
                      WHERE processed_at IS NULL AND next_attempt_at <= $2 AND lease_until <= $2
                      ORDER BY seq LIMIT 1)
           AND processed_at IS NULL AND lease_until <= $2
         RETURNING seq, id, type, created, payload, attempts",
    )
    .bind(t + LEASE_SECS as i64)
    .bind(t)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(seq, id, kind, created, payload, attempts)| {
        let object = serde_json::from_str::<Value>(&payload)
            .map(|v| v["data"]["object"].clone())
            .unwrap_or(Value::Null);
        (
            seq,
            attempts,
            Event {
                id,
                kind,
                created,
                object,
            },
        )
    }))
}

/// Applies one due event; `false` when none was due.
pub async fn run_once(db: &AnyPool, cfg: &BillingSettings, outbox: &Waker) -> anyhow::Result<bool> {
    let Some((seq, attempts, event)) = claim(db).await? else {
        return Ok(false);
    };
    let mut tx = crate::db::begin_write(db).await?;
    match apply::apply(&mut tx, cfg, &event, now()).await {
        Ok(outcome) => {
            sqlx::query(
                "UPDATE billing_events SET processed_at = $1, outcome = $2, lease_until = 0
                 WHERE seq = $3",
            )
            .bind(now() as i64)
            .bind(outcome.name())
            .bind(seq)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            if outcome == Outcome::Applied {
                outbox.wake();
            }
            tracing::info!(event = %event.id, kind = %event.kind, outcome = outcome.name(), "billing event");
        }
        Err(e) => {
            drop(tx);
            let give_up = attempts >= MAX_ATTEMPTS;
            tracing::warn!(event = %event.id, kind = %event.kind, attempts, give_up, error = %e, "billing event not applied");
            sqlx::query(
                "UPDATE billing_events SET lease_until = 0, last_error = $1, next_attempt_at = $2,
                     processed_at = CASE WHEN $3 THEN $4 ELSE NULL END,
                     outcome = CASE WHEN $3 THEN 'failed' ELSE NULL END
                 WHERE seq = $5",
            )
            .bind(e.to_string().chars().take(500).collect::<String>())
            .bind(now() as i64 + backoff(attempts) as i64)
            .bind(give_up)
            .bind(now() as i64)
            .bind(seq)
            .execute(db)
            .await?;
        }
    }
    Ok(true)
}

/// Wakes the billing worker after an event is stored.
pub fn spawn(db: AnyPool, cfg: BillingSettings, outbox: Waker, mut wake: watch::Receiver<u64>) {
    tokio::spawn(async move {
        loop {
            match run_once(&db, &cfg, &outbox).await {
                Ok(true) => continue,
                Ok(false) => {
                    // Retries come due with time, new events with a wake.
                    let _ = tokio::time::timeout(Duration::from_secs(2), wake.changed()).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "billing worker");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
}
