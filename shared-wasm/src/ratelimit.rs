//! Rate limiting with GCRA (the generic cell rate algorithm), and the IETF rate-limit header
//! fields (draft-ietf-httpapi-ratelimit-headers: `RateLimit-Policy` and `RateLimit`).
//!
//! GCRA keeps one number per key, the theoretical arrival time (TAT) of the next request. A quota
//! of `q` requests per `w` seconds emits one cell every `T = w / q`; a request at `t` is allowed
//! when `max(TAT, t) + T - t <= w`, and then `TAT` moves to `max(TAT, t) + T`. That is exact (no
//! window edges to burst across), needs no timer, and stores 8 bytes per key. The storage and its
//! consistency are the caller's: this module only does the arithmetic, with time passed in.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A quota: `limit` requests per `window_secs`, with bursts up to `limit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// Name shown in the header fields (a route class such as `login`).
    pub name: String,
    /// Requests allowed per window.
    pub limit: u32,
    /// Window length in seconds.
    pub window_secs: u32,
}

/// Why a quota is unusable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum QuotaError {
    /// Zero requests or a zero window.
    #[error("quota {0} needs a limit and a window above zero")]
    Zero(String),
    /// The name is not a short token (it is sent in a header).
    #[error("quota name {0:?} must be 1 to 32 characters of a-z 0-9 - _")]
    Name(String),
}

impl Quota {
    /// A checked quota.
    pub fn new(name: &str, limit: u32, window_secs: u32) -> Result<Self, QuotaError> {
        if limit == 0 || window_secs == 0 {
            return Err(QuotaError::Zero(name.to_owned()));
        }
        let ok = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !ok {
            return Err(QuotaError::Name(name.to_owned()));
        }
        Ok(Self {
            name: name.to_owned(),
            limit,
            window_secs,
        })
    }

    fn window_ms(&self) -> u64 {
        u64::from(self.window_secs) * 1000
    }

    /// Milliseconds between cells. Rounded up, so the limit is never exceeded by rounding.
    fn interval_ms(&self) -> u64 {
        self.window_ms().div_ceil(u64::from(self.limit))
    }

    /// `RateLimit-Policy` value for this quota.
    pub fn policy_header(&self) -> String {
        format!("\"{}\";q={};w={}", self.name, self.limit, self.window_secs)
    }
}

/// The outcome of one request against a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Requests still allowed right now.
    pub remaining: u32,
    /// Seconds until the quota is whole again (`t` in the `RateLimit` field).
    pub reset_secs: u64,
    /// When refused: seconds until a retry can succeed (`Retry-After`), at least 1.
    pub retry_after_secs: u64,
}

impl Decision {
    /// `RateLimit` value for this decision under `quota`.
    pub fn header(&self, quota: &Quota) -> String {
        format!(
            "\"{}\";r={};t={}",
            quota.name, self.remaining, self.reset_secs
        )
    }

    /// Of two decisions for one request (say per IP and per user), the stricter one.
    pub fn stricter(self, other: Self) -> Self {
        match (self.allowed, other.allowed) {
            (true, false) => other,
            (false, true) => self,
            (false, false) if other.retry_after_secs > self.retry_after_secs => other,
            (true, true) if other.remaining < self.remaining => other,
            _ => self,
        }
    }
}

/// Applies one request at `now_ms` to the stored `tat_ms` (`None` for a key never seen).
/// Returns the decision and the TAT to store; when refused, the stored TAT is unchanged.
pub fn check(quota: &Quota, tat_ms: Option<u64>, now_ms: u64) -> (Decision, u64) {
    let t = quota.interval_ms();
    let window = quota.window_ms();
    let tat = tat_ms.unwrap_or(now_ms).max(now_ms);
    let new_tat = tat + t;
    let ceil_secs = |ms: u64| ms.div_ceil(1000);
    if new_tat - now_ms > window {
        // Earliest moment at which this request would fit.
        let allow_at = new_tat - window;
        let decision = Decision {
            allowed: false,
            remaining: 0,
            reset_secs: ceil_secs(tat - now_ms),
            retry_after_secs: ceil_secs(allow_at - now_ms).max(1),
        };
        return (decision, tat);
    }
    let used = new_tat - now_ms;
    let remaining = ((window - used) / t) as u32;
    let decision = Decision {
        allowed: true,
        remaining,
        reset_secs: ceil_secs(used),
        retry_after_secs: 0,
    };
    (decision, new_tat)
}

