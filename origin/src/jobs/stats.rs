//! What the queue holds, per kind, for metrics: two grouped reads, the pending one on the
//! partial index of waiting and running jobs.

use std::collections::BTreeMap;

use sqlx::AnyPool;

/// One kind's jobs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindStats {
    /// The kind.
    pub kind: String,
    /// Due and waiting for a worker (a dead worker's job counts here once its lease ran out).
    pub due: u64,
    /// Waiting for a later time: retries in their backoff, periodic jobs.
    pub scheduled: u64,
    /// Held under a live lease.
    pub running: u64,
    /// How long the oldest due job has waited past its time (its creation for one due at once,
    /// queued with `run_at` 0), seconds (0 when none is due).
    pub oldest_due_secs: u64,
    /// Finished jobs by outcome (`applied`, `stale`, …; `failed` for dead letters).
    pub outcomes: BTreeMap<String, u64>,
}

#[derive(sqlx::FromRow)]
struct Pending {
    kind: String,
    due: i64,
    scheduled: i64,
    running: i64,
    oldest_due: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct Outcomes {
    kind: String,
    outcome: Option<String>,
    jobs: i64,
}

/// Every kind with jobs stored, by name.
pub async fn stats(db: &AnyPool) -> sqlx::Result<Vec<KindStats>> {
    let now = crate::clock::now();
    let pending: Vec<Pending> = sqlx::query_as(
        "SELECT kind,
             COUNT(CASE WHEN lease_until <= $1 AND run_at <= $1 THEN 1 END) AS due,
             COUNT(CASE WHEN lease_until <= $1 AND run_at > $1 THEN 1 END) AS scheduled,
             COUNT(CASE WHEN lease_until > $1 THEN 1 END) AS running,
             MIN(CASE WHEN lease_until <= $1 AND run_at <= $1
                      THEN CASE WHEN run_at > created_at THEN run_at ELSE created_at END
                 END) AS oldest_due
         FROM jobs WHERE state IN ('queued', 'running') GROUP BY kind",
    )
    .bind(now as i64)
    .fetch_all(db)
    .await?;
    let finished: Vec<Outcomes> = sqlx::query_as(
        "SELECT kind, outcome, COUNT(*) AS jobs FROM jobs WHERE state IN ('done', 'dead')
         GROUP BY kind, outcome",
    )
    .fetch_all(db)
    .await?;
    let mut kinds: BTreeMap<String, KindStats> = BTreeMap::new();
    fn entry(kinds: &mut BTreeMap<String, KindStats>, kind: String) -> &mut KindStats {
        kinds.entry(kind.clone()).or_insert_with(|| KindStats {
            kind,
            ..KindStats::default()
        })
    }
    for p in pending {
        let k = entry(&mut kinds, p.kind);
        k.due = p.due as u64;
        k.scheduled = p.scheduled as u64;
        k.running = p.running as u64;
        k.oldest_due_secs = p.oldest_due.map_or(0, |t| now.saturating_sub(t as u64));
    }
    for f in finished {
        let k = entry(&mut kinds, f.kind);
        let outcome = f.outcome.unwrap_or_else(|| "done".into());
        *k.outcomes.entry(outcome).or_default() += f.jobs as u64;
    }
    Ok(kinds.into_values().collect())
}

/// The queue's gauges per kind, read from [`stats`] at every metrics scrape: jobs due, waiting
/// for a later time and running, the oldest due job's wait, and finished jobs by outcome.
pub struct Gauges {
    /// The database.
    pub db: AnyPool,
}

#[async_trait::async_trait]
impl crate::metrics::GaugeSource for Gauges {
    fn name(&self) -> &'static str {
        "job queue"
    }

    async fn read(&self) -> anyhow::Result<Vec<crate::metrics::GaugeFamily>> {
        use crate::metrics::GaugeFamily;
        let kinds = stats(&self.db).await?;
        let per_kind = |name, help, value: fn(&KindStats) -> u64| GaugeFamily {
            name,
            help,
            samples: kinds
                .iter()
                .map(|k| (vec![("kind", k.kind.clone())], value(k) as f64))
                .collect(),
        };
        let finished = kinds
            .iter()
            .flat_map(|k| {
                k.outcomes.iter().map(|(outcome, n)| {
                    let labels = vec![("kind", k.kind.clone()), ("outcome", outcome.clone())];
                    (labels, *n as f64)
                })
            })
            .collect();
        Ok(vec![
            per_kind(
                "jobs_due",
                "Jobs due and waiting for a worker, by kind",
                |k| k.due,
            ),
            per_kind(
                "jobs_scheduled",
                "Jobs waiting for a later time (backoff, periodic), by kind",
                |k| k.scheduled,
            ),
            per_kind(
                "jobs_running",
                "Jobs held under a live lease, by kind",
                |k| k.running,
            ),
            per_kind(
                "jobs_oldest_due_age_seconds",
                "How long the oldest due job has waited past its time (0: none), by kind",
                |k| k.oldest_due_secs,
            ),
            GaugeFamily {
                name: "jobs_finished",
                help: "Finished jobs kept in the queue, by kind and outcome (failed: dead letters)",
                samples: finished,
            },
        ])
    }
}
