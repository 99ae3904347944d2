//! Deleting dead entries from Spin's key-value store, a few at a time.
//!
//! Spin's stores have no expiry: the adapter wraps values in an envelope carrying one, and a dead
//! entry reads as absent (see `shared_wasm::kv_sweep::is_dead`). A read that meets one deletes
//! it, but most dead entries are never read again: cache entries of segments nobody plays, one
//! rate-limit state per client address, one nonce per sync batch, read-through records of videos
//! nobody asks for. So now and then a request, after its response has gone, sweeps part of the
//! store.
//!
//! - **When.** Each request runs in a fresh instance, so there is no timer to keep; a request
//!   sweeps with probability 1/`KV_SWEEP_ONE_IN`, drawn from WASI's random source. A counter
//!   or "next sweep due" key would cost every request a store read (and a write to one hot key)
//!   to decide; a draw costs nothing, and it scales the sweeping with the traffic that makes the
//!   garbage. Concurrent sweeps may visit the same keys: the deletes are idempotent.
//! - **How much.** A request adds at most a few keys (a rate-limit state or two, a cache entry,
//!   a record), so with the defaults (one request in 16 visits 64 keys, 4 per request on
//!   average) the sweeping outpaces the garbage. Each sweep visits at most `KV_SWEEP_MAX_KEYS`
//!   keys and reads at most [`MAX_SWEEP_BYTES`] of values (a cache entry may hold a whole media
//!   segment), so no request does unbounded reading or deleting.
//! - **Which keys.** `get-keys` of `fermyon:spin/key-value@2.0.0` returns every name, in no
//!   specified order, with no paging. So the names are sorted here and each sweep goes on after
//!   the last key the previous one visited (kept under `sweep-cursor`), which gives every key
//!   its turn. The listing itself is one host call whose size grows with the store; only a
//!   paging interface (`wasi:keyvalue`'s cursor) would bound that, and spin-sdk 5 has none.
//! - **Races.** Reading and deleting are two calls with no compare-and-swap in between: a write
//!   landing between them is lost. That write would be to a key whose previous value had
//!   expired: a read-through record or a cache entry (refetched on the next miss), a rate-limit
//!   state (the key gets a fresh burst once), or a synced record replacing an expired read-through
//!   copy of `video:` / `ent:` (the next read fetches the same state from the origin).

use edge_app::ConfigError;
use shared_wasm::kv_sweep::{self, CURSOR_KEY};
use spin_sdk::key_value::Store;

/// Values read in one sweep, at most (the key limit aside).
pub const MAX_SWEEP_BYTES: usize = 8 << 20;

/// How often and how far the store is swept.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// A request sweeps with probability 1/`one_in`; 0: never (a deployment that cleans the
    /// store by other means).
    one_in: u32,
    /// Keys one sweep visits, at most.
    max_keys: usize,
}

impl Policy {
    /// From `KV_SWEEP_ONE_IN` (default 16) and `KV_SWEEP_MAX_KEYS` (default 64, at least 1).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let number =
            |name: &'static str, default: u32| match get(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| ConfigError::Invalid(name, "must be a whole number".into())),
            };
        let one_in = number("KV_SWEEP_ONE_IN", 16)?;
        let max_keys = number("KV_SWEEP_MAX_KEYS", 64)?;
        if max_keys == 0 {
            return Err(ConfigError::Invalid(
                "KV_SWEEP_MAX_KEYS",
                "must be at least 1 (KV_SWEEP_ONE_IN=0 turns sweeping off)".into(),
            ));
        }
        Ok(Self {
            one_in,
            max_keys: max_keys as usize,
        })
    }

    /// Whether this request sweeps.
    pub fn due(&self) -> bool {
        self.one_in != 0 && wasi::random::random::get_random_u64() % u64::from(self.one_in) == 0
    }
}

/// Deletes the dead entries among the next keys in turn. Returns how many it deleted.
pub fn run(
    store: &Store,
    policy: &Policy,
    now_ms: u64,
) -> Result<usize, spin_sdk::key_value::Error> {
    let cursor = store
        .get(CURSOR_KEY)?
        .and_then(|b| String::from_utf8(b).ok());
    let batch = kv_sweep::batch(store.get_keys()?, cursor.as_deref(), policy.max_keys);
    let (mut read, mut deleted, mut last) = (0usize, 0usize, None);
    for key in batch {
        if read >= MAX_SWEEP_BYTES {
            break;
        }
        if let Some(bytes) = store.get(&key)? {
            read += bytes.len();
            if kv_sweep::is_dead(&key, &bytes, now_ms) {
                store.delete(&key)?;
                deleted += 1;
            }
        }
        last = Some(key);
    }
    if let Some(key) = last {
        store.set(CURSOR_KEY, key.as_bytes())?;
    }
    Ok(deleted)
}