/// [`check`]'s step run atomically inside Redis (`EVAL`), for a store that several edge instances
/// share, where a read-modify-write from outside lets concurrent requests overshoot.
///
/// `KEYS[1]` holds the TAT in ms as a decimal number, expiring when it has passed (a past TAT
/// counts exactly like none); `ARGV` are [`redis_args`]. The clock is Redis's own (`TIME`), so
/// instances whose clocks disagree share one timeline. The reply is `{allowed (1 or 0), the TAT
/// read (-1: none), now in ms}`, which [`redis_decision`] turns into a [`Decision`] with [`check`]
/// itself: only the allow rule is written twice, and `tests/tests/redis_gcra.rs` holds the two
/// to the same answers against a real server.
pub const REDIS_GCRA_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local raw = redis.call('GET', KEYS[1])
local stored = raw and tonumber(raw)
local tat = math.max(stored or now, now)
local new_tat = tat + tonumber(ARGV[1])
local allowed = 0
if new_tat - now <= tonumber(ARGV[2]) then
  redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', new_tat - now)
  allowed = 1
end
return {allowed, stored or -1, now}
"#;

/// The script's `ARGV` for `quota`: the interval and the window, in ms.
pub fn redis_args(quota: &Quota) -> [u64; 2] {
    [quota.interval_ms(), quota.window_ms()]
}

/// The decision for [`REDIS_GCRA_SCRIPT`]'s reply, or `None` when the reply is not one (wrong
/// shape, or an allow that [`check`] would not have given: a script from another version).
pub fn redis_decision(quota: &Quota, reply: &[i64]) -> Option<Decision> {
    let &[allowed, stored, now] = reply else {
        return None;
    };
    let now = u64::try_from(now).ok()?;
    let stored = u64::try_from(stored).ok();
    let (decision, _) = check(quota, stored, now);
    (decision.allowed == (allowed == 1)).then_some(decision)
}

/// Encodes a stored TAT for a key-value store (a CBOR unsigned integer, `kv-schemas/rate_limit.cddl`).
pub fn encode_tat(tat_ms: u64) -> Vec<u8> {
    let mut buf = Vec::with_capacity(9);
    ciborium::into_writer(&tat_ms, &mut buf).expect("writing to a Vec cannot fail");
    buf
}

/// Decodes a stored TAT; anything unreadable counts as a key never seen.
pub fn decode_tat(bytes: &[u8]) -> Option<u64> {
    ciborium::from_reader(bytes).ok()
}

