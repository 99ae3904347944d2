//! The queue's statements. Times are Unix seconds passed in by the caller, so tests can move
//! the clock.

use sqlx::{AnyConnection, AnyPool};

use crate::db::Backend;

/// How a kind's jobs are leased and retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How long a claim owns a job without a heartbeat (at least 3 s: it is renewed at a
    /// third of it).
    pub lease_secs: u64,
    /// Attempts before a job is dead-lettered.
    pub max_attempts: i64,
    /// The wait after a first failed attempt; it doubles with each further one…
    pub backoff_base_secs: u64,
    /// …up to this.
    pub backoff_cap_secs: u64,
}

impl Policy {
    /// The lease, never under 3 s.
    pub fn lease(&self) -> u64 {
        self.lease_secs.max(3)
    }

    /// The wait after failed attempt `attempt` (1-based): `base · 2^(attempt-1)`, at most `cap`.
    pub fn backoff(&self, attempt: i64) -> u64 {
        let doublings = (attempt - 1).clamp(0, 63) as u32;
        self.backoff_base_secs
            .saturating_mul(1u64 << doublings)
            .min(self.backoff_cap_secs)
    }
}

/// A job to queue.
#[derive(Debug, Clone, Copy)]
pub struct NewJob<'a> {
    /// What runs it (`billing.event`, `transcode.encode`, …).
    pub kind: &'a str,
    /// Unique per kind when set ([`OnConflict`] says what a second one does).
    pub key: Option<&'a str>,
    /// Whatever the handler needs beyond the key.
    pub payload: &'a str,
    /// Not before this time.
    pub run_at: u64,
    /// Higher runs first among a worker's due jobs.
    pub priority: i64,
}

impl<'a> NewJob<'a> {
    /// A job of `kind` keyed `key`, due at once, no payload, priority 0.
    pub fn new(kind: &'a str, key: &'a str) -> Self {
        Self {
            kind,
            key: Some(key),
            payload: "",
            run_at: 0,
            priority: 0,
        }
    }
}

/// What [`enqueue`] does when a job of the same kind and key is stored (done ones included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    /// Leave it: the new one is a duplicate.
    Keep,
    /// Replace it with the new one (a new row: any worker of the old one is fenced off).
    Replace,
    /// Keep it, but make it due no later than the new one's time if it is waiting.
    Sooner,
    /// Keep it while it is waiting or running; replace it once it has finished (done or dead):
    /// one live job per key, run again as often as it is asked for afterwards.
    Renew,
}

/// Queues a job on `conn` (a transaction's, to commit it with the write it belongs to);
/// `false` when [`OnConflict`] left a stored one as it was.
pub async fn enqueue(
    conn: &mut AnyConnection,
    job: &NewJob<'_>,
    on_conflict: OnConflict,
    now: u64,
) -> sqlx::Result<bool> {
    let finished = match on_conflict {
        OnConflict::Replace => Some(""),
        OnConflict::Renew => Some(" AND state IN ('done', 'dead')"),
        OnConflict::Keep | OnConflict::Sooner => None,
    };
    if let (Some(finished), Some(key)) = (finished, job.key) {
        sqlx::query(&format!(
            "DELETE FROM jobs WHERE kind = $1 AND key = $2{finished}"
        ))
        .bind(job.kind)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    }
    let conflict = match on_conflict {
        OnConflict::Keep | OnConflict::Replace | OnConflict::Renew => "DO NOTHING",
        OnConflict::Sooner => {
            "DO UPDATE SET run_at = excluded.run_at
             WHERE jobs.state = 'queued' AND jobs.run_at > excluded.run_at"
        }
    };
    let done = sqlx::query(&format!(
        "INSERT INTO jobs (kind, key, payload, priority, state, run_at, created_at)
         VALUES ($1, $2, $3, $4, 'queued', $5, $6) ON CONFLICT (kind, key) {conflict}"
    ))
    .bind(job.kind)
    .bind(job.key)
    .bind(job.payload)
    .bind(job.priority)
    .bind(job.run_at as i64)
    .bind(now as i64)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A claimed job.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    /// Its row.
    pub id: i64,
    /// Its kind.
    pub kind: String,
    /// Its key, if it was queued with one.
    pub key: Option<String>,
    /// Its payload.
    pub payload: String,
    /// Its priority.
    pub priority: i64,
    /// This claim's attempt (1 for the first): the fencing token.
    pub attempts: i64,
}

