//! Arbitrary bytes as a playback token: the verifier never panics, and nothing but a token
//! signed with the key ever verifies.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use shared_wasm::playback::{self, PlaybackKeys, Use, Viewer};
use shared_wasm::{CountryCode, Kid, UnixTime};

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let kid = Kid::parse("k1").unwrap();
    let mut keys = BTreeMap::new();
    keys.insert(kid.clone(), vec![0x5a; 32]);
    let keys = PlaybackKeys::new(kid, keys).unwrap();
    let at = Use {
        path: "/hls/demo/master.m3u8",
        now: UnixTime(1_800_000_000),
        leeway_secs: 30,
        viewer: Viewer {
            ip: Some("203.0.113.9"),
            country: CountryCode::parse("DE").ok(),
        },
    };
    // The fuzzer cannot know the key, so a success would be a forgery.
    assert!(
        playback::verify(&keys, token, &at).is_err(),
        "forged token accepted: {token}"
    );
});
