use std::collections::BTreeMap;

use super::*;
use crate::Kid;

fn keys(active: &str) -> PlaybackKeys {
    let mut m = BTreeMap::new();
    m.insert(Kid::parse("k1").unwrap(), vec![1u8; 32]);
    m.insert(Kid::parse("k2").unwrap(), vec![2u8; 32]);
    PlaybackKeys::new(Kid::parse(active).unwrap(), m).unwrap()
}

fn claims() -> ViewClaims {
    ViewClaims {
        view: view_id([7; 16]),
        video: VideoId::parse("v1").unwrap(),
        viewer: "u:alice".into(),
        country: Some(CountryCode::parse("FR").unwrap()),
        device: Device::Desktop,
        issued: 1_000,
        expires: 1_000 + TOKEN_TTL_SECS,
    }
}

#[test]
fn a_token_verifies_under_any_key_of_the_set_until_it_expires() {
    let token = sign(&keys("k1"), &claims());
    assert_eq!(verify(&keys("k2"), &token, UnixTime(2_000)), Ok(claims()));
    let late = UnixTime(claims().expires + LEEWAY_SECS + 1);
    assert_eq!(verify(&keys("k1"), &token, late), Err(TokenError::Expired));
}

#[test]
fn forged_tampered_and_foreign_tokens_are_invalid() {
    let token = sign(&keys("k1"), &claims());
    let (kid, rest) = token.split_once('.').unwrap();
    let (payload, tag) = rest.split_once('.').unwrap();
    let mut other = claims();
    other.viewer = "u:mallory".into();
    let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap());
    let now = UnixTime(2_000);
    for bad in [
        format!("{kid}.{forged_payload}.{tag}"),
        format!("k2.{payload}.{tag}"),
        format!("k9.{payload}.{tag}"),
        format!("{kid}.{payload}.{}", &tag[..10]),
        format!("{kid}.{payload}"),
        "x".repeat(MAX_TOKEN_LEN + 1),
        String::new(),
    ] {
        assert_eq!(
            verify(&keys("k1"), &bad, now),
            Err(TokenError::Invalid),
            "{bad}"
        );
    }
    // A playback key signs view tokens only under this domain: a tag over the same bytes
    // without it (as another scheme would make) is refused.
    let bare = hmac::sign(&[1u8; 32], &[kid.as_bytes(), b".", payload.as_bytes()]);
    let bare = format!("{kid}.{payload}.{}", URL_SAFE_NO_PAD.encode(bare));
    assert_eq!(verify(&keys("k1"), &bare, now), Err(TokenError::Invalid));
}

#[test]
fn anonymous_viewers_are_a_pseudonym_of_network_and_browser() {
    let k = keys("k1");
    assert_eq!(viewer_key(&k, Some("alice"), None, "x"), "u:alice");
    let one = viewer_key(&k, None, Some("192.0.2.0/24"), "Firefox");
    assert!(one.starts_with("a:") && !one.contains("192"), "{one}");
    assert_eq!(one, viewer_key(&k, None, Some("192.0.2.0/24"), "Firefox"));
    assert_ne!(one, viewer_key(&k, None, Some("192.0.3.0/24"), "Firefox"));
    assert_ne!(one, viewer_key(&k, None, Some("192.0.2.0/24"), "Chrome"));
}

#[test]
fn devices_and_bots_by_user_agent() {
    let cases = [
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
            Device::Desktop,
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148",
            Device::Mobile,
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/120.0 Mobile Safari/537.36",
            Device::Mobile,
        ),
        (
            "Mozilla/5.0 (Linux; Android 13; SM-X200) Chrome/120.0 Safari/537.36",
            Device::Tablet,
        ),
        (
            "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)",
            Device::Tablet,
        ),
        ("Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0)", Device::Tv),
        ("SomethingElse/1.0", Device::Other),
    ];
    for (ua, device) in cases {
        assert_eq!(Device::of(ua), device, "{ua}");
        assert!(!is_bot(ua), "{ua}");
    }
    for ua in [
        "",
        "Mozilla/5.0 (compatible; Googlebot/2.1)",
        "curl/8.5.0",
        "python-requests/2.31",
        "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0",
        "facebookexternalhit/1.1 (+preview)",
    ] {
        assert!(is_bot(ua), "{ua}");
    }
}

