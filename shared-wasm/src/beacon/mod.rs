//! Playback beacons: what a player reports about a view, checked here once for the edge (which
//! takes them from anyone) and the origin (which stores them).
//!
//! A **view token** ties a player's reports to a playback the edge allowed. The edge issues one
//! beside every playback URL; it names the view (an id the edge drew at random), the video, the viewer
//! (`u:{user}` when signed in, else a keyed pseudonym of network and browser: no address
//! reaches the origin), the country and the device class the edge saw. A beacon carries the
//! token, so a client can invent none of these; it can only report what it played.
//!
//! Wire format: `{kid}.{payload}.{tag}`, payload = base64url(JSON of [`ViewClaims`]), tag =
//! base64url(HMAC-SHA256(key[kid], DOMAIN ‖ kid ‖ "." ‖ payload)), under the playback keys.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::playback::PlaybackKeys;
use crate::{hmac, CountryCode, UnixTime, VideoId};

mod events;

pub use events::{
    check_events, Batch, Event, Gathered, Ingest, MAX_BODY_BYTES, MAX_EVENTS, MAX_GATHERED,
};

/// Binds the MAC to this use: a view token is never a playback token, nor the reverse.
pub const DOMAIN: &[u8] = b"edge-video/view-token/v1\0";
const VIEWER_DOMAIN: &[u8] = b"edge-video/anonymous-viewer/v1\0";
/// Refused before decoding.
pub const MAX_TOKEN_LEN: usize = 512;
/// How long a player may report on one view: a long film, paused a while, still counts.
pub const TOKEN_TTL_SECS: u64 = 12 * 3600;
/// Clock skew allowed between edge locations.
pub(crate) const LEEWAY_SECS: u64 = 60;

/// What a view token says, as the edge saw it when it allowed the playback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewClaims {
    /// The view: 16 random bytes the edge drew ([`view_id`]).
    #[serde(rename = "w")]
    pub view: String,
    /// The video.
    #[serde(rename = "v")]
    pub video: VideoId,
    /// `u:{user id}` or `a:{pseudonym}` ([`viewer_key`]).
    #[serde(rename = "u")]
    pub viewer: String,
    /// The viewer's country as the runtime reported it.
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub country: Option<CountryCode>,
    /// The device class of the browser that asked.
    #[serde(rename = "d")]
    pub device: Device,
    /// When the playback was allowed.
    #[serde(rename = "i")]
    pub issued: u64,
    /// Reports after this are refused.
    #[serde(rename = "e")]
    pub expires: u64,
}

/// A coarse device class, from the `User-Agent` (statistics only; nothing is decided by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// A computer's browser.
    Desktop,
    /// A phone.
    Mobile,
    /// A tablet.
    Tablet,
    /// A television or a streaming stick.
    Tv,
    /// Anything else.
    Other,
}

impl Device {
    /// The class a `User-Agent` names (first match: TVs, tablets, phones, desktops).
    pub fn of(user_agent: &str) -> Self {
        let ua = user_agent.to_ascii_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| ua.contains(w));
        if has(&[
            "smart-tv", "smarttv", "appletv", "crkey", "roku", "tizen", "webos", "bravia",
        ]) {
            Self::Tv
        } else if has(&["ipad", "tablet"]) || (ua.contains("android") && !ua.contains("mobile")) {
            Self::Tablet
        } else if has(&["mobi", "iphone", "ipod", "android"]) {
            Self::Mobile
        } else if has(&["windows", "macintosh", "x11", "linux", "cros"]) {
            Self::Desktop
        } else {
            Self::Other
        }
    }

    /// The class's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Desktop => "desktop",
            Self::Mobile => "mobile",
            Self::Tablet => "tablet",
            Self::Tv => "tv",
            Self::Other => "other",
        }
    }
}

