//! Runs registered handlers: lanes of workers, each claiming its kinds' due jobs, renewing the
//! lease while the handler runs, recording how it ended, and stopping at a safe point when
//! told to.

use std::sync::Arc;
use std::time::Duration;

use sqlx::AnyPool;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::queue::{self, Beat, Job, Lease, Policy};
use crate::clock::now;

/// How a handler's run ended (an `Err` is a failed attempt: retried or dead-lettered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// Done; the runner records it with this outcome.
    Done(&'static str),
    /// The handler recorded the job's end itself ([`queue::complete`] or [`queue::fail`] in
    /// the transaction of its own effects).
    Recorded,
    /// A periodic job: run it again at this time.
    Again {
        /// When.
        at: u64,
    },
}

/// Does one kind of work. A run may be dropped at any await (its lease lost, or the process
/// stopping): what it commits must commit with the job's completion, or be safe to do again.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Works on `job`.
    async fn run(&self, job: &Job) -> anyhow::Result<Finished>;

    /// Whether `error` can never go away by trying again (the job is then dead at once).
    fn permanent(&self, _error: &anyhow::Error) -> bool {
        false
    }
}

/// Workers for some kinds of jobs, sharing one handler and one policy.
pub struct Lane {
    kinds: Vec<&'static str>,
    policy: Policy,
    handler: Arc<dyn Handler>,
    workers: usize,
    key: Option<String>,
    wake: Option<watch::Receiver<u64>>,
    poll: Duration,
}

impl Lane {
    /// One worker for `kinds` that looks for due jobs every 2 s.
    pub fn new(kinds: &[&'static str], policy: Policy, handler: impl Handler) -> Self {
        Self {
            kinds: kinds.to_vec(),
            policy,
            handler: Arc::new(handler),
            workers: 1,
            key: None,
            wake: None,
            poll: Duration::from_secs(2),
        }
    }

    /// How many jobs of these kinds this process runs at once.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// Only the job keyed `key`: work that belongs to this machine.
    pub fn only_key(mut self, key: String) -> Self {
        self.key = Some(key);
        self
    }

    /// Idle workers look at once when `wake` changes (an enqueue in this process), not only
    /// every poll (jobs queued by other processes sharing the database, retries coming due).
    pub fn woken_by(mut self, wake: watch::Receiver<u64>) -> Self {
        self.wake = Some(wake);
        self
    }

    /// How often an idle worker looks for due jobs.
    pub fn poll(mut self, every: Duration) -> Self {
        self.poll = every;
        self
    }
}

/// The lanes of one process.
pub struct Runner {
    db: AnyPool,
    lanes: Vec<Lane>,
}

impl Runner {
    /// No lanes yet.
    pub fn new(db: AnyPool) -> Self {
        Self {
            db,
            lanes: Vec::new(),
        }
    }

    /// Adds a lane.
    pub fn lane(mut self, lane: Lane) -> Self {
        self.lanes.push(lane);
        self
    }

