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
//!        ‖ flags(1) [‖ net_len(1) ‖ network if flags & 1] [‖ country(2) if flags & 2]
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

use crate::{hmac, CountryCode, Kid, UnixTime};

mod binding;

pub use binding::{network_for, Binding, BindingPolicy, IpBinding, Viewer};

const VERSION: u8 = 1;
const TAG_LEN: usize = 32;
/// Binds the MAC to this use, so a key shared by mistake with another HMAC scheme cannot mint
/// playback tokens. The MAC covers `DOMAIN ‖ body`.
pub const DOMAIN: &[u8] = b"edge-video/playback-token/v1\0";
/// Refused before decoding: bounds the work an attacker can make the edge do per request.
pub const MAX_TOKEN_LEN: usize = 512;
const MAX_PREFIX_LEN: usize = 200;
/// `ffff:…:ffff/128` is 43 bytes.
const MAX_NETWORK_LEN: usize = 64;
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
    /// The viewer's network and country, where the deployment binds tokens to them.
    pub binding: Binding,
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
    /// A genuine token bound to another network than the viewer's.
    #[error("token is bound to another network")]
    NetworkMismatch,
    /// A genuine token bound to another country than the viewer's.
    #[error("token is bound to another country")]
    CountryMismatch,
}

impl TokenError {
    /// The reason a client may see: `invalid`, `wrong_path`, `expired`, `not_yet_valid`,
    /// `network_mismatch` or `country_mismatch`.
    /// Forged, malformed and unknown-key tokens share one reason so nothing about keys leaks.
    pub fn public_reason(&self) -> &'static str {
        match self {
            Self::Malformed | Self::UnknownKey | Self::BadSignature => "invalid",
            Self::WrongPath => "wrong_path",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::NetworkMismatch => "network_mismatch",
            Self::CountryMismatch => "country_mismatch",
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

    /// The active key's id and bytes (other token kinds signed with the same keys, each under
    /// a domain of its own).
    pub(crate) fn signing(&self) -> (&Kid, &[u8]) {
        (&self.active, &self.keys[&self.active])
    }

    /// The bytes of key `kid`, if the set holds it.
    pub(crate) fn get(&self, kid: &str) -> Option<&[u8]> {
        self.keys
            .iter()
            .find(|(k, _)| k.as_str() == kid)
            .map(|(_, v)| v.as_slice())
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
    let network = claims.binding.network.as_deref();
    let flags = u8::from(network.is_some()) | (u8::from(claims.binding.country.is_some()) << 1);
    buf.push(flags);
    if let Some(net) = network {
        assert!(net.len() <= MAX_NETWORK_LEN, "bad network binding");
        buf.push(net.len() as u8);
        buf.extend_from_slice(net.as_bytes());
    }
    if let Some(c) = claims.binding.country {
        buf.extend_from_slice(&c.bytes());
    }
    let tag = hmac::sign(key, &[DOMAIN, &buf]);
    buf.extend_from_slice(&tag);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A decoded token, borrowed from the decode buffer: nothing is allocated until it has passed.
struct Parsed<'a> {
    kid: &'a str,
    prefix: &'a str,
    not_before: UnixTime,
    expires: UnixTime,
    network: Option<&'a str>,
    country: Option<CountryCode>,
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
    let flags = take(&mut rest, 1)?[0];
    if flags & !0b11 != 0 {
        return Err(TokenError::Malformed);
    }
    let mut network = None;
    if flags & 1 != 0 {
        let len = take(&mut rest, 1)?[0] as usize;
        let net = core::str::from_utf8(take(&mut rest, len)?).map_err(|_| TokenError::Malformed)?;
        network = Some(net);
    }
    let mut country = None;
    if flags & 2 != 0 {
        let c = core::str::from_utf8(take(&mut rest, 2)?).map_err(|_| TokenError::Malformed)?;
        country = Some(CountryCode::parse(c).map_err(|_| TokenError::Malformed)?);
    }
    if !rest.is_empty() {
        return Err(TokenError::Malformed);
    }
    Ok(Parsed {
        kid,
        prefix,
        not_before: UnixTime(nbf),
        expires: UnixTime(exp),
        network,
        country,
        body,
        tag,
    })
}

/// Where and when a token is being used.
#[derive(Debug, Clone, Copy)]
pub struct Use<'a> {
    /// The canonical media path the edge is about to serve (token removed), e.g.
    /// `/hls/abc/480p/seg_001.ts`; the edge builds it from validated components.
    pub path: &'a str,
    /// The current time.
    pub now: UnixTime,
    /// Clock skew allowed on both ends of the validity window.
    pub leeway_secs: u64,
    /// Who is asking.
    pub viewer: Viewer<'a>,
}

/// Verifies `token` for one request.
pub fn verify(keys: &PlaybackKeys, token: &str, at: &Use<'_>) -> Result<Grant, TokenError> {
    let Use {
        path,
        now,
        leeway_secs,
        viewer,
    } = *at;
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    // Decoded on the stack: this runs for every segment request.
    let mut buf = [0u8; MAX_TOKEN_LEN * 3 / 4 + 3];
    let len = URL_SAFE_NO_PAD
        .decode_slice(token, &mut buf)
        .map_err(|_| TokenError::Malformed)?;
    let p = parse(&buf[..len])?;
    let (kid, key) = keys
        .keys
        .get_key_value(p.kid)
        .ok_or(TokenError::UnknownKey)?;
    if !hmac::verify(key, &[DOMAIN, p.body], p.tag) {
        return Err(TokenError::BadSignature);
    }
    if !valid_prefix(p.prefix) || !path.starts_with(p.prefix) {
        return Err(TokenError::WrongPath);
    }
    if now > p.expires.plus(leeway_secs) {
        return Err(TokenError::Expired);
    }
    if now < p.not_before.minus(leeway_secs) {
        return Err(TokenError::NotYetValid);
    }
    if let Some(net) = p.network {
        if !binding::in_network(net, viewer.ip) {
            return Err(TokenError::NetworkMismatch);
        }
    }
    if let Some(c) = p.country {
        if viewer.country != Some(c) {
            return Err(TokenError::CountryMismatch);
        }
    }
    Ok(Grant {
        kid: kid.clone(),
        claims: Claims {
            prefix: p.prefix.to_owned(),
            not_before: p.not_before,
            expires: p.expires,
            binding: Binding {
                network: p.network.map(str::to_owned),
                country: p.country,
            },
        },
    })
}

#[cfg(test)]
mod tests;
