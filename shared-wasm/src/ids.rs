//! Domain newtypes. Each has one `parse` constructor, so a value of the type is always valid.

use core::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use thiserror::Error;

/// Why a string was refused as an identifier.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IdError {
    /// Empty, or longer than the type allows.
    #[error("must be 1 to {max} characters long")]
    Length {
        /// The longest value the type accepts.
        max: usize,
    },
    /// A character outside `A-Z a-z 0-9 - _`.
    #[error("may contain only letters, digits, '-' and '_'")]
    Charset,
    /// Not a letter then a letter or digit.
    #[error("must be a two-character country code (ISO 3166-1 alpha-2, or T1, XX, A1 …)")]
    Country,
}

fn check_token_chars(s: &str, max: usize) -> Result<(), IdError> {
    if s.is_empty() || s.len() > max {
        return Err(IdError::Length { max });
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(IdError::Charset);
    }
    Ok(())
}

macro_rules! token_newtype {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The longest accepted value, in bytes.
            pub const MAX_LEN: usize = $max;

            /// Accepts 1 to `MAX_LEN` characters from `A-Z a-z 0-9 - _`.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                check_token_chars(s, Self::MAX_LEN)?;
                Ok(Self(s.to_owned()))
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        // Eq/Ord derive from the inner String, so lookups by &str agree with them.
        impl core::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

token_newtype!(
    /// A video's public identifier. It appears in URLs and KV keys, hence the narrow charset:
    /// no `/`, `.` or `%` can ever reach a path or a key through it.
    VideoId,
    64
);

token_newtype!(
    /// A key identifier (`kid`) for playback-token and JWT keys, so keys can rotate.
    Kid,
    32
);

token_newtype!(
    /// The id of one request, in the logs of the edge and the origin and on the response
    /// (`x-request-id`). The narrow charset and the length bound keep whatever a client sends
    /// from forging log lines or bloating them; an id that fails them is replaced, never
    /// trimmed.
    RequestId,
    64
);

impl RequestId {
    /// The header that carries it, on requests (edge → origin) and responses.
    pub const HEADER: &'static str = "x-request-id";

    /// A fresh id from 16 random bytes (the caller's randomness: the core has none), as 22
    /// base64url characters.
    pub fn from_random(bytes: [u8; 16]) -> Self {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The incoming id when there is a valid one, else a fresh one made by `fresh`.
    pub fn keep_or(incoming: Option<&str>, fresh: impl FnOnce() -> [u8; 16]) -> Self {
        incoming
            .and_then(|s| Self::parse(s).ok())
            .unwrap_or_else(|| Self::from_random(fresh()))
    }
}

/// A two-character country code as runtimes report them, upper case: ISO 3166-1 alpha-2, and
/// the codes geolocation services add beside it (Cloudflare's `T1` for Tor and `XX` for
/// unknown, `A1`/`A2` for anonymous proxies and satellite providers). They are kept as codes,
/// so a country rule can name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Accepts a letter then a letter or digit, in either case.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        match s.trim().as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphanumeric() => {
                Ok(Self([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => Err(IdError::Country),
        }
    }

    /// The two upper-case letters.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0).expect("ASCII letters")
    }

    /// The two bytes.
    pub fn bytes(&self) -> [u8; 2] {
        self.0
    }
}

impl Serialize for CountryCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CountryCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Seconds since the Unix epoch. The core never reads a clock; callers pass this in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixTime(pub u64);

impl UnixTime {
    /// `self + secs`, saturating instead of wrapping.
    pub fn plus(self, secs: u64) -> Self {
        Self(self.0.saturating_add(secs))
    }

    /// `self - secs`, saturating at the epoch.
    pub fn minus(self, secs: u64) -> Self {
        Self(self.0.saturating_sub(secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_id_accepts_url_safe_tokens() {
        assert_eq!(
            VideoId::parse("demo-free_01").unwrap().as_str(),
            "demo-free_01"
        );
    }

    #[test]
    fn video_id_refuses_path_characters() {
        for bad in ["", "a/b", "..", "a.b", "%2e", "a b", "é"] {
            assert!(VideoId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            VideoId::parse(&"a".repeat(65)),
            Err(IdError::Length { max: 64 })
        );
    }

    #[test]
    fn country_codes() {
        assert_eq!(CountryCode::parse("de").unwrap().as_str(), "DE");
        for kept in ["T1", "XX", "a1"] {
            let code = CountryCode::parse(kept).unwrap();
            assert_eq!(code.as_str(), kept.to_ascii_uppercase());
        }
        for bad in ["", "D", "DEU", "1A", "11", "T-", "é"] {
            assert_eq!(CountryCode::parse(bad), Err(IdError::Country), "{bad:?}");
        }
    }

    #[test]
    fn request_ids_are_kept_only_when_valid() {
        let fresh = || [0xfb; 16];
        let made = RequestId::from_random(fresh());
        assert_eq!(made.as_str(), "-_v7-_v7-_v7-_v7-_v7-w");
        assert!(
            RequestId::parse(made.as_str()).is_ok(),
            "a made id is valid"
        );
        let uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";
        assert_eq!(RequestId::keep_or(Some(uuid), fresh).as_str(), uuid);
        let too_long = "a".repeat(65);
        for bad in [
            "",
            "a b",
            "id\nFAKE log line",
            "a\"b",
            "ä",
            "a.b",
            too_long.as_str(),
        ] {
            assert_eq!(RequestId::keep_or(Some(bad), fresh), made, "{bad:?} kept");
        }
        assert_eq!(RequestId::keep_or(None, fresh), made);
    }

    #[test]
    fn deserialize_goes_through_parse() {
        let bad: Result<Kid, _> = serde_json::from_str("\"../x\"");
        assert!(bad.is_err());
        let good: Kid = serde_json::from_str("\"k1\"").unwrap();
        assert_eq!(good.as_str(), "k1");
    }
}
