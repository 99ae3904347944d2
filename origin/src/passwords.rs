//! Defence in depth for password checks at the origin, behind the edge's per-address login
//! limits: argon2 work runs at most one job per core (a flood of logins queues instead of
//! taking every core from the rest of the origin), and an account whose password keeps being
//! wrong is refused for a while, whoever is trying and from wherever.
//!
//! The failure counts live in this process's memory: with several origin processes per region,
//! each counts on its own (the limit is then per process), and a restart forgets them.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use shared_wasm::ratelimit::{self, Quota};
use tokio::sync::Semaphore;

/// Runs `f` (argon2 hashing or verifying) on the blocking pool, at most one per core at once.
pub async fn bounded<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    let slots = SLOTS.get_or_init(|| {
        Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    });
    let _slot = slots.acquire().await?;
    Ok(tokio::task::spawn_blocking(f).await?)
}

/// Wrong passwords allowed per account before it is refused for a while.
pub const FAILURES: u32 = 10;
/// The window they are counted in (GCRA: one more is allowed every `WINDOW / FAILURES`).
pub const WINDOW_SECS: u32 = 900;
/// Accounts tracked at most; past it, those whose count has run out are forgotten first.
const MAX_ACCOUNTS: usize = 100_000;

/// Wrong-password counts per account (GCRA, one stored number per account).
pub struct Failures {
    quota: Quota,
    tats: Mutex<HashMap<String, u64>>,
}

impl Default for Failures {
    fn default() -> Self {
        Self {
            quota: Quota::new("password", FAILURES, WINDOW_SECS).expect("a valid quota"),
            tats: Mutex::new(HashMap::new()),
        }
    }
}

impl Failures {
    /// `Err(retry_after_secs)` if `account` has failed too often to try now.
    pub fn may_try(&self, account: &str, now_ms: u64) -> Result<(), u64> {
        let tat = self
            .tats
            .lock()
            .expect("not poisoned")
            .get(account)
            .copied();
        let (decision, _) = ratelimit::check(&self.quota, tat, now_ms);
        if decision.allowed {
            Ok(())
        } else {
            Err(decision.retry_after_secs)
        }
    }

    /// Counts a wrong password for `account`.
    pub fn failed(&self, account: &str, now_ms: u64) {
        let mut tats = self.tats.lock().expect("not poisoned");
        if tats.len() >= MAX_ACCOUNTS {
            tats.retain(|_, tat| *tat > now_ms);
        }
        let (_, tat) = ratelimit::check(&self.quota, tats.get(account).copied(), now_ms);
        tats.insert(account.to_owned(), tat);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn an_account_is_refused_after_its_failures_and_recovers_with_time() {
        let f = Failures::default();
        let t = 1_000_000;
        for _ in 0..FAILURES {
            assert!(f.may_try("a@example.com", t).is_ok());
            f.failed("a@example.com", t);
        }
        let retry = f.may_try("a@example.com", t).unwrap_err();
        assert_eq!(retry, u64::from(WINDOW_SECS / FAILURES));
        assert!(
            f.may_try("b@example.com", t).is_ok(),
            "other accounts are not touched"
        );
        let later = t + retry * 1000;
        assert!(f.may_try("a@example.com", later).is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn argon2_work_runs_at_most_one_job_per_core() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let jobs = (0..cores * 4).map(|_| {
            let (running, most) = (running.clone(), most.clone());
            tokio::spawn(bounded(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
            }))
        });
        for j in futures_util::future::join_all(jobs).await {
            j.unwrap().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), cores);
    }
}
