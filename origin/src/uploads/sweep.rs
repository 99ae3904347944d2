//! Each machine's sweep of abandoned uploads, every ten minutes: a periodic job keyed by the
//! machine (its host name and upload folder), since partial files stay on the machine that
//! received them. Only a process on that machine takes it ([`jobs::Lane::only_key`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::AnyPool;

use crate::clock::now;
use crate::jobs::{self, Finished, Job, Lane, NewJob, OnConflict, Policy};

/// The job kind.
pub const KIND: &str = "uploads.sweep";
const EVERY_SECS: u64 = 600;
/// A plain upload's partial file untouched this long was left by a crash.
const STALE_SECS: u64 = 3600;

/// A failed sweep is tried again at its usual time, and never given up on.
const POLICY: Policy = Policy {
    lease_secs: 60,
    max_attempts: i64::MAX,
    backoff_base_secs: EVERY_SECS,
    backoff_cap_secs: EVERY_SECS,
};

/// Makes this machine's sweep due now (a process starting sweeps first, as it always has) and
/// returns the lane that runs it.
pub async fn lane(db: &AnyPool, root: PathBuf) -> sqlx::Result<Lane> {
    let node = node(&root);
    let job = NewJob::new(KIND, &node);
    jobs::enqueue(&mut *db.acquire().await?, &job, OnConflict::Sooner, now()).await?;
    let sweeper = Sweeper {
        db: db.clone(),
        root,
    };
    Ok(Lane::new(&[KIND], POLICY, sweeper)
        .only_key(node)
        .poll(Duration::from_secs(30)))
}

fn node(root: &Path) -> String {
    let host = rustix::system::uname();
    let root = std::path::absolute(root).unwrap_or_else(|_| root.to_owned());
    format!("{}:{}", host.nodename().to_string_lossy(), root.display())
}

struct Sweeper {
    db: AnyPool,
    root: PathBuf,
}

#[async_trait::async_trait]
impl jobs::Handler for Sweeper {
    async fn run(&self, _job: &Job) -> anyhow::Result<Finished> {
        let files = crate::uploads::store::sweep(&self.db, &self.root, now(), STALE_SECS).await?;
        if files > 0 {
            tracing::info!(files, "swept abandoned uploads");
        }
        Ok(Finished::Again {
            at: now() + EVERY_SECS,
        })
    }
}
