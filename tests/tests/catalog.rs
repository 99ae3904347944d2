//! What viewers read through the edge, once per edge runtime: a video's details under its
//! rules, search cached by its words (a query typed differently hits the same entry) and fresh
//! after an edit, categories, and a creator's profile.

use std::time::{Duration, Instant};

use e2e::{Runtime, DEMO_EMAIL};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn ids(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect()
}

async fn flow(runtime: Runtime) {
    let (_origin, edge) = e2e::stack(runtime).await;
    let e = edge.url.as_str();
    let c = e2e::client();

    // Details: public for anyone; a taken-down video says why; bad or unknown ids are refused.
    let r = c
        .get(format!("{e}/v1/videos/demo-free"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", edge.log());
    let details: Value = r.json().await.unwrap();
    assert_eq!(details["title"], "Test pattern (public)");
    assert_eq!(details["poster_url"], "/posters/demo-free.jpg");
    let owner = details["owner_id"].as_str().unwrap().to_owned();
    // Its poster, for anyone and any cache; a members video's needs a playback token.
    let r = c
        .get(format!("{e}/posters/demo-free.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.headers()["cache-control"], "public, max-age=300");
    assert!(
        r.bytes().await.unwrap().starts_with(&[0xff, 0xd8]),
        "a JPEG"
    );
    let r = c
        .get(format!("{e}/posters/demo-members.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    for (path, status, code) in [
        ("demo-taken", 451, "taken_down"),
        ("no-such-video", 404, "not_found"),
        ("bad.id", 400, "invalid_id"),
    ] {
        let r = c.get(format!("{e}/v1/videos/{path}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], code, "{path}");
    }

    // Search: the public, playable demos; the same words typed otherwise hit the same entry.
    let search = format!("{e}/v1/search?q=test+pattern");
    e2e::until_feed_cached(&c, &search, &edge).await;
    let r = c.get(&search).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page: Value = r.json().await.unwrap();
    let found = ids(&page);
    assert!(found.contains(&"demo-free"), "{page}");
    assert!(
        !found.contains(&"demo-members") && !found.contains(&"demo-taken"),
        "{page}"
    );
    // The home feed's version keys the entry, and a sync may move it between two requests: each
    // try asks with words typed in a way not asked before, so its hit can only be the shared
    // entry (had each spelling its own entry, every first ask would be a miss).
    let spellings = [
        "TEST%2C%20Pattern!",
        "test%20%20PATTERN",
        "%20Test%3B%20pattern.",
        "tEsT%20-%20pAtTeRn",
    ];
    for (i, words) in spellings.iter().enumerate() {
        if i > 0 {
            e2e::until_feed_cached(&c, &search, &edge).await;
        }
        let r = c
            .get(format!("{e}/v1/search?q={words}"))
            .send()
            .await
            .unwrap();
        if r.headers()["x-edge-cache"] == "HIT" {
            break;
        }
        assert!(
            i + 1 < spellings.len(),
            "no spelling of the words hit the cached search: {}",
            edge.log()
        );
    }
    let r = c.get(format!("{e}/v1/search?q=%2A")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_query");

    // An edit bumps the home feed's version, which keys search too: the next search finds it.
    let token = e2e::login(&c, e, DEMO_EMAIL).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = c
        .patch(format!("{e}/v1/videos/demo-free"))
        .bearer_auth(&token)
        .json(&json!({"title": "Lighthouse at dusk"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = c
            .get(format!("{e}/v1/search?q=lighthouse"))
            .send()
            .await
            .unwrap();
        let page: Value = r.json().await.unwrap();
        if ids(&page) == ["demo-free"] {
            break;
        }
        assert!(Instant::now() < deadline, "the edit never reached search");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Categories and the creator's profile.
    let r = c.get(format!("{e}/v1/categories")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key("x-edge-cache"));
    assert!(r.json::<Value>().await.unwrap()["categories"].is_array());
    let r = c.get(format!("{e}/v1/users/{owner}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let profile: Value = r.json().await.unwrap();
    assert_eq!(profile["id"], owner.as_str());
    assert!(profile["public_videos"].as_i64().unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_on_workerd_via_wrangler_dev() {
    flow(Runtime::Wrangler).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_on_spin_component_in_wasmtime() {
    flow(Runtime::Spin).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_under_spin_up() {
    flow(Runtime::SpinUp).await;
}
