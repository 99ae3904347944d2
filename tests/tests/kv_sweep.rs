//! Spin's key-value store has no expiry of its own; the adapter's envelopes carry one, and the
//! rate-limit state's time runs out. On the Spin runtime: a read that meets an expired entry
//! deletes it, and the sweep after responses deletes the other dead entries a few keys at a
//! time, keeping live entries, entries without expiry (synced records) and bytes it cannot read.
//!
//! The store is the folder spin-host keeps it in (`Edge::kv_keys`). Dead entries of every kind
//! the edge writes are put there while the edge is stopped (entries whose time has passed, as a
//! store holds them after a while), and one the edge writes itself expires during the test.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use e2e::{free_port, Edge, Origin, Runtime};
use reqwest::{Client, StatusCode};
use shared_wasm::kv_sweep::CURSOR_KEY;
use shared_wasm::ratelimit::encode_tat;
use shared_wasm::record::{CachedResponse, KvEnvelope};

/// Keys one sweep may visit in these tests.
const SWEEP_MAX_KEYS: usize = 4;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn envelope(expires_at: Option<u64>, value: &[u8]) -> Vec<u8> {
    KvEnvelope {
        v: 1,
        expires_at,
        value: value.to_vec(),
    }
    .to_cbor()
}

fn cached(expires_at: Option<u64>) -> Vec<u8> {
    let entry = CachedResponse {
        v: 1,
        status: 200,
        headers: vec![("content-type".into(), "video/mp2t".into())],
        body: vec![0x47; 1024],
        chunks: None,
    };
    envelope(expires_at, &entry.to_cbor())
}

/// Stops the edge, adds `entries` to its store, and starts it again.
async fn seed(edge: &mut Edge, entries: &[(String, Vec<u8>)]) {
    edge.kill();
    for (k, v) in entries {
        edge.kv_insert(k, v);
    }
    edge.restart().await;
}

/// The store's keys once they stop changing (a sweep after the last response may still run).
async fn settled(edge: &Edge) -> BTreeSet<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = edge.kv_keys();
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = edge.kv_keys();
        if now == last {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "the store kept changing:\n{}",
            edge.log()
        );
        last = now;
    }
}

async fn get(c: &Client, url: &str) -> StatusCode {
    c.get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .status()
}

#[tokio::test]
async fn spin_a_read_deletes_the_expired_entry_it_meets() {
    let port = free_port();
    let origin = Origin::start(port).await;
    // No sweep, so whatever goes, went because a request read it.
    let mut edge =
        Edge::start_with(Runtime::Spin, &origin, port, &[("KV_SWEEP_ONE_IN", "0")]).await;
    let gone = now_ms() / 1000 - 10;
    // `region-health` is read before every origin request; the other two by nothing here.
    let health = envelope(Some(gone), &[0xa0]); // an empty CBOR map
    seed(
        &mut edge,
        &[
            ("region-health".into(), health),
            ("nonce:never-read".into(), envelope(Some(gone), b"1")),
            ("video:never-read".into(), envelope(Some(gone), b"record")),
        ],
    )
    .await;
    assert!(edge.kv_keys().contains("region-health"));

    let c = Client::new();
    let url = format!("{}/v1/videos/demo-free/comments", edge.url);
    assert_eq!(get(&c, &url).await, StatusCode::OK, "{}", edge.log());

    let keys = settled(&edge).await;
    assert!(
        !keys.contains("region-health"),
        "the expired entry a read met is still stored: {keys:?}"
    );
    for unread in ["nonce:never-read", "video:never-read"] {
        assert!(
            keys.contains(unread),
            "{unread} went without a sweep: {keys:?}"
        );
    }
    assert!(!keys.contains(CURSOR_KEY), "no sweep ran: {keys:?}");
}

