//! Playback analytics through the edge on every runtime: a scripted player (two viewers of the
//! 8 s demo video, one signed in) reports through `POST /v1/beacons` with the view tokens the
//! playback answers carried; a retried beacon, a forged token and a crawler's beacon change
//! nothing; the creator's statistics then show exact counts once the origin's rollup has run.

use std::time::{Duration, Instant};

use e2e::VIEWER_EMAIL;
use e2e::{call, token, Edge, Origin, Runtime, COUNTRY_HEADER, DEMO_EMAIL, VIEWER_COUNTRY};
use reqwest::header::{HeaderMap, HeaderValue, USER_AGENT};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

const BROWSER: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36";

/// A client from [`VIEWER_COUNTRY`] that says it is `user_agent`.
fn client_as(user_agent: &str) -> Client {
    let mut headers = HeaderMap::new();
    headers.insert(COUNTRY_HEADER, HeaderValue::from_static(VIEWER_COUNTRY));
    headers.insert(USER_AGENT, HeaderValue::from_str(user_agent).unwrap());
    Client::builder().default_headers(headers).build().unwrap()
}

/// The demo video's playback answer, as `bearer` when given: `(view token, beacon URL)`.
async fn playback(c: &Client, e: &str, bearer: Option<&str>) -> (String, String) {
    let mut req = c.get(format!("{e}/v1/videos/demo-free/playback"));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let v: Value = req.send().await.unwrap().json().await.unwrap();
    let field = |k: &str| {
        v[k].as_str()
            .unwrap_or_else(|| panic!("{k} in {v}"))
            .to_owned()
    };
    (field("view_token"), field("beacon_url"))
}

/// Sends a beacon as `navigator.sendBeacon` does (text/plain): status and answer.
async fn beacon(c: &Client, url: &str, token: &str, events: Value) -> (StatusCode, Value) {
    let body = json!({"token": token, "events": events}).to_string();
    let r = c
        .post(url)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn flow(runtime: Runtime) {
    let port = e2e::free_port();
    let origin = Origin::start_with_env(port, &[("APP_ANALYTICS__ROLLUP_SECS", "1")]).await;
    let edge = Edge::start(runtime, &origin, port).await;
    let e = edge.url.as_str();
    let c = client_as(BROWSER);
    let viewer = token(&c, e, VIEWER_EMAIL).await;
    let creator = token(&c, e, DEMO_EMAIL).await;

    // The signed-in viewer plays the whole 8 s in three reports; the second is sent twice.
    let (signed_in, url) = playback(&c, e, Some(&viewer)).await;
    let first = json!([
        {"type": "start", "seq": 0, "startup_ms": 700},
        {"type": "heartbeat", "seq": 1, "played": [[0, 3000]]},
    ]);
    let second = json!([
        {"type": "rendition", "seq": 2, "height": 360},
        {"type": "heartbeat", "seq": 3, "played": [[3000, 6000]]},
    ]);
    let last = json!([{"type": "end", "seq": 4, "played": [[6000, 8000]]}]);
    for events in [first, second.clone(), second, last] {
        let (s, v) = beacon(&c, &url, &signed_in, events).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v} {}", edge.log());
    }
    // Someone signed out plays half of it.
    let (anonymous, _) = playback(&c, e, None).await;
    let half = json!([
        {"type": "start", "seq": 0, "startup_ms": 200},
        {"type": "end", "seq": 1, "played": [[0, 4000]]},
    ]);
    assert_eq!(
        beacon(&c, &url, &anonymous, half).await.0,
        StatusCode::ACCEPTED
    );

    // A forged token, a range past the end, a crawler: nothing reaches the origin.
    let forged = format!("{}x", &anonymous[..anonymous.len() - 1]);
    let more = json!([{"type": "heartbeat", "seq": 9, "played": [[0, 8000]]}]);
    let (s, v) = beacon(&c, &url, &forged, more.clone()).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_view_token"))
    );
    let past = json!([{"type": "heartbeat", "seq": 9, "played": [[0, 10001]]}]);
    let (s, v) = beacon(&c, &url, &anonymous, past).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_beacon"))
    );
    let crawler = client_as("Mozilla/5.0 (compatible; Googlebot/2.1)");
    let (s, v) = beacon(&crawler, &url, &anonymous, more).await;
    assert_eq!((s, &v["accepted"]), (StatusCode::ACCEPTED, &json!(0)));

    // The rollup runs every second; the statistics settle on the hand-counted figures.
    let stats_url = format!("{e}/v1/creator/stats?video=demo-free");
    let deadline = Instant::now() + Duration::from_secs(60);
    let stats = loop {
        let (s, v) = call(&c, Method::GET, stats_url.clone(), &creator, None).await;
        assert!(Instant::now() < deadline, "never rolled up: {v}");
        // Polls count against the API quota: wait as told when it runs out.
        if s == StatusCode::TOO_MANY_REQUESTS {
            let secs = v["retry_after"].as_u64().unwrap_or(1);
            tokio::time::sleep(Duration::from_secs(secs)).await;
            continue;
        }
        assert_eq!(s, StatusCode::OK, "{v}");
        if v["totals"]["plays"] == 2 && v["totals"]["views"] == 1 {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let t = &stats["totals"];
    assert_eq!(t["unique_viewers"], 1);
    assert_eq!(
        t["watch_ms"],
        8000 + 4000,
        "the retried beacon counted once"
    );
    assert_eq!(t["rendition_switches"], 1);
    assert_eq!(t["startup_ms"], json!({"p50": 250, "p95": 1000}));
    // Points every 400 ms: both played 0–3.9 s, the signed-in viewer the rest.
    let retention: Vec<f64> = (0..20).map(|k| if k < 10 { 1.0 } else { 0.5 }).collect();
    assert_eq!(stats["retention"], json!(retention));
    assert_eq!(stats["countries"][0]["country"], VIEWER_COUNTRY);
    assert_eq!(stats["devices"][0]["device"], "desktop");

    // A viewer may not read a creator's statistics.
    let (s, _) = call(&c, Method::GET, stats_url, &viewer, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn playback_analytics_on_workerd_via_wrangler_dev() {
    flow(Runtime::Wrangler).await;
}

#[tokio::test]
async fn playback_analytics_on_spin_component_in_wasmtime() {
    flow(Runtime::Spin).await;
}

#[tokio::test]
async fn playback_analytics_under_spin_up() {
    flow(Runtime::SpinUp).await;
}
