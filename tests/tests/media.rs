//! Media delivery through the edge, once per edge runtime: byte ranges (206 and 416, from the
//! origin on a miss and from the cache on a hit, `If-Range`; on Spin from a cache entry kept in
//! chunks too), one origin fetch for concurrent misses of the same file, and a file too large
//! to keep streamed through.

use std::time::{Duration, Instant};

use e2e::{Edge, Runtime};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use shared_wasm::record::Chunks;

/// The route the origin logs for a media fetch.
const MEDIA: &str = "/internal/media/{id}/{*file}";

/// A file four times the largest the edge keeps (`MAX_CACHED_BYTES`, 64 MiB).
const LARGE: usize = 256 << 20;

/// The large file's content: this block over and over. Its length is prime, so a chunk served
/// from the wrong place does not line up with it.
fn pattern() -> Vec<u8> {
    let mut x = 0x2545_f491_u32;
    (0..1_048_573)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Whether `chunk` is the large file's content from `offset` on.
fn matches_at(pattern: &[u8], offset: usize, chunk: &[u8]) -> bool {
    let (mut at, mut rest) = (offset % pattern.len(), chunk);
    while !rest.is_empty() {
        let n = rest.len().min(pattern.len() - at);
        if rest[..n] != pattern[at..at + n] {
            return false;
        }
        (at, rest) = (0, &rest[n..]);
    }
    true
}

async fn get(c: &Client, url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = c.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

fn uris(playlist: &str) -> Vec<&str> {
    playlist
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// The public demo video's media URL prefix (`…/hls/demo-free/{token}/`), and the URLs of its
/// first rendition's segments with where the origin keeps them (relative to its media folder).
async fn segments(c: &Client, edge: &str) -> (String, Vec<(String, String)>) {
    let r = get(c, &format!("{edge}/v1/videos/demo-free/playback"), &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let manifest = r.json::<Value>().await.unwrap()["manifest_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let base = manifest.strip_suffix("master.m3u8").unwrap().to_owned();
    let master = get(c, &manifest, &[]).await.text().await.unwrap();
    let variant_uri = uris(&master)[0].to_owned();
    let dir = variant_uri
        .rsplit_once('/')
        .map_or("", |(d, _)| d)
        .to_owned();
    let variant = get(c, &format!("{base}{variant_uri}"), &[])
        .await
        .text()
        .await
        .unwrap();
    let segs = uris(&variant)
        .into_iter()
        .map(|s| (format!("{base}{dir}/{s}"), format!("demo-free/{dir}/{s}")))
        .collect();
    (base, segs)
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// Asks for the whole file until the edge answers from its cache (on Workers the copy is stored
/// after the response, while it streams).
async fn until_cached(c: &Client, url: &str, edge: &Edge) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while header(&get(c, url, &[]).await, "x-edge-cache") != "HIT" {
        assert!(Instant::now() < deadline, "never cached: {}", edge.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Writes `len` bytes of the pattern as the demo video's `name`; returns the pattern and the
/// file's edge URL.
fn media_file(origin: &e2e::Origin, base: &str, name: &str, len: usize) -> (Vec<u8>, String) {
    let pattern = pattern();
    let mut file = Vec::with_capacity(len);
    while file.len() < len {
        let n = pattern.len().min(len - file.len());
        file.extend_from_slice(&pattern[..n]);
    }
    std::fs::write(origin.media_dir.join("demo-free").join(name), &file).unwrap();
    (pattern, format!("{base}{name}"))
}

/// A kept file of several of Spin's cache chunks (`Chunks::SIZE`): parts of it from the cache,
/// within a chunk, across chunks, into the short last one, and past its end.
async fn kept_file(runtime: Runtime, c: &Client, edge: &Edge, origin: &e2e::Origin, base: &str) {
    let size = Chunks::SIZE as usize;
    let len = 3 * size + 1000;
    let (pattern, url) = media_file(origin, base, "kept.mp4", len);
    let r = get(c, &url, &[]).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", edge.log());
    assert!(matches_at(&pattern, 0, &r.bytes().await.unwrap()));
    until_cached(c, &url, edge).await;
    if let Runtime::Spin = runtime {
        let chunks: Vec<String> = edge
            .kv_keys()
            .into_iter()
            .filter(|k| k.contains("kept.mp4#"))
            .collect();
        assert_eq!(chunks.len(), 4, "{chunks:?}");
        let entry = chunks[0].split_once('#').unwrap().0;
        assert!(
            edge.kv_keys().contains(entry),
            "the response beside its chunks"
        );
    }
    let fetched = origin.requests_for(MEDIA);
    for (first, last) in [
        (10, 99),
        (size - 10, size + 9),
        (size, 2 * size - 1),
        (size / 2, 3 * size + 499),
        (3 * size + 10, len - 1),
    ] {
        let r = get(c, &url, &[("range", &format!("bytes={first}-{last}"))]).await;
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{first}-{last}");
        assert_eq!(header(&r, "x-edge-cache"), "HIT");
        assert_eq!(
            header(&r, "content-range"),
            format!("bytes {first}-{last}/{len}")
        );
        let body = r.bytes().await.unwrap();
        assert_eq!(body.len(), last - first + 1, "{first}-{last}");
        assert!(matches_at(&pattern, first, &body), "{first}-{last}");
    }
    let r = get(c, &url, &[("range", "bytes=-10")]).await;
    assert_eq!(
        header(&r, "content-range"),
        format!("bytes {}-{}/{len}", len - 10, len - 1)
    );
    assert!(matches_at(&pattern, len - 10, &r.bytes().await.unwrap()));
    let r = get(c, &url, &[("range", &format!("bytes={len}-"))]).await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&r, "content-range"), format!("bytes */{len}"));
    let r = get(c, &url, &[]).await;
    assert_eq!(header(&r, "x-edge-cache"), "HIT");
    let whole = r.bytes().await.unwrap();
    assert_eq!(whole.len(), len);
    assert!(matches_at(&pattern, 0, &whole));
    assert_eq!(origin.requests_for(MEDIA), fetched, "all from the cache");
}

/// A file larger than the edge keeps streams through it, from the origin each time: the
/// edge's processes grow by far less than the file while it passes.
async fn large_file(c: &Client, edge: &Edge, origin: &e2e::Origin, base: &str) {
    let (pattern, url) = media_file(origin, base, "large.mp4", LARGE);
    let path = origin.media_dir.join("demo-free/large.mp4");

    let before = edge.memory();
    assert!(before > 0, "the edge's processes were not found");
    let mut r = get(c, &url, &[]).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", edge.log());
    assert_eq!(header(&r, "content-length"), LARGE.to_string());
    let (mut seen, mut peak, mut next_look) = (0, before, 0);
    while let Some(chunk) = r.chunk().await.unwrap() {
        assert!(matches_at(&pattern, seen, &chunk), "wrong bytes at {seen}");
        seen += chunk.len();
        if seen >= next_look {
            peak = peak.max(edge.memory());
            next_look += 8 << 20;
        }
    }
    assert_eq!(seen, LARGE);
    let grown = peak.saturating_sub(before);
    assert!(
        grown < (LARGE / 4) as u64,
        "the edge grew by {} MiB while {} MiB passed",
        grown >> 20,
        LARGE >> 20
    );

    let r = get(c, &url, &[("range", "bytes=-65536")]).await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&r, "x-edge-cache"), "MISS", "not kept");
    let from = LARGE - 65536;
    assert_eq!(
        header(&r, "content-range"),
        format!("bytes {from}-{}/{LARGE}", LARGE - 1)
    );
    assert!(matches_at(&pattern, from, &r.bytes().await.unwrap()));
    std::fs::remove_file(&path).unwrap();
}

async fn flow(runtime: Runtime) {
    let (origin, edge) = e2e::stack(runtime).await;
    let c = e2e::client();
    let (base, segs) = segments(&c, &edge.url).await;
    assert!(segs.len() >= 2, "{segs:?}");
    let (url, stored_at) = &segs[0];
    let stored = std::fs::read(origin.media_dir.join(stored_at)).unwrap();
    let len = stored.len();
    assert!(len > 1000, "{len}");

    // A miss: the part comes from the origin as asked, and is not kept.
    let r = get(&c, url, &[("range", "bytes=100-199")]).await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{}", edge.log());
    assert_eq!(header(&r, "content-range"), format!("bytes 100-199/{len}"));
    assert_eq!(header(&r, "x-edge-cache"), "MISS");
    assert_eq!(header(&r, "accept-ranges"), "bytes");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &stored[100..200]);
    let r = get(&c, url, &[("range", &format!("bytes={len}-"))]).await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&r, "content-range"), format!("bytes */{len}"));
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "range_not_satisfiable"
    );

    // The whole file, then parts of the kept copy.
    let r = get(&c, url, &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "accept-ranges"), "bytes");
    assert_eq!(r.bytes().await.unwrap().as_ref(), stored.as_slice());
    until_cached(&c, url, &edge).await;
    let r = get(&c, url, &[("range", "bytes=-500")]).await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&r, "x-edge-cache"), "HIT");
    assert_eq!(
        header(&r, "content-range"),
        format!("bytes {}-{}/{len}", len - 500, len - 1)
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), &stored[len - 500..]);
    let r = get(&c, url, &[("range", "bytes=1000-")]).await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &stored[1000..]);
    let r = get(&c, url, &[("range", &format!("bytes={}-", len + 10))]).await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&r, "content-range"), format!("bytes */{len}"));
    // No validator is ever sent for media, so no If-Range matches: the whole file.
    let r = get(&c, url, &[("range", "bytes=0-9"), ("if-range", "\"v1\"")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().as_ref(), stored.as_slice());

    // Concurrent misses of one file.
    let (url, stored_at) = &segs[1];
    let stored = std::fs::read(origin.media_dir.join(stored_at)).unwrap();
    let before = origin.requests_for(MEDIA);
    let viewers: Vec<_> = (0..8)
        .map(|_| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move { get(&c, &url, &[]).await.bytes().await.unwrap() })
        })
        .collect();
    for v in viewers {
        assert_eq!(v.await.unwrap().as_ref(), stored.as_slice());
    }
    // On Workers one isolate serves them all: the first miss fetches, the others wait for its
    // copy. On Spin every request has its own instance and only the store is shared, which the
    // first copy may or may not reach before the others miss: they are counted, not coalesced.
    if let Runtime::Wrangler = runtime {
        assert_eq!(origin.requests_for(MEDIA) - before, 1, "{}", edge.log());
    }

    kept_file(runtime, &c, &edge, &origin, &base).await;
    large_file(&c, &edge, &origin, &base).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn media_on_workerd_via_wrangler_dev() {
    flow(Runtime::Wrangler).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn media_on_spin_component_in_wasmtime() {
    flow(Runtime::Spin).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn media_under_spin_up() {
    flow(Runtime::SpinUp).await;
}