    /// Starts every worker in `tasks`. When `stop` is cancelled they stop claiming, drop the
    /// handlers they are running, release those jobs and return.
    pub fn spawn(self, tasks: &mut JoinSet<()>, stop: &CancellationToken) {
        for lane in self.lanes {
            let lane = Arc::new(lane);
            for _ in 0..lane.workers {
                tasks.spawn(work(self.db.clone(), lane.clone(), stop.clone()));
            }
        }
    }
}

async fn work(db: AnyPool, lane: Arc<Lane>, stop: CancellationToken) {
    let mut wake = lane.wake.clone();
    while !stop.is_cancelled() {
        let lease = lane.policy.lease();
        match queue::claim(&db, &lane.kinds, lane.key.as_deref(), lease, now()).await {
            // A claim that finished after the stop began (it waited for the database while
            // another worker released its job) is given back unstarted: a stopping runner
            // starts no job it claims after the stop.
            Ok(Some(job)) if stop.is_cancelled() => {
                if let Err(e) = queue::release(&db, job.lease()).await {
                    tracing::error!(kind = %job.kind, key = job.key(), error = %e, "releasing a job claimed while stopping");
                }
            }
            Ok(Some(job)) => {
                run(&db, &lane, job, &stop).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::error!(kinds = ?lane.kinds, error = %e, "claiming a job"),
        }
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(lane.poll) => {}
            _ = woken(&mut wake) => {}
        }
    }
}

async fn woken(wake: &mut Option<watch::Receiver<u64>>) {
    let changed = match wake {
        Some(rx) => rx.changed().await.is_ok(),
        None => false,
    };
    if !changed {
        // No waker, or it is gone: only the poll.
        std::future::pending::<()>().await;
    }
}

enum Ended {
    Returned(anyhow::Result<Finished>),
    LeaseLost,
    Stopped,
}

/// Runs one job under its lease, then records how it ended.
async fn run(db: &AnyPool, lane: &Lane, job: Job, stop: &CancellationToken) {
    let lease = job.lease();
    // Beside the handler, not in turn with it: a handler's transaction may hold the job's row
    // (completing it) while a heartbeat waits for that row.
    let mut beat = tokio::spawn(keep(db.clone(), lease, lane.policy.lease()));
    let mut beating = true;
    let ended = {
        let running = lane.handler.run(&job);
        tokio::pin!(running);
        loop {
            tokio::select! {
                biased;
                result = &mut running => break Ended::Returned(result),
                _ = stop.cancelled() => break Ended::Stopped,
                beat = &mut beat, if beating => match beat {
                    Ok(Beat::Lost) => break Ended::LeaseLost,
                    // Settled: the handler recorded the job's end and is finishing up.
                    _ => beating = false,
                },
            }
        }
        // The handler is dropped here: a child it runs (ffmpeg) is killed with it.
    };
    beat.abort();
    let recorded = match ended {
        Ended::LeaseLost => {
            tracing::warn!(kind = %job.kind, key = job.key(), attempt = lease.attempt, "job lease lost: another worker has it");
            Ok(())
        }
        Ended::Stopped => queue::release(db, lease).await.map(|released| {
            tracing::info!(kind = %job.kind, key = job.key(), released, "job stopped for shutdown");
        }),
        Ended::Returned(result) => record(db, lane, &job, result).await,
    };
    if let Err(e) = recorded {
        // Its lease runs out and it is claimed again.
        tracing::error!(kind = %job.kind, key = job.key(), error = %e, "recording a job's end");
    }
}

/// Renews the lease at a third of its length until the claim no longer holds it.
async fn keep(db: AnyPool, lease: Lease, lease_secs: u64) -> Beat {
    let every = Duration::from_secs(lease_secs) / 3;
    loop {
        tokio::time::sleep(every).await;
        match queue::heartbeat(&db, lease, lease_secs, now()).await {
            Ok(Beat::Held) => {}
            Ok(ended) => return ended,
            // Still ours until the lease runs out; the next beat tries again.
            Err(e) => tracing::warn!(job = lease.id, error = %e, "job heartbeat failed"),
        }
    }
}

async fn record(
    db: &AnyPool,
    lane: &Lane,
    job: &Job,
    result: anyhow::Result<Finished>,
) -> sqlx::Result<()> {
    let lease = job.lease();
    let held = match result {
        Ok(Finished::Recorded) => true,
        Ok(Finished::Done(outcome)) => {
            queue::complete(&mut *db.acquire().await?, lease, outcome, now()).await?
        }
        Ok(Finished::Again { at }) => queue::again(db, job, at, now()).await?,
        Err(e) => {
            let error = format!("{e:#}");
            let permanent = lane.handler.permanent(&e);
            let mut conn = db.acquire().await?;
            let fate =
                queue::fail(&mut conn, lease, &lane.policy, &error, permanent, now()).await?;
            if let Some(fate) = fate {
                tracing::warn!(kind = %job.kind, key = job.key(), attempt = lease.attempt, ?fate, %error, "job failed");
            }
            fate.is_some()
        }
    };
    if !held {
        tracing::warn!(kind = %job.kind, key = job.key(), attempt = lease.attempt, "job finished after its lease was taken over: not recorded");
    }
    Ok(())
}
