//! Cleaning a key-value store that has no expiry of its own (Spin's): which stored entries are
//! dead, and which keys one bounded sweep visits. The Spin adapter does the reading and deleting;
//! the decisions are here so they can be tested with fixed inputs.

use crate::ratelimit;
use crate::record::KvEnvelope;

/// The prefix of the rate-limit state the Spin adapter keeps in its store (`rl:{class}:{subject}`).
pub const RATE_LIMIT_PREFIX: &str = "rl:";

/// Where a sweep keeps the last key it visited, so the next one goes on from there.
pub const CURSOR_KEY: &str = "sweep-cursor";

/// Whether `bytes`, stored under `key`, can be deleted at `now_ms` without changing anything a
/// later request would see:
/// - an envelope ([`KvEnvelope`]) whose `expires_at` has come, as [`KvEnvelope::open`] decides
///   (it already reads as absent);
/// - a rate-limit state whose theoretical arrival time has passed (a TAT in the past counts
///   exactly like no state, see [`ratelimit::check`]).
///
/// Everything else is kept: entries without an expiry (synced records), and bytes this version
/// cannot read (another schema version, or a key it does not know), since keeping an unknown
/// entry is safe and deleting one may not be.
pub fn is_dead(key: &str, bytes: &[u8], now_ms: u64) -> bool {
    if key.starts_with(RATE_LIMIT_PREFIX) {
        return ratelimit::decode_tat(bytes).is_some_and(|tat| tat <= now_ms);
    }
    ciborium::from_reader::<KvEnvelope, _>(bytes)
        .ok()
        .filter(|e| e.v == 1)
        .and_then(|e| e.expires_at)
        .is_some_and(|t| now_ms / 1000 >= t)
}

/// The keys one sweep visits, in order: at most `max`, in byte order, starting after `cursor`
/// (the last key the previous sweep visited, which may since have gone) and wrapping round to
/// the first key, each at most once. [`CURSOR_KEY`] is never among them.
///
/// The store lists its keys in no specified order, so the order is made here: sorted names
/// give every key its turn, however the list changes between sweeps.
pub fn batch(mut keys: Vec<String>, cursor: Option<&str>, max: usize) -> Vec<String> {
    keys.retain(|k| k != CURSOR_KEY);
    keys.sort_unstable();
    let start = cursor.map_or(0, |c| keys.partition_point(|k| k.as_str() <= c));
    keys.rotate_left(start);
    keys.truncate(max);
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(expires_at: Option<u64>) -> Vec<u8> {
        KvEnvelope {
            v: 1,
            expires_at,
            value: b"x".to_vec(),
        }
        .to_cbor()
    }

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn expired_envelopes_are_dead_exactly_when_they_read_as_absent() {
        let bytes = envelope(Some(100));
        for now_secs in [0, 99, 100, 101, u64::MAX / 1000] {
            let absent = KvEnvelope::open(&bytes, crate::UnixTime(now_secs)).is_none();
            assert_eq!(is_dead("cache:x", &bytes, now_secs * 1000), absent);
        }
        assert!(!is_dead("nonce:n", &bytes, 99_999));
        assert!(is_dead("nonce:n", &bytes, 100_000));
    }

    #[test]
    fn entries_without_expiry_or_unreadable_are_kept() {
        assert!(!is_dead("user:u1", &envelope(None), u64::MAX));
        assert!(!is_dead("video:v", b"not cbor", u64::MAX));
        let other_version = KvEnvelope {
            v: 2,
            expires_at: Some(1),
            value: Vec::new(),
        }
        .to_cbor();
        assert!(!is_dead("video:v", &other_version, u64::MAX));
        // A rate-limit state is not an envelope, and an envelope is no rate-limit state.
        assert!(!is_dead("video:v", &ratelimit::encode_tat(1), u64::MAX));
        assert!(!is_dead(
            "rl:login:ip:unknown",
            &envelope(Some(1)),
            u64::MAX
        ));
    }

    #[test]
    fn rate_limit_state_is_dead_once_its_time_has_passed() {
        let tat = ratelimit::encode_tat(5_000);
        assert!(!is_dead("rl:login:ip:203.0.113.7", &tat, 4_999));
        assert!(is_dead("rl:login:ip:203.0.113.7", &tat, 5_000));
        assert!(is_dead("rl:login:ip:203.0.113.7", &tat, 9_000));
    }

    #[test]
    fn a_batch_starts_after_the_cursor_and_wraps_round() {
        let all = keys(&["e", "c", "a", "d", "b"]);
        assert_eq!(batch(all.clone(), None, 2), keys(&["a", "b"]));
        assert_eq!(batch(all.clone(), Some("b"), 2), keys(&["c", "d"]));
        assert_eq!(batch(all.clone(), Some("d"), 3), keys(&["e", "a", "b"]));
        // A cursor whose key has been deleted since: on from where it stood.
        assert_eq!(batch(all.clone(), Some("bb"), 2), keys(&["c", "d"]));
        assert_eq!(batch(all.clone(), Some("zz"), 2), keys(&["a", "b"]));
    }

    #[test]
    fn a_batch_is_bounded_and_visits_each_key_once() {
        let all = keys(&["c", "a", "b"]);
        assert_eq!(batch(all.clone(), Some("a"), 10), keys(&["b", "c", "a"]));
        assert!(batch(all.clone(), Some("a"), 0).is_empty());
        assert!(batch(Vec::new(), Some("a"), 10).is_empty());
        let many: Vec<String> = (0..1000).map(|i| format!("cache:{i:04}")).collect();
        assert_eq!(batch(many, None, 64).len(), 64);
    }

    #[test]
    fn consecutive_batches_cover_every_key() {
        let all: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
        let mut cursor: Option<String> = None;
        let mut seen = Vec::new();
        for _ in 0..4 {
            let b = batch(all.clone(), cursor.as_deref(), 3);
            cursor = b.last().cloned();
            seen.extend(b);
        }
        seen.truncate(10);
        seen.sort();
        assert_eq!(seen, all);
    }

    #[test]
    fn the_cursor_itself_is_never_visited() {
        let all = keys(&[CURSOR_KEY, "a", "z"]);
        assert_eq!(batch(all, None, 10), keys(&["a", "z"]));
    }
}