#[tokio::test]
async fn spin_the_sweep_deletes_dead_entries_a_few_keys_at_a_time() {
    let port = free_port();
    // The origin pushes its records to another port: a push is a request, and every request
    // here sweeps, so pushes arriving after a restart would add sweeps the test does not count.
    let origin = Origin::start(free_port()).await;
    let max_keys = SWEEP_MAX_KEYS.to_string();
    // Every request sweeps, so the test needs no luck. One `api` request per 2 s: the state it
    // leaves is dead 2 s later.
    let mut edge = Edge::start_with(
        Runtime::Spin,
        &origin,
        port,
        &[
            ("KV_SWEEP_ONE_IN", "1"),
            ("KV_SWEEP_MAX_KEYS", max_keys.as_str()),
            ("RATE_LIMITS", "login=5/600,api=2/4"),
        ],
    )
    .await;

    let now = now_ms();
    let (past, future) = (now / 1000 - 10, now / 1000 + 3600);
    let mut dead: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..10 {
        dead.push((
            format!("cache:http://edge.test/hls/old/{i}.ts"),
            cached(Some(past)),
        ));
    }
    for i in 0..8 {
        dead.push((format!("nonce:old-{i}"), envelope(Some(past), b"1")));
    }
    for i in 0..6 {
        dead.push((
            format!("video:read-through-{i}"),
            envelope(Some(past), b"record"),
        ));
    }
    for i in 0..4 {
        dead.push((format!("rl:api:ip:203.0.113.{i}"), encode_tat(now - 60_000)));
    }
    let kept: Vec<(String, Vec<u8>)> = vec![
        (
            "cache:http://edge.test/hls/live.ts".into(),
            cached(Some(future)),
        ),
        ("nonce:live".into(), envelope(Some(future), b"1")),
        // Synced records carry no expiry.
        ("user:u-kept".into(), envelope(None, b"record")),
        ("video:synced".into(), envelope(None, b"record")),
        ("feedver:home".into(), envelope(None, b"record")),
        ("rl:login:ip:203.0.113.50".into(), encode_tat(now + 600_000)),
        // Bytes of no schema this version knows.
        ("legacy".into(), b"not an envelope".to_vec()),
    ];
    let all: Vec<_> = dead.iter().chain(&kept).cloned().collect();
    seed(&mut edge, &all).await;
    let dead: BTreeSet<String> = dead.into_iter().map(|(k, _)| k).collect();
    let kept: BTreeSet<String> = kept.into_iter().map(|(k, _)| k).collect();

    // The readiness check's request may have swept once already.
    let before = settled(&edge).await;
    assert!(kept.is_subset(&before), "{before:?}");
    assert!(
        dead.intersection(&before).count() >= dead.len() - SWEEP_MAX_KEYS,
        "more went than one sweep may take: {before:?}"
    );

    // One request: one sweep, of at most SWEEP_MAX_KEYS keys, all dead ones here.
    let c = Client::new();
    let health = format!("{}/healthz", edge.url);
    assert_eq!(get(&c, &health).await, StatusCode::OK);
    let after = settled(&edge).await;
    let removed: BTreeSet<_> = before.difference(&after).cloned().collect();
    assert!(
        !removed.is_empty(),
        "a request swept nothing; dead entries stored: {:?}",
        dead.intersection(&after).collect::<Vec<_>>()
    );
    assert!(
        removed.len() <= SWEEP_MAX_KEYS,
        "one sweep removed {removed:?}"
    );
    assert!(
        removed.is_subset(&dead),
        "live entries removed: {removed:?}"
    );
    assert!(after.is_subset(&before), "{after:?}");

    // A rate-limit state the edge writes itself stays while it counts...
    let comments = format!("{}/v1/videos/demo-free/comments", edge.url);
    assert_eq!(get(&c, &comments).await, StatusCode::OK, "{}", edge.log());
    let own = "rl:api:ip:127.0.0.1".to_owned();
    assert!(edge.kv_keys().contains(&own), "{:?}", edge.kv_keys());
    // ...and goes once its time has passed.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // Each request sweeps the next few keys, going round the whole store.
    let mut requests = 0;
    loop {
        let keys = settled(&edge).await;
        if dead.is_disjoint(&keys) && !keys.contains(&own) {
            break;
        }
        assert!(
            requests < 40,
            "after {requests} requests still stored: {:?}\n{}",
            keys.iter()
                .filter(|k| dead.contains(*k) || **k == own)
                .collect::<Vec<_>>(),
            edge.log()
        );
        assert_eq!(get(&c, &health).await, StatusCode::OK);
        requests += 1;
    }
    let last = settled(&edge).await;
    assert!(kept.is_subset(&last), "live entries went: {last:?}");
    assert!(last.contains(CURSOR_KEY), "{last:?}");
    // Rough bound: about a full round of the store at SWEEP_MAX_KEYS keys per request.
    let store_size = dead.len() + kept.len() + 2;
    assert!(
        requests <= store_size.div_ceil(SWEEP_MAX_KEYS) + 2,
        "{requests} requests to go round {store_size} keys"
    );
}
