//! VAST 4.1 documents (IAB): one linear in-line ad, or none.
//!
//! Written by hand rather than with an XML library: the document is one fixed shape, every
//! value in it is escaped, and the Worker's size budget has no room for a serializer.

use std::fmt::Write;

use super::{AdEvent, SKIP_AFTER_SECS};
use crate::markup::escape;
use crate::record::AdCampaign;

/// The media type of a VAST answer.
pub const VAST_CONTENT_TYPE: &str = "application/xml; charset=utf-8";
const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;
const NS: &str = r#"version="4.1" xmlns="http://www.iab.com/VAST""#;

/// Where an ad's tracking requests go: `{url}?e={event}&t={token}`.
pub struct Tracking<'a> {
    /// The tracking endpoint, absolute.
    pub url: &'a str,
    /// The ad token.
    pub token: &'a str,
}

impl Tracking<'_> {
    fn of(&self, event: AdEvent) -> String {
        format!("{}?e={}&t={}", self.url, event.as_str(), self.token)
    }
}

/// "No ad": what a player is told when none applies (members, no campaign, capped).
pub fn empty() -> String {
    format!("{HEAD}<VAST {NS}/>")
}

/// The VAST document for `campaign`'s creative (`duration_ms` long, played from the HLS
/// `media_url`), served as ad view `ad_view`.
pub fn document(
    campaign: &AdCampaign,
    ad_view: &str,
    duration_ms: u64,
    media_url: &str,
    tracking: &Tracking,
) -> String {
    let mut out = String::with_capacity(2048);
    let _ = write!(
        out,
        "{HEAD}<VAST {NS}><Ad id=\"{id}\"><InLine><AdSystem>edge-video</AdSystem>\
         <AdServingId>{ad_view}</AdServingId><AdTitle>{title}</AdTitle>\
         <Impression id=\"edge-video\">{impression}</Impression>\
         <Creatives><Creative id=\"{creative}\" adId=\"{id}\">\
         <UniversalAdId idRegistry=\"edge-video\">{creative}</UniversalAdId>\
         <Linear skipoffset=\"{skip}\"><Duration>{duration}</Duration><TrackingEvents>",
        id = escape(&campaign.id),
        ad_view = escape(ad_view),
        title = escape(&campaign.name),
        impression = escape(&tracking.of(AdEvent::Impression)),
        creative = escape(campaign.creative.as_str()),
        skip = clock(SKIP_AFTER_SECS * 1000),
        duration = clock(duration_ms),
    );
    for (name, event) in [
        ("firstQuartile", AdEvent::FirstQuartile),
        ("midpoint", AdEvent::Midpoint),
        ("thirdQuartile", AdEvent::ThirdQuartile),
        ("complete", AdEvent::Complete),
        ("skip", AdEvent::Skip),
    ] {
        let _ = write!(
            out,
            "<Tracking event=\"{name}\">{}</Tracking>",
            escape(&tracking.of(event))
        );
    }
    // No width or height on the media file: an adaptive ladder has no single size, and the
    // player fits it to its own box.
    let _ = write!(
        out,
        "</TrackingEvents><VideoClicks><ClickThrough id=\"edge-video\">{through}</ClickThrough>\
         <ClickTracking id=\"edge-video\">{click}</ClickTracking></VideoClicks>\
         <MediaFiles><MediaFile delivery=\"streaming\" type=\"application/x-mpegURL\">{media}</MediaFile>\
         </MediaFiles></Linear></Creative></Creatives></InLine></Ad></VAST>",
        through = escape(&campaign.click_url),
        click = escape(&tracking.of(AdEvent::Click)),
        media = escape(media_url),
    );
    out
}

/// `HH:MM:SS.mmm`, VAST's time format.
pub(super) fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ms % 1000
    )
}
