//! KV records the origin publishes and the edge reads, encoded as CBOR.
//! Their schemas live in `kv-schemas/*.cddl`; a test checks encodings against them.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{CountryCode, VideoId};

mod ads;
mod auth;
pub use ads::{AdCampaign, AdCatalog, MAX_CAMPAIGNS};
pub use auth::{Entitlement, EntitlementStatus, FeedVersion, RevokedSession, UserRecord};

/// Records larger than this are refused before decoding.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;
/// Current schema version of [`VideoRecord`].
pub const VIDEO_RECORD_VERSION: u8 = 1;

/// Who may play a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Anyone, no login.
    Public,
    /// Logged-in members.
    Members,
    /// Only its owner, never through a playback URL.
    Private,
}

/// Where a video is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoState {
    /// Waiting for its upload.
    Uploading,
    /// Being transcoded.
    Processing,
    /// Playable.
    Ready,
    /// Transcoding failed.
    Failed,
}

/// Whether a country list admits or excludes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CountryMode {
    /// Only the listed countries may play.
    Allow,
    /// The listed countries may not play.
    Deny,
}

/// A video's country rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountryRule {
    /// Allow-list or deny-list.
    pub mode: CountryMode,
    /// The countries.
    pub list: Vec<CountryCode>,
}

impl CountryRule {
    /// Whether a viewer in `country` may play. An unknown country passes a deny-list (nothing
    /// says it is excluded) and fails an allow-list (nothing says it is admitted).
    pub fn admits(&self, country: Option<CountryCode>) -> bool {
        let listed = country.is_some_and(|c| self.list.contains(&c));
        match self.mode {
            CountryMode::Allow => listed,
            CountryMode::Deny => !listed,
        }
    }
}

/// The edge's view of one video (`video:{id}` in KV).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoRecord {
    /// Schema version, [`VIDEO_RECORD_VERSION`].
    pub v: u8,
    /// The video.
    pub id: VideoId,
    /// Title, for players and logs.
    pub title: String,
    /// Who may play it.
    pub visibility: Visibility,
    /// Whether it is playable.
    pub state: VideoState,
    /// Duration in milliseconds, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Where it may be played; absent: everywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub countries: Option<CountryRule>,
    /// Taken down (legal or policy): every playback URL for it fails at once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub taken_down: bool,
    /// How this video's tokens are bound; absent: the deployment's setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<crate::playback::BindingPolicy>,
    /// Its category's slug, if it has one (what ad campaigns target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Last change, Unix seconds.
    pub updated_at: u64,
    /// Monotonic per video; a newer version always wins.
    pub version: u64,
}

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Larger than [`MAX_RECORD_BYTES`].
    #[error("record too large")]
    TooLarge,
    /// Not the expected CBOR.
    #[error("record malformed: {0}")]
    Malformed(String),
    /// A schema version this code does not know.
    #[error("unsupported record version {0}")]
    Version(u8),
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    ciborium::into_writer(value, &mut out).expect("writing to a Vec cannot fail");
    out
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, RecordError> {
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(RecordError::TooLarge);
    }
    decode_unbounded(bytes)
}

fn decode_unbounded<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, RecordError> {
    ciborium::from_reader(bytes).map_err(|e| RecordError::Malformed(e.to_string()))
}

fn check_version(found: u8, expected: u8) -> Result<(), RecordError> {
    if found == expected {
        Ok(())
    } else {
        Err(RecordError::Version(found))
    }
}

/// `to_cbor` and `from_cbor` (size cap, then schema version `v`) for a record type.
macro_rules! cbor_record {
    ($ty:ty, $version:expr) => {
        impl $ty {
            /// CBOR encoding.
            pub fn to_cbor(&self) -> Vec<u8> {
                $crate::record::encode(self)
            }

            /// Decodes (at most `MAX_RECORD_BYTES`) and checks the schema version.
            pub fn from_cbor(bytes: &[u8]) -> Result<Self, $crate::record::RecordError> {
                let rec: Self = $crate::record::decode(bytes)?;
                $crate::record::check_version(rec.v, $version)?;
                Ok(rec)
            }
        }
    };
}
use cbor_record;

cbor_record!(VideoRecord, VIDEO_RECORD_VERSION);
cbor_record!(JwksRecord, 1);

