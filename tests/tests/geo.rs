//! Geo routing end to end, once per edge runtime: two origin processes as two regions sharing
//! one catalogue. The viewer (DE) is nearest to `north`; the demo users are homed in `south`.
//! Shows: reads go to the nearest region, a user's calls to the home region (residency), a
//! killed home region refuses writes rather than sending them elsewhere, a killed nearest
//! region fails over to the next and is then skipped, and each decision is in a header. And a
//! region answering 500 (which a client's own input may cause) is relayed, not failed over
//! from nor marked unhealthy; only 502/503/504 (or no answer) are the region's failure.

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use e2e::{
    free_port, Edge, Origin, Runtime, CONTINENT_HEADER, COUNTRY_HEADER, DEMO_EMAIL, DEMO_PASSWORD,
    VIEWER_CONTINENT, VIEWER_COUNTRY,
};
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

fn route_of(r: &Response) -> (Option<&str>, Option<&str>) {
    (header(r, "x-edge-region"), header(r, "x-edge-failover"))
}

async fn flow(runtime: Runtime) {
    let edge_port = free_port();
    let mut south = Origin::start_region("south", None, edge_port).await;
    let mut north = Origin::start_region("north", Some(&south), edge_port).await;
    let regions = json!([
        {"name": "north", "origin": north.url, "countries": [VIEWER_COUNTRY], "residency": "n"},
        {"name": "south", "origin": south.url, "continents": ["SA"], "residency": "s"},
    ]);
    let edge = Edge::start_regions(runtime, &regions, edge_port).await;
    let e = edge.url.as_str();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(COUNTRY_HEADER, VIEWER_COUNTRY.parse().unwrap());
    headers.insert(CONTINENT_HEADER, VIEWER_CONTINENT.parse().unwrap());
    let c = Client::builder().default_headers(headers).build().unwrap();

    // Anonymous: the nearest region. A user's own data: the home region, though not nearest.
    let r = c
        .post(format!("{e}/v1/auth/login"))
        .json(&json!({"email": DEMO_EMAIL, "password": DEMO_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", edge.log());
    assert_eq!(route_of(&r), (Some("north"), None));
    let token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // A client's own bad text (NUL, which PostgreSQL cannot store) is its own 400, answered by
    // the nearest region, which stays first for everyone.
    for (path, body) in [
        (
            "/v1/auth/login",
            json!({"email": "demo\u{0}@example.com", "password": "x"}),
        ),
        (
            "/v1/videos/demo-free/comments",
            json!({"body": "hello\u{0}"}),
        ),
    ] {
        let r = c
            .post(format!("{e}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(route_of(&r).1, None, "{path}: no failover");
    }
    let r = c
        .get(format!("{e}/v1/videos/demo-free/comments?cursor=%00"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = c
        .get(format!("{e}/v1/videos/demo-free/comments"))
        .send()
        .await
        .unwrap();
    assert_eq!(route_of(&r), (Some("north"), None), "north is still first");
    let me = |c: &Client| c.get(format!("{e}/v1/me")).bearer_auth(&token).send();
    let r = me(&c).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(route_of(&r), (Some("south"), None));
    assert_eq!(
        header(&r, "x-origin-region"),
        None,
        "origin headers stay inside"
    );

    let (variant, segments) = e2e::play_first_variant(&c, e, "demo-free").await;
    assert!(segments.len() >= 3, "{segments:?}");
    let r = c.get(&segments[0]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(route_of(&r), (Some("north"), None));
    assert_eq!(header(&r, "x-edge-cache"), Some("MISS"));
    let r = c.get(&segments[0]).send().await.unwrap();
    assert_eq!(header(&r, "x-edge-cache"), Some("HIT"));
    assert_eq!(route_of(&r), (None, None), "a hit involves no region");

    // The home region dies: the user's writes are refused, never sent north.
    south.kill();
    let r = c
        .post(format!("{e}/v1/auth/logout"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        edge.log()
    );
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "home_region_unavailable"
    );
    let r = me(&c).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Reads carry on from the nearest region.
    let r = c.get(&segments[1]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(route_of(&r), (Some("north"), None));

    // The home region is back; the nearest one dies. Reads fail over once, then skip it.
    south.restart().await;
    north.kill();
    let r = c.get(&segments[2]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", edge.log());
    assert_eq!(route_of(&r), (Some("south"), Some("north")));
    let bytes = r.bytes().await.unwrap();
    let name = segments[2].rsplit('/').next().unwrap();
    let rendition = variant.rsplit('/').nth(1).unwrap();
    let stored = std::fs::read(south.media_dir.join("demo-free").join(rendition).join(name))
        .expect("the stored segment");
    assert_eq!(bytes.as_ref(), stored.as_slice());
    let next = segments.get(3).unwrap_or(&variant);
    let r = c.get(next).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        route_of(&r),
        (Some("south"), None),
        "north is marked unhealthy and tried last"
    );
    // And the user's calls work again at home.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = me(&c).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", edge.log());
    assert_eq!(route_of(&r), (Some("south"), None));
}

/// A stand-in origin that answers every request with the status in `status` (changeable while
/// it runs), counting them.
async fn answering(status: Arc<AtomicU16>) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    let app = axum::Router::new().fallback(move || {
        seen.fetch_add(1, Ordering::SeqCst);
        let status = status.load(Ordering::SeqCst);
        async move {
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/json")],
                r#"{"error":"internal","message":"internal error"}"#,
            )
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, hits)
}

async fn a_500_is_relayed_and_marks_nothing(runtime: Runtime) {
    let edge_port = free_port();
    let south = Origin::start_region("south", None, edge_port).await;
    // The viewer's nearest region, `north`, answers 500 first, then 503.
    let status = Arc::new(AtomicU16::new(500));
    let (north, hits) = answering(status.clone()).await;
    let regions = json!([
        {"name": "north", "origin": north, "countries": [VIEWER_COUNTRY], "residency": "n"},
        {"name": "south", "origin": south.url, "continents": ["SA"], "residency": "s"},
    ]);
    let edge = Edge::start_regions(runtime, &regions, edge_port).await;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(COUNTRY_HEADER, VIEWER_COUNTRY.parse().unwrap());
    headers.insert(CONTINENT_HEADER, VIEWER_CONTINENT.parse().unwrap());
    let c = Client::builder().default_headers(headers).build().unwrap();
    let channel = format!("{}/v1/channels/ch_nope", edge.url);
    for n in 1..=2 {
        let r = c.get(&channel).send().await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "{}",
            edge.log()
        );
        assert_eq!(route_of(&r), (Some("north"), None), "request {n}");
        assert_eq!(hits.load(Ordering::SeqCst), n, "north is asked every time");
    }
    // A 503 is the region's failure: failed over once, then tried last.
    status.store(503, Ordering::SeqCst);
    let r = c.get(&channel).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "{}", edge.log());
    assert_eq!(route_of(&r), (Some("south"), Some("north")));
    let r = c.get(&channel).send().await.unwrap();
    assert_eq!(
        route_of(&r),
        (Some("south"), None),
        "north is marked unhealthy"
    );
}

#[tokio::test]
async fn a_500_is_relayed_and_marks_nothing_on_workerd_via_wrangler_dev() {
    a_500_is_relayed_and_marks_nothing(Runtime::Wrangler).await;
}

#[tokio::test]
async fn a_500_is_relayed_and_marks_nothing_on_spin_component_in_wasmtime() {
    a_500_is_relayed_and_marks_nothing(Runtime::Spin).await;
}

#[tokio::test]
async fn a_500_is_relayed_and_marks_nothing_under_spin_up() {
    a_500_is_relayed_and_marks_nothing(Runtime::SpinUp).await;
}

#[tokio::test]
async fn geo_routing_on_workerd_via_wrangler_dev() {
    flow(Runtime::Wrangler).await;
}

#[tokio::test]
async fn geo_routing_on_spin_component_in_wasmtime() {
    flow(Runtime::Spin).await;
}

#[tokio::test]
async fn geo_routing_under_spin_up() {
    flow(Runtime::SpinUp).await;
}
