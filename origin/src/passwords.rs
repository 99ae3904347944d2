//! Defence in depth for password checks at the origin, behind the edge's per-address login
//! limits: argon2 work runs at most one job per core (a flood of logins queues instead of
//! taking every core from the rest of the origin); an account whose password keeps being
//! wrong is refused for a while, whoever is trying and from wherever; and so is an address
//! that keeps getting passwords wrong (across accounts: credential stuffing) or keeps signing
//! up.
//!
//! The address is the one the edge got from its runtime, in [`CLIENT_ADDR_HEADER`]: trusted
//! because every route that reads it answers the edge only (its request proof). IPv6 addresses
//! count by their /64, which one subscriber usually holds whole. Without an address (a runtime
//! that reports none) only the account limits apply.
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
/// Wrong passwords allowed per address (any accounts) in [`WINDOW_SECS`]: more than one
/// household or office gets wrong, far fewer than a credential-stuffing run needs.
pub const ADDRESS_FAILURES: u32 = 30;
/// Signups allowed per address per [`SIGNUP_WINDOW_SECS`].
pub const SIGNUPS: u32 = 10;
/// The signup window.
pub const SIGNUP_WINDOW_SECS: u32 = 3600;
/// Keys tracked at most per counter; past it, those whose count has run out are forgotten
/// first.
const MAX_KEYS: usize = 100_000;

/// The header the edge passes the client's address in.
pub const CLIENT_ADDR_HEADER: &str = "x-edge-client-ip";

/// The counting key of the request's client address, if the edge sent one: an IPv4 address
/// itself, an IPv6 address's /64.
pub fn client_addr(headers: &axum::http::HeaderMap) -> Option<String> {
    let ip: std::net::IpAddr = headers
        .get(CLIENT_ADDR_HEADER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    })
}

/// Counts per key (an account, an address): GCRA, one stored number per key.
pub struct Counts {
    quota: Quota,
    tats: Mutex<HashMap<String, u64>>,
}

impl Default for Counts {
    /// Wrong passwords per account.
    fn default() -> Self {
        Self::new("password", FAILURES, WINDOW_SECS)
    }
}

impl Counts {
    /// At most `limit` per `window_secs` per key.
    pub fn new(name: &'static str, limit: u32, window_secs: u32) -> Self {
        Self {
            quota: Quota::new(name, limit, window_secs).expect("a valid quota"),
            tats: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after_secs)` if `key` has counted too many to try now.
    pub fn may_try(&self, key: &str, now_ms: u64) -> Result<(), u64> {
        let tat = self.tats.lock().expect("not poisoned").get(key).copied();
        let (decision, _) = ratelimit::check(&self.quota, tat, now_ms);
        if decision.allowed {
            Ok(())
        } else {
            Err(decision.retry_after_secs)
        }
    }

    /// Counts one for `key` (a wrong password, a signup).
    pub fn count(&self, key: &str, now_ms: u64) {
        let mut tats = self.tats.lock().expect("not poisoned");
        if tats.len() >= MAX_KEYS {
            tats.retain(|_, tat| *tat > now_ms);
        }
        let (_, tat) = ratelimit::check(&self.quota, tats.get(key).copied(), now_ms);
        tats.insert(key.to_owned(), tat);
    }
}

/// The counters password checks and signups go through.
pub struct Limits {
    /// Wrong passwords per account.
    pub accounts: Counts,
    /// Wrong passwords per address.
    pub addresses: Counts,
    /// Signups per address.
    pub signups: Counts,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            accounts: Counts::default(),
            addresses: Counts::new("password-address", ADDRESS_FAILURES, WINDOW_SECS),
            signups: Counts::new("signup", SIGNUPS, SIGNUP_WINDOW_SECS),
        }
    }
}

impl Limits {
    /// Refuses a password check on `account` from `addr` while either has failed too often.
    pub fn may_check(&self, account: &str, addr: Option<&str>, now_ms: u64) -> Result<(), u64> {
        self.accounts.may_try(account, now_ms)?;
        match addr {
            Some(a) => self.addresses.may_try(a, now_ms),
            None => Ok(()),
        }
    }

    /// Counts a wrong password on `account` from `addr`.
    pub fn failed(&self, account: &str, addr: Option<&str>, now_ms: u64) {
        self.accounts.count(account, now_ms);
        if let Some(a) = addr {
            self.addresses.count(a, now_ms);
        }
    }

    /// Counts a signup from `addr`, refusing it when the address has signed up too often.
    pub fn signup(&self, addr: Option<&str>, now_ms: u64) -> Result<(), u64> {
        let Some(a) = addr else { return Ok(()) };
        self.signups.may_try(a, now_ms)?;
        self.signups.count(a, now_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn an_account_is_refused_after_its_failures_and_recovers_with_time() {
        let f = Counts::default();
        let t = 1_000_000;
        for _ in 0..FAILURES {
            assert!(f.may_try("a@example.com", t).is_ok());
            f.count("a@example.com", t);
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