impl VideoRecord {
    /// KV key for a video's record.
    pub fn key(id: &VideoId) -> String {
        format!("video:{id}")
    }
}

/// The origin's JWKS as last fetched by the edge (`jwks` in KV).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwksRecord {
    /// Schema version, 1.
    pub v: u8,
    /// When the edge fetched it, Unix seconds.
    pub fetched_at: u64,
    /// The JWKS JSON document as served by the origin.
    pub jwks: String,
}

impl JwksRecord {
    /// A record fetched at `now`.
    pub fn new(now: crate::UnixTime, jwks: String) -> Self {
        Self {
            v: 1,
            fetched_at: now.0,
            jwks,
        }
    }
}

/// A response kept in a key-value store by runtimes without an HTTP cache (Spin):
/// `cache:{url}` in KV, inside a [`KvEnvelope`] that carries its expiry; see
/// `kv-schemas/cached_response.cddl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedResponse {
    /// Schema version, 1.
    pub v: u8,
    /// Status code.
    pub status: u16,
    /// Headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// Body bytes; empty when the body is kept apart in [`chunks`](Self::chunks).
    #[serde(with = "serde_bytes_vec")]
    pub body: Vec<u8>,
    /// Where a large body is kept instead: a range then reads only the chunks it covers, not
    /// the whole file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks: Option<Chunks>,
}

/// A body of `len` bytes kept in chunks of `size` bytes (the last one shorter), each its own
/// entry beside the response's (`{key}#{gen}.{i}`, see [`Chunks::key`]). `gen` is drawn at random
/// for each write, so a response that replaces another never reads the other's chunks: the writer
/// stores the chunks before the response that names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunks {
    /// The body's length in bytes.
    pub len: u64,
    /// Bytes per chunk.
    pub size: u32,
    /// This write's generation.
    pub gen: u64,
}

impl Chunks {
    /// The chunk size the Spin adapter writes: a 64 KiB range then reads at most 512 KiB.
    pub const SIZE: u32 = 256 << 10;

    /// How many chunks the body has.
    pub fn count(&self) -> u64 {
        self.len.div_ceil(u64::from(self.size.max(1)))
    }

    /// The key of chunk `i` of the response kept under `key`.
    pub fn key(&self, key: &str, i: u64) -> String {
        format!("{key}#{:016x}.{i}", self.gen)
    }

    /// The chunks that hold bytes `first..=last` of the body (both below `len`), and where
    /// `first` is in the first of them.
    pub fn covering(&self, first: u64, last: u64) -> (std::ops::RangeInclusive<u64>, u64) {
        let size = u64::from(self.size.max(1));
        (first / size..=last / size, first % size)
    }
}

/// Encodes a `Vec<u8>` as a CBOR byte string rather than an array of integers.
pub(crate) mod serde_bytes_vec {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let v = ciborium::Value::deserialize(d)?;
        v.into_bytes()
            .map_err(|_| serde::de::Error::custom("expected a byte string"))
    }
}

impl CachedResponse {
    /// CBOR encoding.
    pub fn to_cbor(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes and checks the schema version. Entries may be as large as a media segment, so
    /// the record size cap does not apply.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, RecordError> {
        let rec: Self = decode_unbounded(bytes)?;
        check_version(rec.v, 1)?;
        Ok(rec)
    }
}

/// How the Spin adapter stores every value written through `Platform::kv_put`: Spin's stores
/// have no expiry, so the envelope carries it (`kv-schemas/spin_envelope.cddl`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvEnvelope {
    /// Schema version, 1.
    pub v: u8,
    /// Ignored from this instant on, Unix seconds; absent: kept until overwritten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// The stored value.
    #[serde(with = "serde_bytes_vec")]
    pub value: Vec<u8>,
}

impl KvEnvelope {
    /// CBOR encoding.
    pub fn to_cbor(&self) -> Vec<u8> {
        encode(self)
    }

