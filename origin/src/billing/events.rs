//! Webhook events: parsed, stored once per event id as a job ([`KIND`], keyed by the id, the
//! body its payload), and applied by a worker that survives restarts ([`crate::jobs`]: an
//! event whose worker died is taken again when its lease runs out).

use serde_json::Value;
use sqlx::AnyPool;
use tokio::sync::watch;

use crate::billing::apply::{self, Outcome};
use crate::clock::now;
use crate::jobs::{self, Finished, Job, Lane, NewJob, OnConflict, Policy};
use crate::outbox::Waker;
use crate::settings::BillingSettings;

/// The job kind of a stored event.
pub const KIND: &str = "billing.event";

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
    let job = NewJob {
        payload: body,
        ..NewJob::new(KIND, &event.id)
    };
    jobs::enqueue(&mut *db.acquire().await?, &job, OnConflict::Keep, now()).await
}

/// Attempts before an event is given up on (outcome `failed`, its last error kept).
pub const MAX_ATTEMPTS: i64 = 8;

/// A 30 s lease; retries after 2 s, doubling, at most an hour apart.
const POLICY: Policy = Policy {
    lease_secs: 30,
    max_attempts: MAX_ATTEMPTS,
    backoff_base_secs: 2,
    backoff_cap_secs: 3600,
};

/// The worker: one event at a time, woken when an event is stored.
pub fn lane(db: AnyPool, cfg: BillingSettings, outbox: Waker, wake: watch::Receiver<u64>) -> Lane {
    Lane::new(&[KIND], POLICY, Applier { db, cfg, outbox }).woken_by(wake)
}

struct Applier {
    db: AnyPool,
    cfg: BillingSettings,
    outbox: Waker,
}

/// A stored body that no longer parses (it did when it was received).
#[derive(Debug, thiserror::Error)]
#[error("stored event unreadable: {0}")]
struct Unreadable(&'static str);

#[async_trait::async_trait]
impl jobs::Handler for Applier {
    /// Applies the event in one transaction that also completes its job.
    async fn run(&self, job: &Job) -> anyhow::Result<Finished> {
        let event = parse(job.payload.as_bytes()).map_err(Unreadable)?;
        let mut tx = crate::db::begin_write(&self.db).await?;
        let outcome = apply::apply(&mut tx, &self.cfg, &event, now()).await?;
        if !jobs::complete(&mut tx, job.lease(), outcome.name(), now()).await? {
            return Ok(Finished::Recorded); // another worker has it now: rolled back
        }
        tx.commit().await?;
        if outcome == Outcome::Applied {
            self.outbox.wake();
        }
        tracing::info!(event = %event.id, kind = %event.kind, outcome = outcome.name(), "billing event");
        Ok(Finished::Recorded)
    }

    fn permanent(&self, error: &anyhow::Error) -> bool {
        error.is::<Unreadable>()
    }
}
