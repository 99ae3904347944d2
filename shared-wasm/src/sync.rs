//! The origin → edge sync: signed batches of versioned KV records.
//!
//! The origin's outbox pushes `POST /internal/sync` to every edge deployment. The body is a CBOR
//! [`SyncBatch`]; the request carries
//!
//! ```text
//! x-sync-auth: v1.<unix seconds>.<nonce>.<base64url HMAC-SHA256(secret, DOMAIN ‖ t ‖ \n ‖ nonce ‖ \n ‖ body)>
//! ```
//!
//! The edge refuses a stamp outside [`WINDOW_SECS`] and a nonce it has seen within that window,
//! so a captured request cannot be replayed. Replay would gain little anyway: every record
//! carries a version, and the edge never lets a record overwrite one of the same or a newer
//! version, which also makes the origin's retries harmless.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::record::{
    serde_bytes_vec, AdCatalog, Entitlement, FeedVersion, RevokedSession, UserRecord, VideoRecord,
    MAX_CAMPAIGNS, MAX_RECORD_BYTES,
};
use crate::{hmac, UnixTime, VideoId};

/// The request header that carries the signature.
pub const HEADER: &str = "x-sync-auth";
const DOMAIN: &[u8] = b"edge-video/origin-to-edge-sync/v1\0";
/// How far the stamped time may be from the edge's clock, either way.
pub const WINDOW_SECS: u64 = 60;
/// Largest batch body the edge reads.
pub const MAX_BATCH_BYTES: usize = 512 * 1024;
/// Most records in one batch.
pub const MAX_ITEMS: usize = 200;
/// Nonces are 16 to 64 base64url characters.
const NONCE_LEN: core::ops::RangeInclusive<usize> = 16..=64;

/// One record to store at the edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncItem {
    /// The KV key (`video:…`, `user:…`, `session:…`, `ent:…`).
    pub key: String,
    /// The record's own `version`, repeated so the edge can compare without decoding.
    pub version: u64,
    /// The record, CBOR as in `kv-schemas/`.
    #[serde(with = "serde_bytes_vec")]
    pub value: Vec<u8>,
    /// When the record stops mattering (KV expiry), Unix seconds; absent: kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// A batch, in outbox order: records of one key are in version order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncBatch {
    /// Schema version, 1.
    pub v: u8,
    /// The records.
    pub items: Vec<SyncItem>,
}

/// Why a sync request or one of its records was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SyncError {
    /// No signature header.
    #[error("missing sync credentials")]
    Missing,
    /// Not `v1.<t>.<nonce>.<sig>`.
    #[error("malformed sync credentials")]
    Malformed,
    /// Outside the window.
    #[error("stale sync credentials")]
    Stale,
    /// Signature mismatch.
    #[error("bad sync credentials")]
    BadSignature,
    /// Body over [`MAX_BATCH_BYTES`] or more than [`MAX_ITEMS`] records.
    #[error("batch too large")]
    TooLarge,
    /// Not a batch.
    #[error("batch malformed: {0}")]
    MalformedBatch(String),
    /// A record the edge does not accept (unknown prefix, key not matching the record, version
    /// not matching the item's).
    #[error("record {key}: {why}")]
    BadRecord {
        /// Its key.
        key: String,
        /// What is wrong.
        why: &'static str,
    },
}

fn message<'a>(t: &'a str, nonce: &'a str, body: &'a [u8]) -> [&'a [u8]; 6] {
    [DOMAIN, t.as_bytes(), b"\n", nonce.as_bytes(), b"\n", body]
}

