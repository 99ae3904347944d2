//! Arbitrary request paths through the media-path parser: no panic, and whatever it accepts is
//! canonical (no traversal, no encoding, no empty segment, a known media extension).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared_wasm::media::{content_type, parse_hls_path};

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = parse_hls_path(path) {
        let canonical = r.canonical_path();
        assert!(canonical.starts_with(&format!("/hls/{}/", r.video)));
        assert!(
            !canonical.contains("//") && !canonical.contains('%'),
            "{canonical}"
        );
        assert!(
            !canonical.split('/').any(|s| s == "." || s == ".."),
            "{canonical}"
        );
        assert!(content_type(r.file.as_str()).is_some());
    }
});
