//! Video ads: which campaign runs before a video, the token its tracking URLs carry, the events
//! they report, and the VAST 4 document that describes the ad to a player.
//!
//! An **ad token** is signed by the edge when it serves an ad, like a view token
//! ([`crate::beacon`]) but under a domain of its own: it names the ad view (16 random bytes),
//! the campaign, the video the ad ran before, the viewer and the country. A tracking request
//! carries it, so a client can only say which of the listed events happened, never to which
//! campaign, video or viewer; the origin stores each event once per ad view.

use serde::{Deserialize, Serialize};

use crate::beacon::{sign_claims, verify_claims, TokenError, LEEWAY_SECS};
use crate::playback::PlaybackKeys;
use crate::record::AdCampaign;
use crate::{CountryCode, UnixTime, VideoId};

mod vast;

pub use vast::{document, empty, Tracking, VAST_CONTENT_TYPE};

/// Binds the MAC to this use: an ad token is neither a view token nor a playback token.
pub const DOMAIN: &[u8] = b"edge-video/ad-token/v1\0";
/// How long an ad's tracking URLs are taken: the ad plays within minutes of being served.
pub const TOKEN_TTL_SECS: u64 = 3600;
/// Seconds of the ad a viewer must watch before it may be skipped.
pub const SKIP_AFTER_SECS: u64 = 5;

/// What an ad token says, as the edge saw it when it served the ad.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdClaims {
    /// The ad view: 16 random bytes the edge drew.
    #[serde(rename = "a")]
    pub ad_view: String,
    /// The campaign.
    #[serde(rename = "c")]
    pub campaign: String,
    /// The video the ad ran before (the creator it earns for).
    #[serde(rename = "v")]
    pub video: VideoId,
    /// `u:{user id}` or `a:{pseudonym}` ([`crate::beacon::viewer_key`]).
    #[serde(rename = "u")]
    pub viewer: String,
    /// The viewer's country as the runtime reported it.
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    pub country: Option<CountryCode>,
    /// When the ad was served.
    #[serde(rename = "i")]
    pub issued: u64,
    /// Tracking after this is refused.
    #[serde(rename = "e")]
    pub expires: u64,
}

/// Signs `claims` with the active playback key.
pub fn sign(keys: &PlaybackKeys, claims: &AdClaims) -> String {
    sign_claims(keys, DOMAIN, claims)
}

/// Verifies `token` at `now`: the tag first, in constant time, then the claims.
pub fn verify(keys: &PlaybackKeys, token: &str, now: UnixTime) -> Result<AdClaims, TokenError> {
    let claims: AdClaims = verify_claims(keys, DOMAIN, token)?;
    if now > UnixTime(claims.expires).plus(LEEWAY_SECS) {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// What a tracking URL reports; each is counted once per ad view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdEvent {
    /// The ad's first frame was shown (what the advertiser pays for).
    Impression,
    /// Played to a quarter.
    FirstQuartile,
    /// Played to half.
    Midpoint,
    /// Played to three quarters.
    ThirdQuartile,
    /// Played to the end.
    Complete,
    /// Skipped.
    Skip,
    /// Clicked through.
    Click,
}

impl AdEvent {
    /// Every event, in the order an ad view meets them.
    pub const ALL: [AdEvent; 7] = [
        Self::Impression,
        Self::FirstQuartile,
        Self::Midpoint,
        Self::ThirdQuartile,
        Self::Complete,
        Self::Skip,
        Self::Click,
    ];

    /// Its name in tracking URLs and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Impression => "impression",
            Self::FirstQuartile => "first_quartile",
            Self::Midpoint => "midpoint",
            Self::ThirdQuartile => "third_quartile",
            Self::Complete => "complete",
            Self::Skip => "skip",
            Self::Click => "click",
        }
    }

    /// The event named `s`, if it is one.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// What the edge forwards to the origin for one tracking request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdIngest {
    /// The token's claims.
    pub ad: AdClaims,
    /// What happened.
    pub event: AdEvent,
    /// When the edge received it.
    pub received_at: u64,
}

/// The campaigns that may run before `video` (of `category`) for a viewer in `country` at
/// `now`, best first: the highest price per thousand, ties in an order `seed` shuffles so equal
/// bidders share the traffic. A campaign whose creative is the video itself is left out.
pub fn candidates<'a>(
    campaigns: &'a [AdCampaign],
    now: u64,
    country: Option<CountryCode>,
    video: &VideoId,
    category: Option<&str>,
    seed: u64,
) -> Vec<&'a AdCampaign> {
    let mut out: Vec<&AdCampaign> = campaigns
        .iter()
        .filter(|c| c.creative != *video && c.targets(now, country, category))
        .collect();
    out.sort_by_key(|c| {
        (
            std::cmp::Reverse(c.cpm_minor),
            fnv1a(c.id.as_bytes()) ^ seed,
        )
    });
    out
}

/// A small, stable hash for the tie order (not a security property).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests;