/// The header value for `body` sent at `now` with a fresh random `nonce` (base64url).
pub fn sign(secret: &[u8], body: &[u8], nonce: &str, now: UnixTime) -> String {
    let t = now.0.to_string();
    let tag = hmac::sign(secret, &message(&t, nonce, body));
    format!("v1.{t}.{nonce}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// Checks the header for `body` at `now`; returns the nonce, which the caller must not have
/// seen within the last `2 × WINDOW_SECS`.
pub fn verify<'h>(
    secret: &[u8],
    header: Option<&'h str>,
    body: &[u8],
    now: UnixTime,
) -> Result<&'h str, SyncError> {
    let header = header.ok_or(SyncError::Missing)?;
    let mut parts = header.splitn(4, '.');
    let (Some("v1"), Some(t), Some(nonce), Some(sig)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SyncError::Malformed);
    };
    let stamp: u64 = t.parse().map_err(|_| SyncError::Malformed)?;
    let nonce_ok = NONCE_LEN.contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| SyncError::Malformed)?;
    if !nonce_ok || sig.len() != 32 || stamp.to_string() != t {
        return Err(SyncError::Malformed);
    }
    if stamp.abs_diff(now.0) > WINDOW_SECS {
        return Err(SyncError::Stale);
    }
    if hmac::verify(secret, &message(t, nonce, body), &sig) {
        Ok(nonce)
    } else {
        Err(SyncError::BadSignature)
    }
}

impl SyncBatch {
    /// CBOR encoding.
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(self, &mut out).expect("writing to a Vec cannot fail");
        out
    }

    /// Decodes a batch and checks every record in it (see [`check_item`]).
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, SyncError> {
        if bytes.len() > MAX_BATCH_BYTES {
            return Err(SyncError::TooLarge);
        }
        let batch: Self =
            ciborium::from_reader(bytes).map_err(|e| SyncError::MalformedBatch(e.to_string()))?;
        if batch.v != 1 {
            return Err(SyncError::MalformedBatch(format!(
                "batch version {}",
                batch.v
            )));
        }
        if batch.items.len() > MAX_ITEMS {
            return Err(SyncError::TooLarge);
        }
        batch.items.iter().try_for_each(check_item)?;
        Ok(batch)
    }
}

/// A record is accepted only under a key prefix the sync owns, decoded as that prefix's type,
/// with the key naming the record and the item's version equal to the record's. The edge's
/// own keys (`jwks`, `rl:…`, `cache:…`, nonces) can never be written this way.
pub fn check_item(item: &SyncItem) -> Result<(), SyncError> {
    let bad = |why| SyncError::BadRecord {
        key: item.key.chars().take(80).collect(),
        why,
    };
    if item.value.len() > MAX_RECORD_BYTES {
        return Err(bad("too large"));
    }
    let (prefix, name) = item.key.split_once(':').ok_or_else(|| bad("no prefix"))?;
    let (key, version) = match prefix {
        "video" => {
            let r = VideoRecord::from_cbor(&item.value).map_err(|_| bad("not a video record"))?;
            let id = VideoId::parse(name).map_err(|_| bad("bad video id"))?;
            (r.id == id, r.version)
        }
        "user" => {
            let r = UserRecord::from_cbor(&item.value).map_err(|_| bad("not a user record"))?;
            (r.id == name, r.version)
        }
        "session" => {
            let r =
                RevokedSession::from_cbor(&item.value).map_err(|_| bad("not a revoked session"))?;
            (r.jti == name, r.version)
        }
        "ent" => {
            let r = Entitlement::from_cbor(&item.value).map_err(|_| bad("not an entitlement"))?;
            (r.user == name, r.version)
        }
        "ads" => {
            let r = AdCatalog::from_cbor(&item.value).map_err(|_| bad("not an ad catalog"))?;
            if r.campaigns.len() > MAX_CAMPAIGNS {
                return Err(bad("too many campaigns"));
            }
            (item.key == AdCatalog::KEY, r.version)
        }
        "feedver" => {
            let r = FeedVersion::from_cbor(&item.value).map_err(|_| bad("not a feed version"))?;
            (r.feed == name, r.version)
        }
        _ => return Err(bad("prefix not synced")),
    };
    if !key {
        return Err(bad("key does not name the record"));
    }
    if version != item.version {
        return Err(bad("version differs from the record's"));
    }
    Ok(())
}

