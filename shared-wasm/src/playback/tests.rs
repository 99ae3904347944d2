use super::*;

/// Verification for an anonymous viewer (no address, no country).
fn check(
    keys: &PlaybackKeys,
    token: &str,
    path: &str,
    now: UnixTime,
    leeway_secs: u64,
) -> Result<Grant, TokenError> {
    verify(
        keys,
        token,
        &Use {
            path,
            now,
            leeway_secs,
            viewer: Viewer::default(),
        },
    )
}

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
        binding: Binding::default(),
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
    let g = check(&k, &t, "/hls/abc/480p/seg_001.ts", UnixTime(1_500), LEEWAY).unwrap();
    assert_eq!(g.kid, kid("k1"));
    assert_eq!(g.claims, claims());
}

#[test]
fn expiry_and_not_before_honour_the_leeway() {
    let k = keys("k1");
    let t = sign(&k, &claims());
    let p = "/hls/abc/master.m3u8";
    assert!(check(&k, &t, p, UnixTime(2_030), LEEWAY).is_ok());
    assert_eq!(
        check(&k, &t, p, UnixTime(2_031), LEEWAY),
        Err(TokenError::Expired)
    );
    assert!(check(&k, &t, p, UnixTime(970), LEEWAY).is_ok());
    assert_eq!(
        check(&k, &t, p, UnixTime(969), LEEWAY),
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
            check(&k, &t, p, UnixTime(1_500), LEEWAY),
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
            let e = check(
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
    assert!(check(&rotated, &old, "/hls/abc/a.ts", UnixTime(1_500), LEEWAY).is_ok());
    let mut only_k2 = BTreeMap::new();
    only_k2.insert(kid("k2"), vec![2u8; 32]);
    let removed = PlaybackKeys::new(kid("k2"), only_k2).unwrap();
    assert_eq!(
        check(&removed, &old, "/hls/abc/a.ts", UnixTime(1_500), LEEWAY),
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
            check(&k, t, "/hls/abc/a", UnixTime(0), 0),
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

fn bound(network: Option<&str>, country: Option<&str>) -> Claims {
    Claims {
        binding: Binding {
            network: network.map(str::to_owned),
            country: country.map(|c| CountryCode::parse(c).unwrap()),
        },
        ..claims()
    }
}

fn as_viewer(
    k: &PlaybackKeys,
    t: &str,
    ip: Option<&str>,
    country: Option<&str>,
) -> Result<Grant, TokenError> {
    verify(
        k,
        t,
        &Use {
            path: "/hls/abc/a.ts",
            now: UnixTime(1_500),
            leeway_secs: LEEWAY,
            viewer: Viewer {
                ip,
                country: country.and_then(|c| CountryCode::parse(c).ok()),
            },
        },
    )
}

#[test]
fn network_binding() {
    let k = keys("k1");
    let t = sign(&k, &bound(Some("203.0.113.0/24"), None));
    let g = as_viewer(&k, &t, Some("203.0.113.9"), None).unwrap();
    assert_eq!(g.claims.binding.network.as_deref(), Some("203.0.113.0/24"));
    assert_eq!(
        as_viewer(&k, &t, Some("198.51.100.9"), None),
        Err(TokenError::NetworkMismatch)
    );
    assert_eq!(
        as_viewer(&k, &t, None, None),
        Err(TokenError::NetworkMismatch)
    );
    let v6 = sign(&k, &bound(Some("2001:db8:1:2::/64"), None));
    assert!(as_viewer(&k, &v6, Some("2001:db8:1:2::99"), None).is_ok());
    assert_eq!(
        as_viewer(&k, &v6, Some("2001:db8:1:3::99"), None),
        Err(TokenError::NetworkMismatch)
    );
}

#[test]
fn country_binding() {
    let k = keys("k1");
    let t = sign(&k, &bound(None, Some("DE")));
    assert!(as_viewer(&k, &t, None, Some("de")).is_ok());
    assert_eq!(
        as_viewer(&k, &t, None, Some("FR")),
        Err(TokenError::CountryMismatch)
    );
    assert_eq!(
        as_viewer(&k, &t, None, None),
        Err(TokenError::CountryMismatch)
    );
    assert_eq!(
        TokenError::CountryMismatch.public_reason(),
        "country_mismatch"
    );
}

#[test]
fn both_bindings_round_trip_and_resist_tampering() {
    let k = keys("k1");
    let c = bound(Some("203.0.113.0/24"), Some("DE"));
    let t = sign(&k, &c);
    assert_eq!(
        as_viewer(&k, &t, Some("203.0.113.1"), Some("DE"))
            .unwrap()
            .claims,
        c
    );
    let raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
    for i in 0..raw.len() {
        let mut m = raw.clone();
        m[i] ^= 0x20;
        let e = as_viewer(
            &k,
            &URL_SAFE_NO_PAD.encode(&m),
            Some("203.0.113.1"),
            Some("DE"),
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                TokenError::Malformed | TokenError::UnknownKey | TokenError::BadSignature
            ),
            "byte {i}: {e:?}"
        );
    }
}