fn parse(json: &str) -> Result<Batch, serde_json::Error> {
    serde_json::from_str(json)
}

#[test]
fn a_player_batch_parses_and_passes() {
    let b = parse(
        r#"{"token":"t","events":[
            {"type":"start","seq":0,"startup_ms":812},
            {"type":"heartbeat","seq":1,"played":[[0,10000]]},
            {"type":"rebuffer","seq":2,"ms":300},
            {"type":"rendition","seq":3,"height":720},
            {"type":"error","seq":4,"code":"network_error"},
            {"type":"end","seq":5,"played":[[10000,12000],[30000,31000]]}]}"#,
    )
    .unwrap();
    assert_eq!(check_events(&b.events, Some(60_000)), Ok(()));
    assert_eq!(b.events[5].played(), &[[10_000, 12_000], [30_000, 31_000]]);
    assert_eq!(b.events[3].kind(), "rendition");
}

#[test]
fn unknown_fields_and_types_do_not_parse() {
    for bad in [
        r#"{"token":"t","events":[],"extra":1}"#,
        r#"{"token":"t","events":[{"type":"start","seq":0,"startup_ms":1,"x":2}]}"#,
        r#"{"token":"t","events":[{"type":"seek","seq":0}]}"#,
        r#"{"token":"t","events":[{"type":"start","seq":-1,"startup_ms":1}]}"#,
        r#"{"token":"t","events":[{"type":"heartbeat","seq":0,"played":[[1]]}]}"#,
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn out_of_bounds_events_are_refused_with_a_reason() {
    let start = |seq, startup_ms| Event::Start { seq, startup_ms };
    let beat = |seq, played: Vec<[u64; 2]>| Event::Heartbeat { seq, played };
    let err = |events: &[Event], d| check_events(events, d).unwrap_err();
    assert!(err(&[], None).contains("1 to 32"));
    let many: Vec<Event> = (0..33).map(|i| start(i, 1)).collect();
    assert!(err(&many, None).contains("1 to 32"));
    assert!(err(&[start(0, 1), start(0, 2)], None).contains("twice"));
    assert!(err(&[start(100_000, 1)], None).contains("seq"));
    assert!(err(&[start(0, 120_001)], None).contains("startup_ms"));
    assert!(err(&[beat(0, vec![[5, 5]])], None).contains("from < to"));
    assert!(err(&[beat(0, vec![[0, 62_001]])], Some(60_000)).contains("<= 62000"));
    assert!(err(&[beat(0, vec![[0, 300_001]])], None).contains("300000 ms"));
    assert!(err(&[beat(0, vec![[0, 1]; 17])], None).contains("16 played ranges"));
    for overlapping in [
        vec![[0, 5_000], [4_000, 6_000]],
        vec![[5_000, 6_000], [0, 1_000]],
    ] {
        assert!(err(&[beat(0, overlapping)], None).contains("must not overlap"));
    }
    let rebuffer = Event::Rebuffer {
        seq: 0,
        ms: 600_001,
    };
    assert!(err(&[rebuffer], None).contains("ms at most"));
    let height = Event::Rendition { seq: 0, height: 0 };
    assert!(err(&[height], None).contains("height"));
    for code in ["", "Bad Code", &"x".repeat(41)] {
        let e = Event::Error {
            seq: 0,
            code: code.into(),
        };
        assert!(err(&[e], None).contains("code"), "{code:?}");
    }
    assert_eq!(
        check_events(&[beat(0, vec![[0, 62_000]])], Some(60_000)),
        Ok(())
    );
}
