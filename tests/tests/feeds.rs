//! Feed caching at the edge, once per edge runtime: a hit does not reach the origin (counted in
//! its request log), ETag revalidation answers 304, a write shows on the next read through the
//! feed version, stale-while-revalidate serves at once and refreshes behind, and with the origin
//! down the stale feed is served and says so.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use e2e::{free_port, Edge, Origin, Runtime, DEMO_EMAIL, VIEWER_EMAIL};
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};

const FRESH: u64 = 5;
const SWR: u64 = 3;
const HOME: &str = "/v1/feeds/home";

fn cache_of(r: &Response) -> String {
    let Some(v) = r.headers().get("x-edge-cache") else {
        panic!(
            "a {} answer without x-edge-cache: {:?}",
            r.status(),
            r.headers()
        );
    };
    v.to_str().unwrap().to_owned()
}

async fn titles(r: Response) -> Vec<(String, String)> {
    let page: Value = r.json().await.unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_owned(),
                i["title"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn flow(runtime: Runtime) {
    let edge_port = free_port();
    let mut origin = Origin::start(edge_port).await;
    let (fresh, swr) = (FRESH.to_string(), SWR.to_string());
    let edge = Edge::start_with(
        runtime,
        &origin,
        edge_port,
        &[
            ("FEED_FRESH_SECS", &fresh),
            ("FEED_SWR_SECS", &swr),
            // The test polls the feed every 100 ms while a revalidation runs; on a slow machine
            // that outruns the default 60 API calls a minute from one address, and a 429
            // carries no cache status.
            ("RATE_LIMITS", "api=100000/60"),
        ],
    )
    .await;
    let e = edge.url.as_str();
    let c = Client::new();
    let home = format!("{e}{HOME}");
    let get = |url: String| c.get(url).send();

    e2e::until_feed_cached(&c, &home, &edge).await;
    let before = origin.requests_for(HOME);
    let r = get(home.clone()).await.unwrap();
    assert_eq!((r.status(), cache_of(&r)), (StatusCode::OK, "HIT".into()));
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let listed = titles(r).await;
    assert_eq!(
        origin.requests_for(HOME),
        before,
        "a hit does not reach the origin"
    );
    let ids: Vec<&str> = listed.iter().map(|(id, _)| id.as_str()).collect();
    assert!(
        ids.contains(&"demo-free") && ids.contains(&"demo-embed"),
        "{ids:?}"
    );
    assert!(
        !ids.contains(&"demo-taken") && !ids.contains(&"demo-members"),
        "{ids:?}"
    );

    let r = c
        .get(&home)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);

    for bad in ["?limit=500", "?foo=1", "?cursor=../x"] {
        let r = get(format!("{home}{bad}")).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    // A client's own Host is no part of the cache key: the same page, another host, a hit.
    // The made-up host must hit between two hits of the usual host. A slow run may see the
    // entry age out or the feed's version move in between (a MISS that proves nothing), so
    // try again, each time with a host never used before: a cache keyed by the client's Host
    // would miss every time and fail at the deadline.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut attempt = 0;
    let r = loop {
        attempt += 1;
        let first = get(home.clone()).await.unwrap();
        let before = origin.requests_for(HOME);
        let other = c
            .get(&home)
            .header("host", format!("made-up-{attempt}.example"))
            .send()
            .await
            .unwrap();
        let after = origin.requests_for(HOME);
        let last = get(home.clone()).await.unwrap();
        let seen = [&first, &other, &last].map(cache_of);
        if seen.iter().all(|s| s == "HIT") {
            assert_eq!(other.status(), StatusCode::OK);
            assert_eq!(after, before, "no request for a new host");
            break other;
        }
        assert!(
            Instant::now() < deadline,
            "never a hit for a new host between two hits (last seen {seen:?}): {}",
            edge.log()
        );
    };
    // Feeds count against the API quota.
    assert!(
        r.headers().contains_key("ratelimit-policy"),
        "{:?}",
        r.headers()
    );

    // Only cursors the origin sealed pass the edge: a well-formed forgery (the unsealed form
    // `base64url("{time}:{id}")`) is a 400 there, and the origin never sees it.
    let page: Value = get(format!("{home}?limit=1"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sealed = page["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let r = get(format!("{home}?cursor={sealed}&limit=1"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // (The origin logs no query strings: the request is known by the id the edge forwards.)
    let forged = URL_SAFE_NO_PAD.encode("99999999999:zzz");
    let r = c
        .get(format!("{home}?cursor={forged}"))
        .header("x-request-id", "e2e-forged-cursor")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.headers()["x-request-id"], "e2e-forged-cursor");
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_cursor");
    assert_eq!(
        origin.requests_with_id("e2e-forged-cursor"),
        Vec::<Value>::new()
    );

    let token = e2e::login(&c, e, DEMO_EMAIL).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me: Value = c
        .get(format!("{e}/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Trending and category feeds go through the same cache.
    for feed in ["trending", "category/music"] {
        let url = format!("{e}/v1/feeds/{feed}");
        let first = get(url.clone()).await.unwrap();
        assert_eq!(first.status(), StatusCode::OK, "{feed}");
        let second = get(url).await.unwrap();
        assert_eq!(cache_of(&second), "HIT", "{feed}");
    }

    // A viewer's subscriptions feed, composed at the edge from the channel feeds.
    let viewer = e2e::login(&c, e, VIEWER_EMAIL).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let subs_feed = format!("{e}/v1/feeds/subscriptions");
    let r = c.get(&subs_feed).bearer_auth(&viewer).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", edge.log());
    assert_eq!(titles(r).await.len(), 0, "no subscriptions yet");
    // The demo creator's channel (made with their first video), looked up through the edge.
    let list: Value = get(format!(
        "{e}/v1/users/{}/channels",
        me["id"].as_str().unwrap()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let channel = list["channels"][0]["id"].as_str().unwrap().to_owned();
    let r = c
        .put(format!("{e}/v1/channels/{channel}/subscription"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c.get(&subs_feed).bearer_auth(&viewer).send().await.unwrap();
    assert_eq!(cache_of(&r), "COMPOSED");
    let composed = titles(r).await;
    assert!(composed.len() >= 3, "{composed:?}");
    assert!(composed.iter().any(|(id, _)| id == "demo-free"));
    let r = c.get(&subs_feed).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // A write at the origin shows on the next read: the feed version moved, no purge.
    let r = c
        .patch(format!("{e}/v1/videos/demo-free"))
        .bearer_auth(&token)
        .json(&json!({"title": "Retitled for the feed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", edge.log());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = get(home.clone()).await.unwrap();
        let status = cache_of(&r);
        if titles(r)
            .await
            .iter()
            .any(|(_, t)| t == "Retitled for the feed")
        {
            // A miss under the new version; or a hit, when the old entry had gone stale and its
            // background revalidation brought the edit a moment before the version arrived.
            assert!(status == "MISS" || status == "HIT", "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "the edit never showed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = get(format!("{e}/v1/feeds/channel/{channel}"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(titles(r).await.len() >= 3);

    // Past fresh: served stale at once, refreshed behind the response. (Poll until the entry
    // leaves its fresh window: its exact age depends on when the edit's version arrived. A miss
    // means that version reached the edge only now — the edit above showed through the old
    // entry's revalidation — and starts a new fresh window: keep polling.)
    let deadline = Instant::now() + Duration::from_secs(30);
    let r = loop {
        let before = origin.requests_for(HOME);
        let r = get(home.clone()).await.unwrap();
        let status = cache_of(&r);
        if status != "HIT" && status != "MISS" {
            break (r, before);
        }
        assert!(
            Instant::now() < deadline,
            "never served stale (last {status})"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let (r, before) = r;
    assert_eq!((r.status(), cache_of(&r)), (StatusCode::OK, "STALE".into()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while origin.requests_for(HOME) == before {
        assert!(
            Instant::now() < deadline,
            "no revalidation reached the origin"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The request reaching the origin only shows the revalidation started: on workerd it runs
    // after the STALE answer (`waitUntil`) and stores the refreshed entry a moment after the
    // origin answers. Until then the old entry still answers STALE; anything else is wrong.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = get(home.clone()).await.unwrap();
        let status = cache_of(&r);
        if status == "HIT" {
            break;
        }
        assert_eq!(
            status,
            "STALE",
            "the revalidated entry is fresh: {}",
            edge.log()
        );
        assert!(
            Instant::now() < deadline,
            "the revalidation never stored a fresh entry: {}",
            edge.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The origin goes away: past fresh and revalidate windows, the stale feed still serves.
    origin.kill();
    tokio::time::sleep(Duration::from_millis((FRESH + SWR) * 1000 + 300)).await;
    let r = get(home.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", edge.log());
    assert_eq!(cache_of(&r), "STALE-IF-ERROR");
    assert!(titles(r)
        .await
        .iter()
        .any(|(_, t)| t == "Retitled for the feed"));
}

#[tokio::test]
async fn feeds_on_workerd_via_wrangler_dev() {
    flow(Runtime::Wrangler).await;
}

#[tokio::test]
async fn feeds_on_spin_component_in_wasmtime() {
    flow(Runtime::Spin).await;
}

#[tokio::test]
async fn feeds_under_spin_up() {
    flow(Runtime::SpinUp).await;
}
