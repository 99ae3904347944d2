//! Records the origin pushes so the edge can refuse tokens that are still within their expiry:
//! a user's "not before" epoch, revoked sessions, and the user's entitlement.

use serde::{Deserialize, Serialize};

use super::cbor_record;
use crate::UnixTime;

cbor_record!(UserRecord, 1);
cbor_record!(RevokedSession, 1);
cbor_record!(Entitlement, 1);
cbor_record!(FeedVersion, 1);

/// `feedver:{feed}`: the version of a shared feed (`home`, `channel:{user}`). The origin bumps
/// it in the same transaction as any write that changes the feed; the edge puts it in the feed's
/// cache key, so the next read after a write misses and fetches the new feed, with no purge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedVersion {
    /// Schema version, 1.
    pub v: u8,
    /// The feed's name.
    pub feed: String,
    /// Bumped on every change; the edge keeps the highest.
    pub version: u64,
}

impl FeedVersion {
    /// KV key.
    pub fn key(feed: &str) -> String {
        format!("feedver:{feed}")
    }
}

/// `user:{id}`: what the edge must know about a user beyond the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Schema version, 1.
    pub v: u8,
    /// The user id (the tokens' `sub`).
    pub id: String,
    /// Access tokens issued (`iat`) before this second are refused: logout everywhere, a ban,
    /// a password or role change. The origin sets it to the second after the revocation, so a
    /// token issued in the revocation's own second is refused too. Unix seconds; 0 when never
    /// set.
    pub not_before: u64,
    /// Monotonic per user; a newer version always wins.
    pub version: u64,
}

impl UserRecord {
    /// KV key.
    pub fn key(id: &str) -> String {
        format!("user:{id}")
    }

    /// Whether a token issued at `iat` is still acceptable. A token without `iat` cannot be
    /// placed before or after the epoch, so once an epoch exists it is refused.
    pub fn admits(&self, iat: Option<u64>) -> bool {
        self.not_before == 0 || iat.is_some_and(|t| t >= self.not_before)
    }
}

/// `session:{jti}`: a revoked login session. Every access token of a session carries the
/// session id as its `jti`, so one record refuses all of them; it expires with the last one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedSession {
    /// Schema version, 1.
    pub v: u8,
    /// The session id.
    pub jti: String,
    /// No access token of the session outlives this, Unix seconds; the record may go then.
    pub expires_at: u64,
    /// Always 1: a revocation never changes.
    pub version: u64,
}

impl RevokedSession {
    /// KV key.
    pub fn key(jti: &str) -> String {
        format!("session:{jti}")
    }
}

/// Where a paid entitlement stands. The origin applies billing rules (grace after a failed
/// payment) before it writes the status; the edge only reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntitlementStatus {
    /// Paid up (or within the payment grace).
    Active,
    /// Ended: cancelled, or unpaid past the grace.
    Inactive,
}

/// `ent:{user}`: a user's entitlement to `members` videos.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entitlement {
    /// Schema version, 1.
    pub v: u8,
    /// The user id.
    pub user: String,
    /// Plan name, for logs and clients.
    pub tier: String,
    /// Active or not.
    pub status: EntitlementStatus,
    /// End of the period paid for, Unix seconds: no playback token outlives it.
    pub period_end: u64,
    /// Monotonic per user; a newer version always wins.
    pub version: u64,
}

impl Entitlement {
    /// KV key.
    pub fn key(user: &str) -> String {
        format!("ent:{user}")
    }

    /// Whether it entitles playback at `now`.
    pub fn active_at(&self, now: UnixTime) -> bool {
        self.status == EntitlementStatus::Active && now.0 < self.period_end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_epoch_refuses_older_and_undated_tokens() {
        let mut u = UserRecord {
            v: 1,
            id: "u1".into(),
            not_before: 0,
            version: 1,
        };
        assert!(u.admits(None) && u.admits(Some(5)));
        u.not_before = 100;
        assert!(!u.admits(None));
        assert!(!u.admits(Some(99)));
        assert!(u.admits(Some(100)) && u.admits(Some(101)));
        assert_eq!(UserRecord::from_cbor(&u.to_cbor()).unwrap(), u);
    }

    #[test]
    fn entitlement_ends_at_period_end_or_when_inactive() {
        let mut e = Entitlement {
            v: 1,
            user: "u1".into(),
            tier: "members".into(),
            status: EntitlementStatus::Active,
            period_end: 1000,
            version: 1,
        };
        assert!(e.active_at(UnixTime(999)));
        assert!(!e.active_at(UnixTime(1000)));
        e.status = EntitlementStatus::Inactive;
        assert!(!e.active_at(UnixTime(1)));
        assert_eq!(Entitlement::from_cbor(&e.to_cbor()).unwrap(), e);
    }

    #[test]
    fn revoked_session_round_trips() {
        let s = RevokedSession {
            v: 1,
            jti: "s1".into(),
            expires_at: 10,
            version: 1,
        };
        assert_eq!(RevokedSession::from_cbor(&s.to_cbor()).unwrap(), s);
        assert!(RevokedSession::from_cbor(b"\x01").is_err());
    }
}
