//! `ads:catalog`: the ad campaigns the edge may serve, as one record.
//!
//! One record rather than one per campaign: choosing an ad reads every campaign anyway, and one
//! KV read is cheaper than a listing. The origin rebuilds it whenever a campaign changes or
//! reaches its daily cap, so a paused or exhausted campaign leaves the edge with the next sync.

use serde::{Deserialize, Serialize};

use super::cbor_record;
use crate::{CountryCode, VideoId};

cbor_record!(AdCatalog, 1);

/// Most campaigns in the catalog (the record must stay under `MAX_RECORD_BYTES` with every
/// field at its bound: a campaign is at most ~1.6 KB).
pub const MAX_CAMPAIGNS: usize = 32;

/// The campaigns the edge may serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdCatalog {
    /// Schema version, 1.
    pub v: u8,
    /// Active campaigns that have not ended, at most [`MAX_CAMPAIGNS`].
    pub campaigns: Vec<AdCampaign>,
    /// Bumped on every change; the edge keeps the highest.
    pub version: u64,
}

impl AdCatalog {
    /// KV key.
    pub const KEY: &'static str = "ads:catalog";
}

/// One campaign, as the edge needs it to choose and describe an ad.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdCampaign {
    /// The campaign's id.
    pub id: String,
    /// Its name (the VAST `AdTitle`).
    pub name: String,
    /// The video that plays as the ad.
    pub creative: VideoId,
    /// Where a click on the ad goes (https).
    pub click_url: String,
    /// Countries it runs in; empty: everywhere.
    pub countries: Vec<CountryCode>,
    /// Categories of videos it runs before; empty: any.
    pub categories: Vec<String>,
    /// Runs from this second…
    pub starts_at: u64,
    /// …until this one, Unix seconds.
    pub ends_at: u64,
    /// Not served before this second: its daily cap was reached (the next UTC midnight).
    pub paused_until: u64,
    /// Ads per viewer per day.
    pub frequency_cap: u32,
    /// Price per thousand impressions, in minor units (the higher is served first).
    pub cpm_minor: u64,
}

impl AdCampaign {
    /// Whether this campaign may run at `now` before a video of `category` for a viewer in
    /// `country`. An unknown country fails a country list, as for a video's allow-list.
    pub fn targets(&self, now: u64, country: Option<CountryCode>, category: Option<&str>) -> bool {
        let in_time = self.starts_at <= now && now < self.ends_at && self.paused_until <= now;
        let in_country =
            self.countries.is_empty() || country.is_some_and(|c| self.countries.contains(&c));
        let in_category = self.categories.is_empty()
            || category.is_some_and(|c| self.categories.iter().any(|x| x == c));
        in_time && in_country && in_category
    }
}