impl Job {
    /// What fences this claim.
    pub fn lease(&self) -> Lease {
        Lease {
            id: self.id,
            attempt: self.attempts,
        }
    }

    /// The key (empty for a job queued without one).
    pub fn key(&self) -> &str {
        self.key.as_deref().unwrap_or_default()
    }
}

/// One claim of one job: every change to the job matches on both, so it counts only while
/// the claim is still the job's newest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The job's row.
    pub id: i64,
    /// The claim's attempt.
    pub attempt: i64,
}

/// Takes the most urgent due job of `kinds` (only the one keyed `key`, when given: work that
/// belongs to one machine) with a lease of `lease_secs`. A job whose lease ran out is due
/// again: its worker died.
pub async fn claim(
    db: &AnyPool,
    kinds: &[&str],
    key: Option<&str>,
    lease_secs: u64,
    now: u64,
) -> sqlx::Result<Option<Job>> {
    let mut conn = db.acquire().await?;
    let skip_locked = match Backend::of(&conn) {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "", // one writer at a time anyway
    };
    let marks: Vec<String> = (0..kinds.len()).map(|i| format!("${}", i + 3)).collect();
    let only_key = match key {
        Some(_) => format!(" AND key = ${}", kinds.len() + 3),
        None => String::new(),
    };
    let sql = format!(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = $1
         WHERE id = (SELECT id FROM jobs
                     WHERE kind IN ({}){only_key} AND state IN ('queued', 'running')
                       AND run_at <= $2 AND lease_until <= $2
                     ORDER BY priority DESC, id LIMIT 1{skip_locked})
           AND state IN ('queued', 'running') AND lease_until <= $2
         RETURNING id, kind, key, payload, priority, attempts",
        marks.join(", ")
    );
    let mut q = sqlx::query_as::<_, Job>(&sql)
        .bind((now + lease_secs) as i64)
        .bind(now as i64);
    for kind in kinds {
        q = q.bind(*kind);
    }
    if let Some(key) = key {
        q = q.bind(key);
    }
    q.fetch_optional(&mut *conn).await
}

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// The claim is the job's: its lease is extended.
    Held,
    /// The claim recorded the job's end ([`complete`], [`fail`]): nothing left to renew.
    Settled,
    /// Another claim has the job, or it was replaced: its worker must stop.
    Lost,
}

/// Extends the lease to `now + lease_secs`, if the claim still holds it.
pub async fn heartbeat(
    db: &AnyPool,
    lease: Lease,
    lease_secs: u64,
    now: u64,
) -> sqlx::Result<Beat> {
    let done = sqlx::query(
        "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND attempts = $3 AND state = 'running'",
    )
    .bind((now + lease_secs) as i64)
    .bind(lease.id)
    .bind(lease.attempt)
    .execute(db)
    .await?;
    if done.rows_affected() == 1 {
        return Ok(Beat::Held);
    }
    let attempts: Option<i64> = sqlx::query_scalar("SELECT attempts FROM jobs WHERE id = $1")
        .bind(lease.id)
        .fetch_optional(db)
        .await?;
    Ok(match attempts {
        Some(n) if n == lease.attempt => Beat::Settled,
        _ => Beat::Lost,
    })
}

/// Marks the job done with `outcome` (in the transaction that commits its effects, when it
/// has any); `false` when the claim is no longer the job's, and nothing changed.
pub async fn complete(
    conn: &mut AnyConnection,
    lease: Lease,
    outcome: &str,
    now: u64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'done', outcome = $1, lease_until = 0, finished_at = $2
         WHERE id = $3 AND attempts = $4 AND state = 'running'",
    )
    .bind(outcome)
    .bind(now as i64)
    .bind(lease.id)
    .bind(lease.attempt)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Stores a running job's progress as its payload on `conn` (the transaction of the work done so