/// The `version` of a stored record of any synced kind (all are CBOR maps with a top-level
/// unsigned `version`); `None` when the bytes are not such a record.
pub fn stored_version(bytes: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct Versioned {
        version: u64,
    }
    ciborium::from_reader::<Versioned, _>(bytes)
        .ok()
        .map(|v| v.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"sync-secret-sync-secret-sync-secret!";

    fn user_item(id: &str, version: u64) -> SyncItem {
        let r = UserRecord {
            v: 1,
            id: id.into(),
            not_before: 5,
            version,
        };
        SyncItem {
            key: UserRecord::key(id),
            version,
            value: r.to_cbor(),
            expires_at: None,
        }
    }

    #[test]
    fn signature_round_trip_and_refusals() {
        let body = b"batch";
        let nonce = "AAAAAAAAAAAAAAAAAAAAAA";
        let h = sign(SECRET, body, nonce, UnixTime(1000));
        assert_eq!(verify(SECRET, Some(&h), body, UnixTime(1030)), Ok(nonce));
        assert_eq!(
            verify(SECRET, Some(&h), b"batcH", UnixTime(1000)),
            Err(SyncError::BadSignature)
        );
        assert_eq!(
            verify(b"other-secret", Some(&h), body, UnixTime(1000)),
            Err(SyncError::BadSignature)
        );
        assert_eq!(
            verify(SECRET, Some(&h), body, UnixTime(1061)),
            Err(SyncError::Stale)
        );
        assert_eq!(
            verify(SECRET, None, body, UnixTime(1000)),
            Err(SyncError::Missing)
        );
        // The nonce is covered: swapping it breaks the signature.
        let swapped = h.replace(nonce, "BBBBBBBBBBBBBBBBBBBBBB");
        assert_eq!(
            verify(SECRET, Some(&swapped), body, UnixTime(1000)),
            Err(SyncError::BadSignature)
        );
        for bad in [
            "v2.1000.AAAAAAAAAAAAAAAAAAAAAA.x",
            "v1.1000.short.x",
            "v1.+1000.AAAAAAAAAAAAAAAAAAAAAA.AAAA",
            "v1.1000.AAAAAAAAAAAAAAAAAAAA/A.AAAA",
            "v1.1000",
        ] {
            assert_eq!(
                verify(SECRET, Some(bad), body, UnixTime(1000)),
                Err(SyncError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn batches_accept_only_well_formed_records_under_synced_prefixes() {
        let ok = SyncBatch {
            v: 1,
            items: vec![user_item("u1", 3)],
        };
        assert_eq!(SyncBatch::from_cbor(&ok.to_cbor()).unwrap(), ok);

        let mut wrong_key = user_item("u1", 3);
        wrong_key.key = "user:u2".into();
        let mut wrong_version = user_item("u1", 3);
        wrong_version.version = 4;
        let mut foreign = user_item("u1", 3);
        foreign.key = "jwks:u1".into();
        let mut mistyped = user_item("u1", 3);
        mistyped.key = "video:u1".into();
        let catalog = AdCatalog {
            v: 1,
            campaigns: vec![],
            version: 3,
        };
        let ads = SyncItem {
            key: AdCatalog::KEY.into(),
            version: 3,
            value: catalog.to_cbor(),
            expires_at: None,
        };
        assert_eq!(check_item(&ads), Ok(()));
        let mut other_ads_key = ads.clone();
        other_ads_key.key = "ads:other".into();
        for item in [wrong_key, wrong_version, foreign, mistyped, other_ads_key] {
            let b = SyncBatch {
                v: 1,
                items: vec![item.clone()],
            };
            assert!(
                matches!(
                    SyncBatch::from_cbor(&b.to_cbor()),
                    Err(SyncError::BadRecord { .. })
                ),
                "{item:?}"
            );
        }
        let many = SyncBatch {
            v: 1,
            items: vec![user_item("u1", 1); MAX_ITEMS + 1],
        };
        assert_eq!(
            SyncBatch::from_cbor(&many.to_cbor()),
            Err(SyncError::TooLarge)
        );
        assert!(matches!(
            SyncBatch::from_cbor(b"\xa0"),
            Err(SyncError::MalformedBatch(_))
        ));
    }

    #[test]
    fn reads_the_version_of_any_synced_record() {
        assert_eq!(stored_version(&user_item("u", 7).value), Some(7));
        assert_eq!(stored_version(b"\x01"), None);
    }
}