/// The rate-limit key for a client address: IPv4 as is, IPv6 by its /64, since one subscriber
/// usually holds a whole /64 and could otherwise rotate through it. Unparsable input (a runtime
/// that gives no address) shares one `unknown` bucket.
pub fn client_key(ip: Option<&str>) -> String {
    match ip.and_then(|s| s.trim().parse::<std::net::IpAddr>().ok()) {
        Some(std::net::IpAddr::V4(v4)) => format!("ip:{v4}"),
        Some(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let s = v6.segments();
                format!("ip6:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        None => "ip:unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(limit: u32, window: u32) -> Quota {
        Quota::new("login", limit, window).unwrap()
    }

    /// Runs requests at the given times against one key and returns which were allowed.
    fn run(quota: &Quota, times_ms: &[u64]) -> Vec<bool> {
        let mut tat = None;
        times_ms
            .iter()
            .map(|&now| {
                let (d, new) = check(quota, tat, now);
                tat = Some(new);
                d.allowed
            })
            .collect()
    }

    #[test]
    fn burst_of_exactly_the_limit_then_refusal() {
        let quota = q(5, 60);
        let got = run(&quota, &[0; 7]);
        assert_eq!(got, [true, true, true, true, true, false, false]);
    }

    #[test]
    fn one_cell_returns_per_interval() {
        let quota = q(5, 60); // one request per 12 s
        let mut tat = None;
        for _ in 0..5 {
            tat = Some(check(&quota, tat, 0).1);
        }
        let (d, _) = check(&quota, tat, 11_999);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_secs, 1);
        let (d, new) = check(&quota, tat, 12_000);
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        assert!(!check(&quota, Some(new), 12_000).0.allowed);
    }

    #[test]
    fn steady_rate_at_the_limit_is_never_refused() {
        let quota = q(10, 1); // one per 100 ms
        let times: Vec<u64> = (0..1000).map(|i| i * 100).collect();
        assert!(run(&quota, &times).into_iter().all(|a| a));
    }

    #[test]
    fn no_interval_admits_more_than_the_burst_plus_its_refill() {
        // Requests every 7 ms for 10 s against 20 per 2 s (one cell per 100 ms). GCRA's exact
        // bound: any interval of length d admits at most limit + floor(d / T).
        let quota = q(20, 2);
        let times: Vec<u64> = (0..1430).map(|i| i * 7).collect();
        let allowed = run(&quota, &times);
        for d in [100u64, 500, 2000, 5000] {
            let bound = 20 + (d / 100) as usize;
            for start in (0..10_000).step_by(50) {
                let n = times
                    .iter()
                    .zip(&allowed)
                    .filter(|(t, a)| **a && **t >= start && **t < start + d)
                    .count();
                assert!(n <= bound, "{n} > {bound} in [{start}, +{d}) ms");
            }
        }
        // The long-run rate is the quota's: the first burst plus one per 100 ms.
        let total = allowed.iter().filter(|a| **a).count();
        assert!((115..=121).contains(&total), "{total}");
    }

    #[test]
    fn remaining_and_reset_count_down() {
        let quota = q(3, 30);
        let (d1, t1) = check(&quota, None, 0);
        assert_eq!((d1.remaining, d1.reset_secs), (2, 10));
        let (d2, t2) = check(&quota, Some(t1), 0);
        assert_eq!((d2.remaining, d2.reset_secs), (1, 20));
        let (d3, t3) = check(&quota, Some(t2), 0);
        assert_eq!((d3.remaining, d3.reset_secs), (0, 30));
        let (d4, t4) = check(&quota, Some(t3), 0);
        assert!(!d4.allowed);
        assert_eq!((d4.retry_after_secs, d4.reset_secs), (10, 30));
        assert_eq!(t4, t3, "a refusal does not consume");
    }

    #[test]
    fn idle_time_refills_but_never_beyond_the_burst() {
        let quota = q(3, 30);
        let mut tat = None;
        for _ in 0..3 {
            tat = Some(check(&quota, tat, 0).1);
        }
        let got = run(&quota, &[1_000_000; 4]);
        assert_eq!(got, [true, true, true, false]);
    }

    #[test]
    fn headers() {
        let quota = q(10, 60);
        assert_eq!(quota.policy_header(), "\"login\";q=10;w=60");
        let (d, _) = check(&quota, None, 0);
        assert_eq!(d.header(&quota), "\"login\";r=9;t=6");
    }

    #[test]
    fn stricter_of_two() {
        let quota = q(3, 30);
        let ok = check(&quota, None, 0).0;
        let (_, t) = check(&quota, None, 0);
        let fewer = check(&quota, Some(t), 0).0;
        let refused = Decision {
            allowed: false,
            remaining: 0,
            reset_secs: 30,
            retry_after_secs: 10,
        };
        assert_eq!(ok.stricter(fewer), fewer);
        assert_eq!(fewer.stricter(refused), refused);
        assert_eq!(refused.stricter(ok), refused);
    }

    #[test]
    fn client_keys() {
        assert_eq!(client_key(Some("203.0.113.7")), "ip:203.0.113.7");
        assert_eq!(client_key(Some("::ffff:203.0.113.7")), "ip:203.0.113.7");
        assert_eq!(
            client_key(Some("2001:db8:1:2:aaaa::1")),
            client_key(Some("2001:db8:1:2:bbbb::9"))
        );
        assert_eq!(client_key(Some("2001:db8:1:2::1")), "ip6:2001:db8:1:2::/64");
        assert_ne!(
            client_key(Some("2001:db8:1:3::1")),
            client_key(Some("2001:db8:1:2::1"))
        );
        assert_eq!(client_key(None), "ip:unknown");
        assert_eq!(client_key(Some("not an ip")), "ip:unknown");
    }

    #[test]
    fn bad_quotas_are_refused() {
        assert!(Quota::new("x", 0, 1).is_err());
        assert!(Quota::new("x", 1, 0).is_err());
        assert!(Quota::new("Bad Name", 1, 1).is_err());
        assert!(Quota::new("a\"b", 1, 1).is_err());
    }

    #[test]
    fn a_redis_reply_is_read_with_check() {
        let quota = Quota::new("login", 2, 10).unwrap();
        assert_eq!(redis_args(&quota), [5_000, 10_000]);
        // A fresh key at t=1000: allowed, one left.
        let d = redis_decision(&quota, &[1, -1, 1_000]).unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, 1);
        // Two cells already used (TAT 11000 at t=1000): refused until one frees, in 5 s.
        let d = redis_decision(&quota, &[0, 11_000, 1_000]).unwrap();
        assert!(!d.allowed);
        assert_eq!(d.retry_after_secs, 5);
        // A reply that disagrees with check, or has the wrong shape, is not a decision.
        assert_eq!(redis_decision(&quota, &[0, -1, 1_000]), None);
        assert_eq!(redis_decision(&quota, &[1, 11_000, 1_000]), None);
        assert_eq!(redis_decision(&quota, &[1, -1]), None);
        assert_eq!(redis_decision(&quota, &[1, -1, -5]), None);
    }
}