/// Whether a `User-Agent` says it is a program rather than a person's player: crawlers, link
/// previews, HTTP libraries, headless browsers. Their beacons are accepted and dropped.
pub fn is_bot(user_agent: &str) -> bool {
    let ua = user_agent.to_ascii_lowercase();
    ua.trim().is_empty()
        || [
            "bot",
            "crawl",
            "spider",
            "slurp",
            "preview",
            "headless",
            "curl/",
            "wget/",
            "python",
            "go-http-client",
            "java/",
            "okhttp",
            "libwww",
            "httpclient",
            "axios/",
            "node-fetch",
            "reqwest",
            "lighthouse",
            "phantomjs",
        ]
        .iter()
        .any(|w| ua.contains(w))
}

/// The id of a view, from 16 random bytes the edge drew when it allowed the playback (not the
/// playback token's: two viewers on one network asking in the same second get the same one).
pub fn view_id(random: [u8; 16]) -> String {
    URL_SAFE_NO_PAD.encode(random)
}

/// The viewer a view counts for: `u:{user}` when signed in; otherwise `a:` and a keyed hash of
/// the client's network (its `/24` or `/64`, from [`crate::playback::network_for`]) and
/// `User-Agent`, so views from one browser count once without the origin learning an address.
pub fn viewer_key(
    keys: &PlaybackKeys,
    user: Option<&str>,
    network: Option<&str>,
    user_agent: &str,
) -> String {
    if let Some(user) = user {
        return format!("u:{user}");
    }
    let (_, key) = keys.signing();
    let net = network.unwrap_or("").as_bytes();
    let tag = hmac::sign(key, &[VIEWER_DOMAIN, net, b"\0", user_agent.as_bytes()]);
    format!("a:{}", URL_SAFE_NO_PAD.encode(&tag[..12]))
}

/// Why a view token was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not decodable, forged, or signed with a key this deployment does not hold (one answer
    /// for all three, as for playback tokens).
    #[error("view token is invalid")]
    Invalid,
    /// A genuine token past its expiry.
    #[error("view token has expired")]
    Expired,
}

/// Signs `claims` with the active playback key.
pub fn sign(keys: &PlaybackKeys, claims: &ViewClaims) -> String {
    sign_claims(keys, DOMAIN, claims)
}

/// Verifies `token` at `now`: the tag first, in constant time, then the claims.
pub fn verify(keys: &PlaybackKeys, token: &str, now: UnixTime) -> Result<ViewClaims, TokenError> {
    let claims: ViewClaims = verify_claims(keys, DOMAIN, token)?;
    if now > UnixTime(claims.expires).plus(LEEWAY_SECS) {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// `{kid}.{base64url(JSON)}.{tag}` under the active playback key, the tag bound to `domain` (one
/// per kind of token, so none passes for another).
pub(crate) fn sign_claims<T: Serialize>(keys: &PlaybackKeys, domain: &[u8], claims: &T) -> String {
    let (kid, key) = keys.signing();
    let json = serde_json::to_vec(claims).expect("claims serialize");
    let payload = URL_SAFE_NO_PAD.encode(json);
    let tag = hmac::sign(
        key,
        &[domain, kid.as_str().as_bytes(), b".", payload.as_bytes()],
    );
    format!("{kid}.{payload}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// The claims of a [`sign_claims`] token under any key of the set: the tag checked first, in
/// constant time; expiry is the caller's.
pub(crate) fn verify_claims<T: serde::de::DeserializeOwned>(
    keys: &PlaybackKeys,
    domain: &[u8],
    token: &str,
) -> Result<T, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Invalid);
    }
    let mut parts = token.splitn(3, '.');
    let (Some(kid), Some(payload), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Invalid);
    };
    let key = keys.get(kid).ok_or(TokenError::Invalid)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| TokenError::Invalid)?;
    if !hmac::verify(
        key,
        &[domain, kid.as_bytes(), b".", payload.as_bytes()],
        &tag,
    ) {
        return Err(TokenError::Invalid);
    }
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Invalid)?;
    serde_json::from_slice(&json).map_err(|_| TokenError::Invalid)
}

#[cfg(test)]
mod tests;
