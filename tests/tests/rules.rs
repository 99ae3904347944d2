//! A video's rules at the edge, once per edge runtime: a video made private stops playing on
//! the URLs already issued; its comments follow its rules (a members video's are read with the
//! viewer's token, which the edge forwards); the country codes a runtime reports beyond ISO
//! (`T1` for Tor) are kept, so a rule can name them; an unknown country fails closed (an
//! allow-list refuses, and no playback token is issued unbound when the deployment binds tokens
//! to countries). And feeds count against the API quota.

use std::time::{Duration, Instant};

use e2e::{free_port, Edge, Origin, Runtime, COUNTRY_HEADER, DEMO_EMAIL, VIEWER_EMAIL};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

/// A client whose requests come from `country` on Spin (its trusted header); on workerd the
/// edge's own setting says it ([`Edge::start_in_country`]).
fn client_in(country: Option<&str>) -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(c) = country {
        headers.insert(COUNTRY_HEADER, c.parse().unwrap());
    }
    Client::builder().default_headers(headers).build().unwrap()
}

/// GETs `url` until it answers `status` (the change travels through the sync), and returns the
/// body; panics after 20 s with the last answer.
async fn until(c: &Client, url: &str, status: StatusCode) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = c.get(url).send().await.unwrap();
        let got = r.status();
        let body = r.text().await.unwrap();
        if got == status {
            return serde_json::from_str(&body).unwrap_or(Value::Null);
        }
        assert!(
            Instant::now() < deadline,
            "{url} still answers {got} (wanted {status}): {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn patch(c: &Client, e: &str, token: &str, body: Value) {
    let r = c
        .patch(format!("{e}/v1/videos/demo-free"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{body}");
}

async fn flow(runtime: Runtime) {
    let port = free_port();
    let origin = Origin::start(port).await;
    let playback = |e: &str| format!("{e}/v1/videos/demo-free/playback");

    // A viewer reached through Tor: Cloudflare reports `T1`.
    let edge = Edge::start_in_country(runtime, &origin, port, Some("T1"), &[]).await;
    let (e, c) = (edge.url.as_str(), client_in(Some("T1")));
    let token_of = |v: Value| v["access_token"].as_str().unwrap().to_owned();
    let creator = token_of(e2e::login(&c, e, DEMO_EMAIL).await);
    let viewer = token_of(e2e::login(&c, e, VIEWER_EMAIL).await);

    // A members video's comments: its owner reads them with a token the edge passes on; a
    // viewer without a membership and an anonymous one may not.
    let comments = format!("{e}/v1/videos/demo-members/comments");
    let read = |token: Option<&str>| {
        let mut r = c.get(&comments);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    assert_eq!(read(Some(&creator)).await.unwrap().status(), StatusCode::OK);
    let r = read(Some(&viewer)).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "entitlement_required"
    );
    assert_eq!(read(None).await.unwrap().status(), StatusCode::UNAUTHORIZED);

    // Made private: the manifest URL issued before stops playing.
    let r = c.get(playback(e)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", edge.log());
    let manifest = r.json::<Value>().await.unwrap()["manifest_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(c.get(&manifest).send().await.unwrap().status(), 200);
    patch(&c, e, &creator, json!({"visibility": "private"})).await;
    let body = until(&c, &manifest, StatusCode::NOT_FOUND).await;
    assert_eq!(body["error"], "not_found", "{body}");
    patch(&c, e, &creator, json!({"visibility": "public"})).await;
    until(&c, &manifest, StatusCode::OK).await;

    // `T1` is a code a rule can name, in a deny-list and in an allow-list.
    let deny_t1 = json!({"countries": {"mode": "deny", "list": ["T1"]}});
    patch(&c, e, &creator, deny_t1).await;
    let body = until(&c, &playback(e), StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS).await;
    assert_eq!(body["reason"], "country_blocked");
    let allow_t1 = json!({"countries": {"mode": "allow", "list": ["T1"]}});
    patch(&c, e, &creator, allow_t1).await;
    until(&c, &playback(e), StatusCode::OK).await;
    drop(edge);

    // A runtime that reports no country: the allow-list refuses, and with the rule gone no
    // token is issued, since the deployment binds tokens to the viewer's country.
    let quota = [("RATE_LIMITS", "login=5/600,api=3/600")];
    let edge = Edge::start_in_country(runtime, &origin, port, None, &quota).await;
    let (e, c) = (edge.url.as_str(), client_in(None));
    let body = until(&c, &playback(e), StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS).await;
    assert_eq!(body["reason"], "country_blocked");
    patch(&c, e, &creator, json!({"countries": null})).await;
    let body = until(&c, &playback(e), StatusCode::FORBIDDEN).await;
    assert_eq!(body["reason"], "country_unknown", "{body}");

    // Feeds count against the API quota (3 here, per address and per user, drawn on by the
    // edit above too): the subscriptions feed says so, and the home feed runs out.
    let r = c
        .get(format!("{e}/v1/feeds/subscriptions"))
        .bearer_auth(&creator)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers().contains_key("ratelimit-policy"),
        "{:?}",
        r.headers()
    );
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = c.get(format!("{e}/v1/feeds/home")).send().await.unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [200, 429, 429]);
}

#[tokio::test]
async fn video_rules_on_workerd_via_wrangler_dev() {
    flow(Runtime::Wrangler).await;
}

#[tokio::test]
async fn video_rules_on_spin_component_in_wasmtime() {
    flow(Runtime::Spin).await;
}

#[tokio::test]
async fn video_rules_under_spin_up() {
    flow(Runtime::SpinUp).await;
}