    /// The value if the envelope decodes and has not expired at `now`.
    pub fn open(bytes: &[u8], now: crate::UnixTime) -> Option<Vec<u8>> {
        let env: Self = decode_unbounded(bytes).ok()?;
        (env.v == 1 && env.expires_at.is_none_or(|t| now.0 < t)).then_some(env.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> VideoRecord {
        VideoRecord {
            v: 1,
            id: VideoId::parse("demo-free").unwrap(),
            title: "Test pattern".into(),
            visibility: Visibility::Members,
            state: VideoState::Ready,
            duration_ms: Some(12_000),
            countries: None,
            taken_down: false,
            binding: None,
            category: None,
            updated_at: 1_700_000_000,
            version: 3,
        }
    }

    #[test]
    fn cbor_round_trip() {
        let r = sample();
        assert_eq!(VideoRecord::from_cbor(&r.to_cbor()).unwrap(), r);
    }

    #[test]
    fn envelopes_expire() {
        let env = KvEnvelope {
            v: 1,
            expires_at: Some(100),
            value: b"x".to_vec(),
        };
        let bytes = env.to_cbor();
        assert_eq!(
            KvEnvelope::open(&bytes, crate::UnixTime(99)),
            Some(b"x".to_vec())
        );
        assert_eq!(KvEnvelope::open(&bytes, crate::UnixTime(100)), None);
        let forever = KvEnvelope {
            expires_at: None,
            ..env
        };
        assert!(KvEnvelope::open(&forever.to_cbor(), crate::UnixTime(u64::MAX)).is_some());
        assert_eq!(KvEnvelope::open(b"garbage", crate::UnixTime(0)), None);
    }

    #[test]
    fn country_rules() {
        let de = CountryCode::parse("DE").ok();
        let fr = CountryCode::parse("FR").ok();
        let allow = CountryRule {
            mode: CountryMode::Allow,
            list: vec![fr.unwrap()],
        };
        assert!(allow.admits(fr) && !allow.admits(de) && !allow.admits(None));
        let deny = CountryRule {
            mode: CountryMode::Deny,
            list: vec![fr.unwrap()],
        };
        assert!(!deny.admits(fr) && deny.admits(de) && deny.admits(None));
    }

    #[test]
    fn optional_fields_round_trip() {
        let mut r = sample();
        r.countries = Some(CountryRule {
            mode: CountryMode::Deny,
            list: vec![CountryCode::parse("FR").unwrap()],
        });
        r.taken_down = true;
        r.binding = Some(crate::playback::BindingPolicy {
            ip: crate::playback::IpBinding::Exact,
            country: false,
        });
        assert_eq!(VideoRecord::from_cbor(&r.to_cbor()).unwrap(), r);
    }

    #[test]
    fn refuses_unknown_version_and_garbage() {
        let mut r = sample();
        r.v = 2;
        assert_eq!(
            VideoRecord::from_cbor(&r.to_cbor()),
            Err(RecordError::Version(2))
        );
        assert!(matches!(
            VideoRecord::from_cbor(b"\xff\x00"),
            Err(RecordError::Malformed(_))
        ));
        assert_eq!(
            VideoRecord::from_cbor(&vec![0u8; MAX_RECORD_BYTES + 1]),
            Err(RecordError::TooLarge)
        );
    }

    #[test]
    fn bad_id_inside_record_is_refused() {
        let mut v = ciborium::Value::serialized(&sample()).unwrap();
        if let ciborium::Value::Map(m) = &mut v {
            for (k, val) in m.iter_mut() {
                if k.as_text() == Some("id") {
                    *val = ciborium::Value::Text("../etc".into());
                }
            }
        }
        let mut bytes = Vec::new();
        ciborium::into_writer(&v, &mut bytes).unwrap();
        assert!(VideoRecord::from_cbor(&bytes).is_err());
    }

    #[test]
    fn a_range_reads_only_the_chunks_that_hold_it() {
        let c = Chunks {
            len: 3 * 100 + 7,
            size: 100,
            gen: 0xab,
        };
        assert_eq!(c.count(), 4);
        assert_eq!(c.covering(0, 0), (0..=0, 0));
        assert_eq!(c.covering(99, 100), (0..=1, 99), "across a boundary");
        assert_eq!(c.covering(100, 199), (1..=1, 0), "one whole chunk");
        assert_eq!(c.covering(250, 306), (2..=3, 50), "into the short last one");
        assert_eq!(c.covering(0, 306), (0..=3, 0));
        assert_eq!(c.key("cache:u", 3), "cache:u#00000000000000ab.3");
        let exact = Chunks { len: 300, ..c };
        assert_eq!(exact.count(), 3);
    }
}