/// far), so a claim after a crash resumes from there; `false` when the claim is no longer the
/// job's, and nothing changed (the caller rolls its work back).
pub async fn checkpoint(
    conn: &mut AnyConnection,
    lease: Lease,
    payload: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs SET payload = $1 WHERE id = $2 AND attempts = $3 AND state = 'running'",
    )
    .bind(payload)
    .bind(lease.id)
    .bind(lease.attempt)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What became of a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Queued again for this time.
    Retry {
        /// When.
        at: u64,
    },
    /// Dead-lettered: `dead`, outcome `failed`, the error kept.
    Dead,
}

/// Records a failed attempt with its error (at most 500 characters are kept): queued again
/// after the policy's backoff, or dead after its last attempt or a `permanent` error. `None`
/// when the claim is no longer the job's, and nothing changed.
pub async fn fail(
    conn: &mut AnyConnection,
    lease: Lease,
    policy: &Policy,
    error: &str,
    permanent: bool,
    now: u64,
) -> sqlx::Result<Option<Fate>> {
    let fate = if permanent || lease.attempt >= policy.max_attempts {
        Fate::Dead
    } else {
        Fate::Retry {
            at: now + policy.backoff(lease.attempt),
        }
    };
    let (state, outcome, run_at, finished_at) = match fate {
        Fate::Dead => ("dead", Some("failed"), None, Some(now as i64)),
        Fate::Retry { at } => ("queued", None, Some(at as i64), None),
    };
    let done = sqlx::query(
        "UPDATE jobs SET state = $1, outcome = $2, run_at = COALESCE($3, run_at),
             finished_at = $4, last_error = $5, lease_until = 0
         WHERE id = $6 AND attempts = $7 AND state = 'running'",
    )
    .bind(state)
    .bind(outcome)
    .bind(run_at)
    .bind(finished_at)
    .bind(error.chars().take(500).collect::<String>())
    .bind(lease.id)
    .bind(lease.attempt)
    .execute(conn)
    .await?;
    Ok((done.rows_affected() == 1).then_some(fate))
}

/// Finishes a periodic job's run and queues its next at `run_at`: a new row under the same
/// kind and key (its attempts start again; the new id fences this claim for good). `false`
/// when the claim is no longer the job's.
pub async fn again(db: &AnyPool, job: &Job, run_at: u64, now: u64) -> sqlx::Result<bool> {
    let mut tx = db.begin().await?;
    let lease = job.lease();
    let gone =
        sqlx::query("DELETE FROM jobs WHERE id = $1 AND attempts = $2 AND state = 'running'")
            .bind(lease.id)
            .bind(lease.attempt)
            .execute(&mut *tx)
            .await?;
    if gone.rows_affected() == 0 {
        return Ok(false);
    }
    let next = NewJob {
        kind: &job.kind,
        key: job.key.as_deref(),
        payload: &job.payload,
        run_at,
        priority: job.priority,
    };
    enqueue(&mut tx, &next, OnConflict::Keep, now).await?;
    tx.commit().await?;
    Ok(true)
}

/// Gives a job back unfinished (its worker is stopping): due at once, its attempt not
/// counted. `false` when the claim is no longer the job's.
pub async fn release(db: &AnyPool, lease: Lease) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'queued', lease_until = 0, attempts = attempts - 1
         WHERE id = $1 AND attempts = $2 AND state = 'running'",
    )
    .bind(lease.id)
    .bind(lease.attempt)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::Policy;

    #[test]
    fn backoff_doubles_from_its_base_up_to_its_cap() {
        let p = Policy {
            lease_secs: 30,
            max_attempts: 8,
            backoff_base_secs: 2,
            backoff_cap_secs: 3600,
        };
        let waits: Vec<u64> = (1..=13).map(|a| p.backoff(a)).collect();
        assert_eq!(
            waits,
            [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3600, 3600]
        );
        assert_eq!(p.backoff(0), 2, "no attempt counts as the first");
        assert_eq!(p.backoff(i64::MAX), 3600, "no overflow");
        assert_eq!(Policy { lease_secs: 1, ..p }.lease(), 3);
    }
}
