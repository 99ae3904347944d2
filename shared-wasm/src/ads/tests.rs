use std::collections::BTreeMap;

use super::*;
use crate::Kid;

fn keys() -> PlaybackKeys {
    let mut m = BTreeMap::new();
    m.insert(Kid::parse("k1").unwrap(), vec![1u8; 32]);
    PlaybackKeys::new(Kid::parse("k1").unwrap(), m).unwrap()
}

fn claims() -> AdClaims {
    AdClaims {
        ad_view: crate::beacon::view_id([9; 16]),
        campaign: "c1".into(),
        video: VideoId::parse("v1").unwrap(),
        viewer: "a:pseudonym".into(),
        country: CountryCode::parse("FR").ok(),
        issued: 1_000,
        expires: 1_000 + TOKEN_TTL_SECS,
    }
}

fn campaign(id: &str, cpm: u64) -> AdCampaign {
    AdCampaign {
        id: id.into(),
        name: format!("Campaign {id}"),
        creative: VideoId::parse("ad-video").unwrap(),
        click_url: "https://advertiser.example/?a=1&b=2".into(),
        countries: vec![],
        categories: vec![],
        starts_at: 100,
        ends_at: 200,
        paused_until: 0,
        frequency_cap: 3,
        cpm_minor: cpm,
    }
}

#[test]
fn ad_tokens_verify_until_they_expire_and_are_not_view_tokens() {
    let token = sign(&keys(), &claims());
    assert_eq!(verify(&keys(), &token, UnixTime(2_000)), Ok(claims()));
    let late = UnixTime(claims().expires + LEEWAY_SECS + 1);
    assert_eq!(verify(&keys(), &token, late), Err(TokenError::Expired));
    // The same claims under the view tokens' domain do not pass, nor a tampered tag.
    let view_domain = sign_claims(&keys(), crate::beacon::DOMAIN, &claims());
    assert_eq!(
        verify(&keys(), &view_domain, UnixTime(2_000)),
        Err(TokenError::Invalid)
    );
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(
        verify(&keys(), &tampered, UnixTime(2_000)),
        Err(TokenError::Invalid)
    );
}

#[test]
fn events_have_one_name_each() {
    for e in AdEvent::ALL {
        assert_eq!(AdEvent::parse(e.as_str()), Some(e));
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, format!("\"{}\"", e.as_str()));
    }
    assert_eq!(AdEvent::parse("Impression"), None);
    assert_eq!(AdEvent::parse(""), None);
}

#[test]
fn targeting_takes_time_country_category_and_the_daily_pause() {
    let fr = CountryCode::parse("FR").ok();
    let de = CountryCode::parse("DE").ok();
    let mut c = campaign("c", 1);
    assert!(c.targets(100, None, None));
    assert!(!c.targets(99, None, None), "before its start");
    assert!(!c.targets(200, None, None), "at its end");
    c.countries = vec![fr.unwrap()];
    assert!(c.targets(150, fr, None));
    assert!(!c.targets(150, de, None));
    assert!(
        !c.targets(150, None, None),
        "an unknown country fails a list"
    );
    c.categories = vec!["music".into()];
    assert!(c.targets(150, fr, Some("music")));
    assert!(!c.targets(150, fr, Some("news")));
    assert!(!c.targets(150, fr, None));
    c.paused_until = 160;
    assert!(!c.targets(159, fr, Some("music")), "capped for the day");
    assert!(c.targets(160, fr, Some("music")));
}

#[test]
fn candidates_are_the_highest_bids_first_without_the_video_itself() {
    let video = VideoId::parse("v1").unwrap();
    let mut own = campaign("own", 9_000);
    own.creative = video.clone();
    let mut ended = campaign("ended", 8_000);
    ended.ends_at = 120;
    let list = [
        campaign("low", 100),
        own,
        ended,
        campaign("high", 5_000),
        campaign("tie-a", 300),
        campaign("tie-b", 300),
    ];
    let ids = |seed| -> Vec<&str> {
        candidates(&list, 150, None, &video, None, seed)
            .iter()
            .map(|c| c.id.as_str())
            .collect()
    };
    let first = ids(0);
    assert_eq!(first[0], "high");
    assert_eq!(first[3], "low");
    assert_eq!(first.len(), 4);
    // Equal bids come in either order depending on the seed.
    let orders: std::collections::BTreeSet<_> = (0..64u64)
        .map(|s| ids(s.wrapping_mul(0x9e37_79b9_7f4a_7c15))[1])
        .collect();
    assert_eq!(orders.len(), 2, "{orders:?}");
}

#[test]
fn the_vast_document_reads_back_with_every_url_and_escaped_values() {
    let mut c = campaign("c<1>", 1);
    c.name = "Fish & \"Chips\" <b>".into();
    let tracking = Tracking {
        url: "https://edge.example/v1/ads/track",
        token: "k1.payload.tag",
    };
    let xml = document(
        &c,
        "view-1",
        8_040,
        "https://edge.example/hls/ad-video/tok/master.m3u8",
        &tracking,
    );
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(
        (root.tag_name().name(), root.attribute("version")),
        ("VAST", Some("4.1"))
    );
    let one = |name: &str| {
        let nodes: Vec<_> = doc
            .descendants()
            .filter(|n| n.tag_name().name() == name)
            .collect();
        assert_eq!(nodes.len(), 1, "{name}");
        nodes[0]
    };
    assert_eq!(one("Ad").attribute("id"), Some("c<1>"));
    assert_eq!(one("AdTitle").text(), Some("Fish & \"Chips\" <b>"));
    assert_eq!(one("Duration").text(), Some("00:00:08.040"));
    assert_eq!(one("Linear").attribute("skipoffset"), Some("00:00:05.000"));
    let url = |e: AdEvent| format!("{}?e={}&t=k1.payload.tag", tracking.url, e.as_str());
    assert_eq!(
        one("Impression").text().map(str::to_owned),
        Some(url(AdEvent::Impression))
    );
    assert_eq!(
        one("ClickThrough").text(),
        Some("https://advertiser.example/?a=1&b=2")
    );
    assert_eq!(
        one("ClickTracking").text().map(str::to_owned),
        Some(url(AdEvent::Click))
    );
    assert_eq!(
        one("MediaFile").text(),
        Some("https://edge.example/hls/ad-video/tok/master.m3u8")
    );
    let tracked: Vec<(String, String)> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "Tracking")
        .map(|n| {
            (
                n.attribute("event").unwrap().into(),
                n.text().unwrap().into(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("firstQuartile", AdEvent::FirstQuartile),
        ("midpoint", AdEvent::Midpoint),
        ("thirdQuartile", AdEvent::ThirdQuartile),
        ("complete", AdEvent::Complete),
        ("skip", AdEvent::Skip),
    ]
    .into_iter()
    .map(|(n, e)| (n.to_owned(), url(e)))
    .collect();
    assert_eq!(tracked, expected);

    let none = empty();
    let doc = roxmltree::Document::parse(&none).unwrap();
    assert_eq!(doc.root_element().tag_name().name(), "VAST");
    assert_eq!(doc.root_element().children().count(), 0);
}

#[test]
fn clock_is_vast_time() {
    assert_eq!(vast::clock(0), "00:00:00.000");
    assert_eq!(vast::clock(3_723_004), "01:02:03.004");
}
