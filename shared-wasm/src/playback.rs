//! Playback tokens: short HMAC-SHA256 capabilities that sit inside the media path.
//!
//! A token is issued for a path prefix such as `/hls/{video}/` and placed in the URL as
//! `/hls/{video}/{token}/master.m3u8`. Every relative URI in the playlists then resolves under the
//! same token, so any HLS player works unchanged and no query string has to survive a CDN.
//!
//! Wire format (one base64url segment, no padding):
//!
//! ```text
//! body = version(1) ‖ kid_len(1) ‖ kid ‖ nbf(u64 BE) ‖ exp(u64 BE) ‖ prefix_len(1) ‖ prefix
//! tag  = HMAC-SHA256(key[kid], DOMAIN ‖ body)
//! token = base64url(body ‖ tag)
//! ```
//!
//! Verification checks the tag first (in constant time) and only then looks at the claims, so a
//! forged token can never learn whether its path or times would have passed.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use thiserror::Error;

use crate::{hmac, Kid, UnixTime};

const VERSION: u8 = 1;
const TAG_LEN: usize = 32;
/// Binds the MAC to this use, so a key shared by mistake with another HMAC scheme cannot mint
/// playback tokens.
const DOMAIN: &[u8] = b"edge-video/playback-token/v1\0";
/// Refused before decoding: bounds the work an attacker can make the edge do per request.
pub const MAX_TOKEN_LEN: usize = 512;
const MAX_PREFIX_LEN: usize = 200;
/// Shortest playback key accepted: the full HMAC-SHA256 security level.
pub const MIN_KEY_LEN: usize = 32;

/// What a token grants: a path prefix for a time window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Paths this token opens; starts and ends with `/`.
    pub prefix: String,
    /// Not valid before this instant.
    pub not_before: UnixTime,
    /// Not valid after this instant.
    pub expires: UnixTime,
}

/// A verified token: its claims and the key that signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The key that signed the token.
    pub kid: Kid,
    /// The verified claims.
    pub claims: Claims,
}

/// Why a token was refused. The first three are indistinguishable to a client on purpose
/// ([`TokenError::public_reason`]); the rest are told apart so players can react (re-fetch a
/// token when expired, report a bug when the path is wrong).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not decodable, wrong version, or fields out of bounds.
    #[error("token is malformed")]
    Malformed,
    /// Signed with a key id this deployment does not hold (never held, or rotated out).
    #[error("token key is unknown")]
    UnknownKey,
    /// The tag does not match: the token was forged or tampered with.
    #[error("token signature does not match")]
    BadSignature,
    /// A genuine token, used outside the prefix it was issued for.
    #[error("token does not cover this path")]
    WrongPath,
    /// A genuine token whose `exp` (plus leeway) has passed.
    #[error("token has expired")]
    Expired,
    /// A genuine token whose `nbf` (minus leeway) is still ahead.
    #[error("token is not valid yet")]
    NotYetValid,
}

impl TokenError {
    /// The reason a client may see: `invalid`, `wrong_path`, `expired` or `not_yet_valid`.
    /// Forged, malformed and unknown-key tokens share one reason so nothing about keys leaks.
    pub fn public_reason(&self) -> &'static str {
        match self {
            Self::Malformed | Self::UnknownKey | Self::BadSignature => "invalid",
            Self::WrongPath => "wrong_path",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
        }
    }
}

/// Why a key set could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A key shorter than [`MIN_KEY_LEN`] bytes.
    #[error("playback key {0} is shorter than {MIN_KEY_LEN} bytes")]
    TooShort(Kid),
    /// The active kid is not among the keys.
    #[error("active playback key {0} is not in the key set")]
    MissingActive(Kid),
}

/// The signing key in use plus older keys still accepted, by `kid`. Removing a key from the set
/// kills every token it signed.
#[derive(Clone)]
pub struct PlaybackKeys {
    active: Kid,
    keys: BTreeMap<Kid, Vec<u8>>,
}

