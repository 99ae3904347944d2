//! Comments, reactions under concurrency, subscriptions.

use reqwest::StatusCode;
use serde_json::{json, Value};
use shared_wasm::jwt::Role;
use shared_wasm::record::{VideoState, Visibility};

use crate::helpers::{now, TestApp};

#[tokio::test]
async fn comments_page_in_order_and_only_authors_or_admins_change_them() {
    let app = TestApp::spawn().await;
    app.public_video("v", None).await;
    let (_, ada) = app.user("ada@example.com", Role::User).await;
    let (_, bob) = app.user("bob@example.com", Role::User).await;
    let (_, admin) = app.user("admin@example.com", Role::Admin).await;

    let mut ids = Vec::new();
    for i in 0..5 {
        let r = app
            .post(
                "/v1/videos/v/comments",
                Some(&ada),
                json!({"body": format!("comment {i}")}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let id = r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        // A second apart, so the order written is the order read (within one second the ids
        // break the tie).
        sqlx::query("UPDATE comments SET created_at = $1 WHERE id = $2")
            .bind(1_000 + i64::from(i))
            .bind(&id)
            .execute(&app.state.db)
            .await
            .unwrap();
        ids.push(id);
    }
    let r = app
        .post("/v1/videos/v/comments", Some(&ada), json!({"body": "   "}))
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post(
            "/v1/videos/nope/comments",
            Some(&ada),
            json!({"body": "hi"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Pages of two, each comment once, in the order written.
    let (mut seen, mut cursor) = (Vec::new(), String::new());
    loop {
        let page = app
            .get_json(&format!("/v1/videos/v/comments?limit=2{cursor}"))
            .await;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    // Every comment once, oldest first.
    assert_eq!(seen, ids);

    let first = &ids[0];
    let r = app
        .send(
            reqwest::Method::PATCH,
            &format!("/v1/comments/{first}"),
            &bob,
            Some(json!({"body": "mine now"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .send(
            reqwest::Method::PATCH,
            &format!("/v1/comments/{first}"),
            &ada,
            Some(json!({"body": "edited"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.json::<Value>().await.unwrap()["edited_at"].is_number());
    let r = app
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/comments/{first}"),
            &bob,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/comments/{first}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let page = app.get_json("/v1/videos/v/comments?limit=100").await;
    let removed = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == *first)
        .unwrap()
        .clone();
    assert_eq!(
        (removed["deleted"].clone(), removed["body"].clone()),
        (json!(true), json!(""))
    );
}

#[tokio::test]
async fn reaction_counts_stay_exact_under_concurrent_requests() {
    let app = TestApp::spawn().await;
    app.public_video("v", None).await;
    let mut tokens = Vec::new();
    for i in 0..12 {
        tokens.push(app.user(&format!("u{i}@example.com"), Role::User).await.1);
    }
    // Everyone likes at once; then the first third switch to dislike and the next third
    // withdraw, all at once; each user also repeats their request (idempotent).
    let round = |assign: Vec<(String, &'static str)>| {
        let app = &app;
        async move {
            let tasks = assign.into_iter().flat_map(|(t, v)| {
                [0, 1].map(|_| {
                    let t = t.clone();
                    async move {
                        let r = app
                            .send(
                                reqwest::Method::PUT,
                                "/v1/videos/v/reaction",
                                &t,
                                Some(json!({"value": v})),
                            )
                            .await;
                        assert_eq!(r.status(), StatusCode::OK);
                    }
                })
            });
            futures_join_all(tasks).await;
        }
    };
    round(tokens.iter().map(|t| (t.clone(), "like")).collect()).await;
    let counts = app_counts(&app).await;
    assert_eq!(counts, (12, 0));
    round(
        tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                (
                    t.clone(),
                    if i < 4 {
                        "dislike"
                    } else if i < 8 {
                        "none"
                    } else {
                        "like"
                    },
                )
            })
            .collect(),
    )
    .await;
    assert_eq!(app_counts(&app).await, (4, 4));
    let r = app
        .send(
            reqwest::Method::PUT,
            "/v1/videos/nope/reaction",
            &tokens[0],
            Some(json!({"value": "like"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

async fn app_counts(app: &TestApp) -> (i64, i64) {
    sqlx::query_as("SELECT likes, dislikes FROM videos WHERE id = 'v'")
        .fetch_one(&app.state.db)
        .await
        .unwrap()
}

/// Runs futures concurrently on the current task (no extra dependency).
async fn futures_join_all<F: std::future::Future<Output = ()>>(fs: impl IntoIterator<Item = F>) {
    let mut set = Vec::new();
    for f in fs {
        set.push(Box::pin(f));
    }
    let mut pending: Vec<_> = set.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut all_done = true;
        for slot in pending.iter_mut() {
            if let Some(f) = slot {
                if f.as_mut().poll(cx).is_ready() {
                    *slot = None;
                } else {
                    all_done = false;
                }
            }
        }
        if all_done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

#[tokio::test]
async fn subscriptions_are_idempotent_and_only_to_channels() {
    let app = TestApp::spawn().await;
    let (creator, creator_token) = app.user("c@example.com", Role::Creator).await;
    let (_, viewer) = app.user("v@example.com", Role::User).await;
    let r = app
        .post(
            "/v1/channels",
            Some(&creator_token),
            json!({"name": "Cooking"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let channel = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/channels/{channel}/subscription");
    for _ in 0..2 {
        let r = app.send(reqwest::Method::PUT, &path, &viewer, None).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = app
        .send(
            reqwest::Method::PUT,
            // A user id is not a channel.
            &format!("/v1/channels/{creator}/subscription"),
            &viewer,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let mine = app.get_json_as("/v1/me/subscriptions", &viewer).await;
    assert_eq!(mine["channels"], json!([channel]));
    let shown = app.get_json(&format!("/v1/channels/{channel}")).await;
    assert_eq!(shown["subscribers"], 1);
    let r = app
        .send(reqwest::Method::DELETE, &path, &viewer, None)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let mine = app.get_json_as("/v1/me/subscriptions", &viewer).await;
    assert_eq!(mine["channels"], json!([]));
}

/// Reads, writes and reactions on `video` (and on `comment`, one of its comments) as `token`:
/// each status in order (list, post, react on the video, react on the comment, edit the
/// comment).
async fn engagement(app: &TestApp, video: &str, comment: &str, token: &str) -> [u16; 5] {
    use reqwest::Method;
    let like = || Some(json!({"value": "like"}));
    let comments = format!("/v1/videos/{video}/comments");
    [
        app.get_as(&comments, token).await,
        app.post(&comments, Some(token), json!({"body": "hello"}))
            .await,
        app.send(
            Method::PUT,
            &format!("/v1/videos/{video}/reaction"),
            token,
            like(),
        )
        .await,
        app.send(
            Method::PUT,
            &format!("/v1/comments/{comment}/reaction"),
            token,
            like(),
        )
        .await,
        app.send(
            Method::PATCH,
            &format!("/v1/comments/{comment}"),
            token,
            Some(json!({"body": "edited"})),
        )
        .await,
    ]
    .map(|r| r.status().as_u16())
}

#[tokio::test]
async fn comments_and_reactions_follow_the_videos_rules() {
    let app = TestApp::spawn().await;
    let (owner, owner_token) = app.user("owner@example.com", Role::Creator).await;
    let (fan, fan_token) = app.user("fan@example.com", Role::User).await;
    let (_, admin) = app.user("admin@example.com", Role::Admin).await;
    let anonymous = |video: &str| {
        let url = format!("{}/v1/videos/{video}/comments", app.url);
        async move { reqwest::get(url).await.unwrap().status().as_u16() }
    };

    // Each video starts public and ready, so the fan can comment; then its rule changes.
    let mut comments = std::collections::HashMap::new();
    for v in ["private", "down", "waiting", "members"] {
        app.public_video(v, Some(&owner)).await;
        let path = format!("/v1/videos/{v}/comments");
        let r = app
            .post(&path, Some(&fan_token), json!({"body": "first"}))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let id = r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        comments.insert(v, id);
    }
    use {VideoState::*, Visibility::*};
    app.video_with("private", Some(&owner), Private, Ready, false)
        .await;
    app.video_with("down", Some(&owner), Public, Ready, true)
        .await;
    app.video_with("waiting", Some(&owner), Public, Processing, false)
        .await;
    app.video_with("members", Some(&owner), Members, Ready, false)
        .await;

    let fan_sees = |v: &'static str| engagement(&app, v, &comments[v], &fan_token);
    assert_eq!(fan_sees("private").await, [404; 5]);
    assert_eq!(anonymous("private").await, 404);
    assert_eq!(fan_sees("down").await, [451; 5]);
    assert_eq!(anonymous("down").await, 451);
    assert_eq!(fan_sees("waiting").await, [409; 5]);
    assert_eq!(fan_sees("members").await, [403; 5]);
    assert_eq!(anonymous("members").await, 401);
    let r = app.get_as("/v1/videos/members/comments", &fan_token).await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "entitlement_required"
    );

    // A member may; so may the owner and an admin, whatever the rule.
    origin::entitlements::set(
        &app.state.db,
        &fan,
        "member",
        shared_wasm::record::EntitlementStatus::Active,
        now() + 3600,
    )
    .await
    .unwrap();
    assert_eq!(fan_sees("members").await, [200, 201, 200, 200, 200]);
    for v in ["private", "down", "waiting"] {
        let c = &comments[v];
        let ok = [200, 201, 200, 200];
        let owner_sees = engagement(&app, v, c, &owner_token).await;
        assert_eq!(owner_sees[..4], ok, "owner on {v}");
        let admin_sees = engagement(&app, v, c, &admin).await;
        assert_eq!(admin_sees[..4], ok, "admin on {v}");
        // Only the author edits; taking one's own comment back is always allowed.
        assert_eq!((owner_sees[4], admin_sees[4]), (403, 403));
        let r = app
            .send(
                reqwest::Method::DELETE,
                &format!("/v1/comments/{c}"),
                &fan_token,
                None,
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "fan deletes on {v}");
    }
}
