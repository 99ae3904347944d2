//! One durable job queue for every kind of background work: Stripe events, the stages and
//! renditions of a transcode, each machine's upload sweep, and whatever comes next
//! (notification fan-out, webhooks, analytics rollups).
//!
//! A job is a row of `jobs` (migration 0019), so it is as durable as the write that queued it:
//! [`enqueue`] takes the caller's connection, and inside the caller's transaction "write +
//! enqueue" commits or rolls back as one. A key per kind makes enqueueing idempotent (a Stripe
//! event id: a redelivered webhook is applied once).
//!
//! - **Claim** ([`claim`]): one `UPDATE … RETURNING` takes the most urgent due job of a
//!   worker's kinds and its lease. On PostgreSQL the inner select is `FOR UPDATE SKIP LOCKED`,
//!   so workers on many machines pass over each other's rows instead of queueing on them;
//!   SQLite has one writer at a time anyway.
//! - **Lease and heartbeat**: the [`Runner`] renews a running job's lease at a third of its
//!   length ([`heartbeat`]); a worker that dies stops renewing, and its job is claimed again
//!   once the lease has run out.
//! - **Fencing**: every claim raises `attempts`, and completing, failing, renewing or releasing
//!   a job counts only while `attempts` still matches the claim's ([`Lease`]). A worker whose
//!   lease was taken over changes nothing.
//! - **Backoff and dead letter** ([`fail`], [`Policy`]): a failed attempt waits
//!   `base · 2^(attempt-1)`, at most `cap`; after the kind's last attempt (or an error its
//!   handler calls permanent) the job is `dead`, outcome `failed`, its last error kept.
//! - **Shutdown**: the runner stops claiming when its token is cancelled, drops the handlers
//!   that are running (every handler commits its effects with its job's completion, or is
//!   idempotent, so any await is a safe point) and releases their leases ([`release`]), giving
//!   the attempt back, so a restart takes the work at once; a claim that completes after the
//!   cancel is released unstarted.
//!
//! The edge outbox is not a job kind: see [`crate::outbox`] for why.

mod queue;
mod runner;
mod stats;

pub use queue::{
    again, checkpoint, claim, complete, enqueue, fail, heartbeat, release, Beat, Fate, Job, Lease,
    NewJob, OnConflict, Policy,
};
pub use runner::{Finished, Handler, Lane, Runner};
pub use stats::{stats, Gauges, KindStats};