impl core::fmt::Debug for PlaybackKeys {
    // Key bytes must never reach a log line.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PlaybackKeys")
            .field("active", &self.active)
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl PlaybackKeys {
    /// Builds the key set; every key must be at least [`MIN_KEY_LEN`] bytes.
    pub fn new(active: Kid, keys: BTreeMap<Kid, Vec<u8>>) -> Result<Self, KeyError> {
        if let Some((kid, _)) = keys.iter().find(|(_, k)| k.len() < MIN_KEY_LEN) {
            return Err(KeyError::TooShort(kid.clone()));
        }
        if !keys.contains_key(&active) {
            return Err(KeyError::MissingActive(active));
        }
        Ok(Self { active, keys })
    }

    /// The kid new tokens are signed with.
    pub fn active(&self) -> &Kid {
        &self.active
    }
}

fn valid_prefix(prefix: &str) -> bool {
    prefix.len() <= MAX_PREFIX_LEN
        && prefix.starts_with('/')
        && prefix.ends_with('/')
        && !prefix.contains("//")
        && !prefix.split('/').any(|seg| seg == "." || seg == "..")
        && prefix.bytes().all(|b| b.is_ascii_graphic() && b != b'%')
}

/// Signs `claims` with the active key.
///
/// # Panics
/// If `claims.prefix` is not a canonical absolute prefix (`/…/`); that is a programming error.
pub fn sign(keys: &PlaybackKeys, claims: &Claims) -> String {
    assert!(valid_prefix(&claims.prefix), "bad token prefix");
    let kid = keys.active.as_str().as_bytes();
    let key = &keys.keys[&keys.active];
    let mut buf = Vec::with_capacity(3 + kid.len() + 16 + claims.prefix.len() + TAG_LEN);
    buf.push(VERSION);
    buf.push(kid.len() as u8); // Kid::MAX_LEN is 32
    buf.extend_from_slice(kid);
    buf.extend_from_slice(&claims.not_before.0.to_be_bytes());
    buf.extend_from_slice(&claims.expires.0.to_be_bytes());
    buf.push(claims.prefix.len() as u8); // bounded by MAX_PREFIX_LEN
    buf.extend_from_slice(claims.prefix.as_bytes());
    let tag = hmac::sign(key, &[DOMAIN, &buf]);
    buf.extend_from_slice(&tag);
    URL_SAFE_NO_PAD.encode(buf)
}

struct Parsed<'a> {
    kid: &'a str,
    claims: Claims,
    body: &'a [u8],
    tag: &'a [u8],
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], TokenError> {
    if input.len() < n {
        return Err(TokenError::Malformed);
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

fn parse(raw: &[u8]) -> Result<Parsed<'_>, TokenError> {
    if raw.len() < TAG_LEN {
        return Err(TokenError::Malformed);
    }
    let (body, tag) = raw.split_at(raw.len() - TAG_LEN);
    let mut rest = body;
    if take(&mut rest, 1)? != [VERSION] {
        return Err(TokenError::Malformed);
    }
    let kid_len = take(&mut rest, 1)?[0] as usize;
    let kid = core::str::from_utf8(take(&mut rest, kid_len)?).map_err(|_| TokenError::Malformed)?;
    let nbf = u64::from_be_bytes(take(&mut rest, 8)?.try_into().expect("8 bytes"));
    let exp = u64::from_be_bytes(take(&mut rest, 8)?.try_into().expect("8 bytes"));
    let prefix_len = take(&mut rest, 1)?[0] as usize;
    let prefix =
        core::str::from_utf8(take(&mut rest, prefix_len)?).map_err(|_| TokenError::Malformed)?;
    if !rest.is_empty() {
        return Err(TokenError::Malformed);
    }
    Ok(Parsed {
        kid,
        claims: Claims {
            prefix: prefix.to_owned(),
            not_before: UnixTime(nbf),
            expires: UnixTime(exp),
        },
        body,
        tag,
    })
}

/// Verifies `token` for a request to `path` at `now`, allowing `leeway_secs` of clock skew on
/// both ends of the validity window.
///
/// `path` must be the canonical media path the edge is about to serve (token removed), e.g.
/// `/hls/abc/480p/seg_001.ts`; the edge builds it from validated components.
pub fn verify(
    keys: &PlaybackKeys,
    token: &str,
    path: &str,
    now: UnixTime,
    leeway_secs: u64,
) -> Result<Grant, TokenError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let raw = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| TokenError::Malformed)?;
    let parsed = parse(&raw)?;
    let kid = Kid::parse(parsed.kid).map_err(|_| TokenError::Malformed)?;
    let key = keys.keys.get(&kid).ok_or(TokenError::UnknownKey)?;
    if !hmac::verify(key, &[DOMAIN, parsed.body], parsed.tag) {
        return Err(TokenError::BadSignature);
    }
    let claims = parsed.claims;
    if !valid_prefix(&claims.prefix) || !path.starts_with(&claims.prefix) {
        return Err(TokenError::WrongPath);
    }
    if now > claims.expires.plus(leeway_secs) {
        return Err(TokenError::Expired);
    }
    if now < claims.not_before.minus(leeway_secs) {
        return Err(TokenError::NotYetValid);
    }
    Ok(Grant { kid, claims })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kid(s: &str) -> Kid {
        Kid::parse(s).unwrap()
    }

    fn keys(active: &str) -> PlaybackKeys {
        let mut m = BTreeMap::new();
        m.insert(kid("k1"), vec![1u8; 32]);
        m.insert(kid("k2"), vec![2u8; 32]);
        PlaybackKeys::new(kid(active), m).unwrap()
    }

    fn claims() -> Claims {
        Claims {
            prefix: "/hls/abc/".into(),
            not_before: UnixTime(1_000),
            expires: UnixTime(2_000),
        }
    }

    const LEEWAY: u64 = 30;

    #[test]
    fn round_trip_grants_the_prefix() {
        let k = keys("k1");
        let t = sign(&k, &claims());
        assert!(t.len() < 120, "token is {} chars", t.len());
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let g = verify(&k, &t, "/hls/abc/480p/seg_001.ts", UnixTime(1_500), LEEWAY).unwrap();
        assert_eq!(g.kid, kid("k1"));
        assert_eq!(g.claims, claims());
    }

    #[test]
    fn expiry_and_not_before_honour_the_leeway() {
        let k = keys("k1");
        let t = sign(&k, &claims());
        let p = "/hls/abc/master.m3u8";
        assert!(verify(&k, &t, p, UnixTime(2_030), LEEWAY).is_ok());
        assert_eq!(
            verify(&k, &t, p, UnixTime(2_031), LEEWAY),
            Err(TokenError::Expired)
        );
        assert!(verify(&k, &t, p, UnixTime(970), LEEWAY).is_ok());
        assert_eq!(
            verify(&k, &t, p, UnixTime(969), LEEWAY),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn other_video_is_wrong_path_even_with_shared_prefix() {
        let k = keys("k1");
        let t = sign(&k, &claims());
        for p in [
            "/hls/abcd/master.m3u8",
            "/hls/ab/master.m3u8",
            "/hls/xyz/master.m3u8",
        ] {
            assert_eq!(
                verify(&k, &t, p, UnixTime(1_500), LEEWAY),
                Err(TokenError::WrongPath)
            );
        }
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let k = keys("k1");
        let t = sign(&k, &claims());
        let raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        for i in 0..raw.len() {
            for bit in 0..8 {
                let mut m = raw.clone();
                m[i] ^= 1 << bit;
                let e = verify(
                    &k,
                    &URL_SAFE_NO_PAD.encode(&m),
                    "/hls/abc/x.ts",
                    UnixTime(1_500),
                    LEEWAY,
                )
                .unwrap_err();
                assert!(
                    matches!(
                        e,
                        TokenError::Malformed | TokenError::UnknownKey | TokenError::BadSignature
                    ),
                    "byte {i} bit {bit}: {e:?}"
                );
            }
        }
    }

    #[test]
    fn rotation_accepts_old_kid_until_removed() {
        let old = sign(&keys("k1"), &claims());
        let rotated = keys("k2");
        assert!(verify(&rotated, &old, "/hls/abc/a.ts", UnixTime(1_500), LEEWAY).is_ok());
        let mut only_k2 = BTreeMap::new();
        only_k2.insert(kid("k2"), vec![2u8; 32]);
        let removed = PlaybackKeys::new(kid("k2"), only_k2).unwrap();
        assert_eq!(
            verify(&removed, &old, "/hls/abc/a.ts", UnixTime(1_500), LEEWAY),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn key_under_32_bytes_is_refused() {
        let mut m = BTreeMap::new();
        m.insert(kid("k1"), vec![1u8; 31]);
        assert_eq!(
            PlaybackKeys::new(kid("k1"), m).unwrap_err(),
            KeyError::TooShort(kid("k1"))
        );
    }

    #[test]
    fn garbage_is_malformed() {
        let k = keys("k1");
        for t in ["", "!!!", "AAAA", &"A".repeat(MAX_TOKEN_LEN + 1)] {
            assert_eq!(
                verify(&k, t, "/hls/abc/a", UnixTime(0), 0),
                Err(TokenError::Malformed)
            );
        }
    }

    #[test]
    fn debug_never_prints_key_bytes() {
        let s = format!("{:?}", keys("k1"));
        assert!(!s.contains("[1, 1"), "{s}");
    }

    #[test]
    fn public_reasons_hide_key_details() {
        assert_eq!(
            TokenError::UnknownKey.public_reason(),
            TokenError::BadSignature.public_reason()
        );
        assert_eq!(TokenError::Expired.public_reason(), "expired");
    }
}
