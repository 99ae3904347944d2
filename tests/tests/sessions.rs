//! Sessions and revocation end to end, once per edge runtime: roles per route, refresh and
//! logout through the edge, entitlements on members videos, and the origin's pushes reaching
//! the edge's KV through the signed sync endpoint.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use e2e::{Runtime, ADMIN_EMAIL, DEMO_EMAIL, SYNC_SECRET, VIEWER_EMAIL};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use shared_wasm::record::{FeedVersion, UserRecord};
use shared_wasm::sync::{self, SyncBatch, SyncItem};
use shared_wasm::UnixTime;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

struct Session {
    access: String,
    refresh: String,
}

async fn json_of(r: reqwest::Response) -> Value {
    r.json().await.expect("a JSON body")
}

async fn login(c: &Client, e: &str, email: &str) -> Session {
    let b = e2e::login(c, e, email).await;
    Session {
        access: b["access_token"].as_str().unwrap().to_owned(),
        refresh: b["refresh_token"].as_str().unwrap().to_owned(),
    }
}

async fn get_as(c: &Client, url: &str, token: &str) -> reqwest::Response {
    c.get(url).bearer_auth(token).send().await.unwrap()
}

async fn post_as(c: &Client, url: &str, token: Option<&str>, body: Value) -> reqwest::Response {
    let mut req = c.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

/// Polls until the edge refuses `token` on a route only the edge decides (playback of a
/// public video), proving the revocation arrived through the sync.
async fn until_revoked_at_edge(c: &Client, e: &str, token: &str) {
    let url = format!("{e}/v1/videos/demo-free/playback");
    // Past the outbox's 30 s backoff ceiling: pushes that failed while the edge was still
    // starting (a slow machine compiling the component) may leave the pusher waiting that long
    // before the push that carries the revocation.
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let r = get_as(c, &url, token).await;
        if r.status() == StatusCode::UNAUTHORIZED {
            assert_eq!(json_of(r).await["message"], "token revoked");
            return;
        }
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            Instant::now() < deadline,
            "revocation never reached the edge"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn flow(runtime: Runtime) {
    let (origin, edge) = e2e::stack(runtime).await;
    let e = edge.url.as_str();
    let c = e2e::client();

    // A body larger than any route takes is refused (on workerd before it is read).
    let r = c
        .post(format!("{e}/v1/auth/login"))
        .header("content-type", "application/json")
        .body(vec![b' '; 600 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json_of(r).await["error"], "payload_too_large");
    // The same sent in chunks, with no length to refuse it by (on workerd the shell stops
    // keeping it once it is over the limit).
    let chunks = (0..10).map(|_| Ok::<_, std::io::Error>(vec![b' '; 64 * 1024]));
    let r = c
        .post(format!("{e}/v1/auth/login"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json_of(r).await["error"], "payload_too_large");

    // Roles per route, at the edge.
    let creator = login(&c, e, DEMO_EMAIL).await;
    let viewer = login(&c, e, VIEWER_EMAIL).await;
    let admin = login(&c, e, ADMIN_EMAIL).await;
    let r = get_as(&c, &format!("{e}/v1/creator/videos"), &viewer.access).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "{}", edge.log());
    assert_eq!(json_of(r).await["reason"], "role_required");
    let r = get_as(&c, &format!("{e}/v1/creator/videos"), &creator.access).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", edge.log());
    assert!(json_of(r).await["items"].as_array().unwrap().len() >= 4);
    let r = c.get(format!("{e}/v1/me")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = get_as(&c, &format!("{e}/v1/me"), &viewer.access).await;
    assert_eq!(json_of(r).await["email"], VIEWER_EMAIL);
    let r = post_as(
        &c,
        &format!("{e}/v1/admin/users/../role"),
        Some(&admin.access),
        json!({}),
    )
    .await;
    assert!(r.status().is_client_error());

    // Members videos need an entitlement; the token never outlives its period.
    let r = get_as(
        &c,
        &format!("{e}/v1/videos/demo-members/playback"),
        &viewer.access,
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(json_of(r).await["reason"], "entitlement_required");
    let r = get_as(
        &c,
        &format!("{e}/v1/videos/demo-members/playback"),
        &creator.access,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", edge.log());
    let exp = json_of(r).await["expires_at"].as_u64().unwrap();
    assert!(exp > now() && exp <= now() + 3600);

    // The social API through the edge: comment (login needed), read comments (public), react,
    // subscribe to the creator's channel.
    let comments = format!("{e}/v1/videos/demo-free/comments");
    let r = post_as(&c, &comments, None, json!({"body": "first!"})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = post_as(
        &c,
        &comments,
        Some(&viewer.access),
        json!({"body": "first!"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED, "{}", edge.log());
    let page: Value = c
        .get(format!("{comments}?limit=10"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["body"], "first!");
    let r = c
        .put(format!("{e}/v1/videos/demo-free/reaction"))
        .bearer_auth(&viewer.access)
        .json(&json!({"value": "like"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"likes": 1, "dislikes": 0})
    );
    let creator_id = json_of(get_as(&c, &format!("{e}/v1/me"), &creator.access).await).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let channels = json_of(
        c.get(format!("{e}/v1/users/{creator_id}/channels"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let channel = channels["channels"][0]["id"].as_str().unwrap().to_owned();
    let r = c
        .put(format!("{e}/v1/channels/{channel}/subscription"))
        .bearer_auth(&viewer.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let subs = json_of(get_as(&c, &format!("{e}/v1/me/subscriptions"), &viewer.access).await).await;
    assert_eq!(subs["channels"], json!([channel]));

    // Refresh through the edge gives a working token.
    let r = post_as(
        &c,
        &format!("{e}/v1/auth/refresh"),
        None,
        json!({"refresh_token": viewer.refresh}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let refreshed = json_of(r).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = get_as(&c, &format!("{e}/v1/me"), &refreshed).await;
    assert_eq!(r.status(), StatusCode::OK);

    // Logout: the origin pushes the revoked session, and the edge refuses the token itself.
    let r = post_as(
        &c,
        &format!("{e}/v1/auth/logout"),
        Some(&refreshed),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", edge.log());
    until_revoked_at_edge(&c, e, &refreshed).await;
    // The first access token of the same session is refused too (one jti per session).
    until_revoked_at_edge(&c, e, &viewer.access).await;

    // An admin's revoke reaches the edge through the user's epoch.
    let me = json_of(get_as(&c, &format!("{e}/v1/me"), &creator.access).await).await;
    let creator_id = me["id"].as_str().unwrap().to_owned();
    let r = post_as(
        &c,
        &format!("{e}/v1/admin/users/{creator_id}/revoke"),
        Some(&creator.access),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "creators cannot revoke");
    let r = post_as(
        &c,
        &format!("{e}/v1/admin/users/{creator_id}/revoke"),
        Some(&admin.access),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", edge.log());
    until_revoked_at_edge(&c, e, &creator.access).await;
    // Its logins go to the origin directly (as the edge would): the edge's login quota is spent.
    let o = origin.as_edge().await;
    same_second_revocation(&c, e, &o, &admin.access, &creator_id).await;

    sync_endpoint_refusals(&c, e, &creator_id).await;
}

/// A token issued in the very second of a revocation is refused at the edge too (tokens are
/// dated to the second), and a login right after it gets a token the edge takes. Both calls
/// go to the origin directly (as the edge would), the shortest path to fit them in a second.
async fn same_second_revocation(c: &Client, e: &str, o: &str, admin: &str, user_id: &str) {
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis()
    };
    let issued_at = |token: &str| -> u128 {
        let payload = token.split('.').nth(1).expect("a JWT");
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).expect("JSON claims");
        claims["iat"].as_u64().expect("iat").into()
    };
    // Start near the top of a second; a slow run whose revocation ends in a later second than
    // the token's tries again.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis((1000 - now() % 1000) as u64)).await;
        let early = login(c, o, DEMO_EMAIL).await;
        let url = format!("{o}/v1/admin/users/{user_id}/revoke");
        let r = post_as(c, &url, Some(admin), json!({})).await;
        assert_eq!(r.status(), StatusCode::OK);
        if now() / 1000 != issued_at(&early.access) {
            continue;
        }
        until_revoked_at_edge(c, e, &early.access).await;
        let late = login(c, o, DEMO_EMAIL).await;
        let r = get_as(
            c,
            &format!("{e}/v1/videos/demo-free/playback"),
            &late.access,
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
        return;
    }
    panic!("ten tries never fitted a login and a revocation in one second");
}

/// The sync endpoint takes only signed, fresh, unreplayed batches, and never lets an older
/// version overwrite a newer one.
async fn sync_endpoint_refusals(c: &Client, e: &str, user_id: &str) {
    let url = format!("{e}/internal/sync");
    // Version 1 is older than what the revoke pushed (2).
    let stale = UserRecord {
        v: 1,
        id: user_id.to_owned(),
        not_before: 0,
        version: 1,
    };
    let body = SyncBatch {
        v: 1,
        items: vec![SyncItem {
            key: UserRecord::key(user_id),
            version: 1,
            value: stale.to_cbor(),
            expires_at: None,
        }],
    }
    .to_cbor();
    let send = |auth: Option<String>, body: Vec<u8>| {
        let mut req = c.post(&url).body(body);
        if let Some(a) = auth {
            req = req.header(sync::HEADER, a);
        }
        req.send()
    };
    let r = send(None, body.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let wrong = sync::sign(
        b"not-the-secret-not-the-secret-!!",
        &body,
        "nonce-nonce-nonce-1",
        UnixTime(now()),
    );
    let r = send(Some(wrong), body.clone()).await.unwrap();
    assert_eq!(json_of(r).await["reason"], "bad_signature");
    let old = sync::sign(
        SYNC_SECRET.as_bytes(),
        &body,
        "nonce-nonce-nonce-2",
        UnixTime(now() - 300),
    );
    let r = send(Some(old), body.clone()).await.unwrap();
    assert_eq!(json_of(r).await["reason"], "stale");

    let good = sync::sign(
        SYNC_SECRET.as_bytes(),
        &body,
        "nonce-nonce-nonce-3",
        UnixTime(now()),
    );
    let r = send(Some(good.clone()), body.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        json_of(r).await,
        json!({"applied": 0, "stale": 1, "expired": 0, "superseded": 0})
    );
    let r = send(Some(good), body).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(r).await["reason"], "replayed");

    // Three versions of one key in a batch: only the newest is written.
    let bumps = SyncBatch {
        v: 1,
        items: (1..=3)
            .map(|version| {
                let rec = FeedVersion {
                    v: 1,
                    feed: "e2e-burst".into(),
                    version,
                };
                SyncItem {
                    key: FeedVersion::key("e2e-burst"),
                    version,
                    value: rec.to_cbor(),
                    expires_at: None,
                }
            })
            .collect(),
    }
    .to_cbor();
    let auth = sync::sign(
        SYNC_SECRET.as_bytes(),
        &bumps,
        "nonce-nonce-nonce-5",
        UnixTime(now()),
    );
    let r = send(Some(auth), bumps).await.unwrap();
    assert_eq!(
        json_of(r).await,
        json!({"applied": 1, "stale": 0, "expired": 0, "superseded": 2})
    );

    // A batch may not write the edge's own keys.
    let forged = SyncBatch {
        v: 1,
        items: vec![SyncItem {
            key: "jwks".into(),
            version: 9,
            value: stale.to_cbor(),
            expires_at: None,
        }],
    }
    .to_cbor();
    let auth = sync::sign(
        SYNC_SECRET.as_bytes(),
        &forged,
        "nonce-nonce-nonce-4",
        UnixTime(now()),
    );
    let r = send(Some(auth), forged).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(r).await["error"], "invalid_batch");
}

#[tokio::test]
async fn sessions_on_workerd_via_wrangler_dev() {
    flow(Runtime::Wrangler).await;
}

#[tokio::test]
async fn sessions_on_spin_component_in_wasmtime() {
    flow(Runtime::Spin).await;
}

#[tokio::test]
async fn sessions_under_spin_up() {
    flow(Runtime::SpinUp).await;
}
