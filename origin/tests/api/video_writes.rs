//! Video metadata writes: who may create and edit, field validation, versions.

use reqwest::StatusCode;
use serde_json::{json, Value};
use shared_wasm::jwt::Role;

use crate::helpers::TestApp;

async fn patch(app: &TestApp, id: &str, bearer: &str, body: Value) -> reqwest::Response {
    app.client
        .patch(format!("{}/v1/videos/{id}", app.url))
        .bearer_auth(bearer)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn creators_create_owners_edit_admins_take_down() {
    let app = TestApp::spawn().await;
    let creator = app.user("c@example.com", Role::Creator).await.1;
    let other = app.user("o@example.com", Role::Creator).await.1;
    let viewer = app.user("v@example.com", Role::User).await.1;
    let admin = app.user("a@example.com", Role::Admin).await.1;

    let body = json!({"title": "Clip", "visibility": "public"});
    let r = app.post("/v1/videos", Some(&viewer), body.clone()).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app.post("/v1/videos", Some(&creator), body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (v["state"].as_str(), v["version"].as_u64()),
        (Some("uploading"), Some(1))
    );

    let r = patch(
        &app,
        &id,
        &creator,
        json!({"title": "Clip, cut", "countries": {"mode": "deny", "list": ["FR"]}}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["title"], "Clip, cut");
    assert_eq!(v["countries"]["list"], json!(["FR"]));
    assert_eq!(v["version"], 2);
    // `null` clears the rule; an absent field leaves it.
    let r = patch(&app, &id, &creator, json!({"countries": null})).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["countries"].clone(), v["title"].clone()),
        (Value::Null, json!("Clip, cut"))
    );

    // Someone else's video does not exist for them; only admins take down.
    assert_eq!(
        patch(&app, &id, &other, json!({"title": "mine"}))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let r = patch(&app, &id, &creator, json!({"taken_down": true})).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = patch(&app, &id, &admin, json!({"taken_down": true})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["taken_down"], true);

    // Every write queued the video's record for the edge, versions in order.
    let versions: Vec<(i64,)> =
        sqlx::query_as("SELECT version FROM edge_outbox WHERE key = $1 ORDER BY seq")
            .bind(format!("video:{id}"))
            .fetch_all(&app.state.db)
            .await
            .unwrap();
    assert_eq!(
        versions.into_iter().map(|v| v.0).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
}

/// A creator demoted to user keeps their videos but no longer edits or deletes them at the
/// origin either, with a fresh token of the new role.
#[tokio::test]
async fn a_demoted_creator_no_longer_changes_their_videos() {
    let app = TestApp::spawn().await;
    let (creator_id, creator) = app.user("c@example.com", Role::Creator).await;
    let admin = app.user("a@example.com", Role::Admin).await.1;
    let id = app.new_video(&creator, "Clip").await;
    let r = app
        .post(
            &format!("/v1/admin/users/{creator_id}/role"),
            Some(&admin),
            json!({"role": "user"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.login("c@example.com", crate::helpers::PW).await;
    let demoted = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = patch(&app, &id, &demoted, json!({"title": "still mine?"})).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/videos/{id}"),
            &demoted,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .get_as(&format!("/v1/videos/{id}/transcode"), &demoted)
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let rec = origin::videos::record(&app.state.db, &shared_wasm::VideoId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.title, "Clip", "untouched");
}

#[tokio::test]
async fn bad_fields_are_named() {
    let app = TestApp::spawn().await;
    let creator = app.user("c@example.com", Role::Creator).await.1;
    for (body, field) in [
        (
            json!({"title": "  ", "visibility": "public"}),
            Some("title"),
        ),
        (
            json!({"title": "x".repeat(201), "visibility": "public"}),
            Some("title"),
        ),
        (
            json!({"title": "ok", "description": "d".repeat(5001), "visibility": "public"}),
            Some("description"),
        ),
        (json!({"title": "ok", "visibility": "everyone"}), None),
        (
            json!({"title": "ok", "visibility": "public", "owner": "me"}),
            None,
        ),
    ] {
        let r = app.post("/v1/videos", Some(&creator), body.clone()).await;
        let status = r.status();
        let b: Value = r.json().await.unwrap();
        match field {
            Some(f) => {
                assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
                assert_eq!(
                    (b["error"].as_str(), b["field"].as_str()),
                    (Some("invalid_field"), Some(f))
                );
            }
            None => {
                assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
                assert_eq!(b["error"], "invalid_body");
            }
        }
    }
    let r = app
        .post(
            "/v1/videos",
            Some(&creator),
            json!({"title": "ok", "visibility": "public"}),
        )
        .await;
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = patch(
        &app,
        &id,
        &creator,
        json!({"countries": {"mode": "allow", "list": []}}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "countries");
    assert_eq!(
        patch(&app, "no-such-video", &creator, json!({"title": "x"}))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn feeds_page_without_skips_and_every_write_bumps_their_version() {
    let app = TestApp::spawn().await;
    let creator = app.user("c@example.com", Role::Creator).await.1;
    let me: Value = app.get_as("/v1/me", &creator).await.json().await.unwrap();
    let owner = me["id"].as_str().unwrap().to_owned();
    for i in 0..5 {
        app.public_video(&format!("f{i}"), Some(&owner)).await;
    }
    // Pages of two: every video exactly once, newest first.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor
            .as_ref()
            .map(|c| format!("&cursor={c}"))
            .unwrap_or_default();
        let page = app.get_json(&format!("/v1/feeds/home?limit=2{q}")).await;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    // Newest first; created in one second, the ids break the tie (descending).
    assert_eq!(seen, ["f4", "f3", "f2", "f1", "f0"]);
    let r = app
        .client
        .get(format!("{}/v1/feeds/home?cursor=garbage", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // A takedown removes it from both feeds, and bumps both versions.
    let admin = app.user("a@example.com", Role::Admin).await.1;
    patch(&app, "f0", &admin, json!({"taken_down": true})).await;
    let channels = app.get_json(&format!("/v1/users/{owner}/channels")).await;
    let channel = channels["channels"][0]["id"].as_str().unwrap().to_owned();
    let feed = app
        .get_json(&format!("/v1/feeds/channel/{channel}?limit=50"))
        .await;
    assert_eq!(feed["items"].as_array().unwrap().len(), 4);
    let versions: Vec<(String, i64)> =
        sqlx::query_as("SELECT feed, version FROM feed_versions ORDER BY feed")
            .fetch_all(&app.state.db)
            .await
            .unwrap();
    assert_eq!(
        versions,
        [(format!("channel:{channel}"), 6), ("home".to_owned(), 6)]
    );
}

#[tokio::test]
async fn category_feeds_follow_edits_and_trending_ranks_by_recent_likes() {
    let app = TestApp::spawn().await;
    let creator = app.user("c@example.com", Role::Creator).await.1;
    for id in ["a", "b", "c"] {
        app.public_video(id, None).await;
    }
    let r = patch(
        &app,
        "a",
        &creator,
        json!({"category": "music", "tags": ["live", "live", "jazz"]}),
    )
    .await;
    // Not the owner (ownerless video): not found for a creator.
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let admin = app.user("adm@example.com", Role::Admin).await.1;
    let r = patch(
        &app,
        "a",
        &admin,
        json!({"category": "music", "tags": ["live", "live", "jazz"]}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = patch(&app, "b", &admin, json!({"category": "Music!"})).await;
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "category");
    let music = app.get_json("/v1/feeds/category/music").await;
    assert_eq!(music["items"].as_array().unwrap().len(), 1);
    let (tags,): (String,) = sqlx::query_as("SELECT tags FROM videos WHERE id = 'a'")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(tags, "live,jazz");
    // Leaving the category empties its feed and bumps its version.
    patch(&app, "a", &admin, json!({"category": null})).await;
    let music = app.get_json("/v1/feeds/category/music").await;
    assert_eq!(music["items"], json!([]));
    let (v,): (i64,) =
        sqlx::query_as("SELECT version FROM feed_versions WHERE feed = 'category:music'")
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(v, 2);

    // Two likes for c, one for b: c, b, a.
    let u1 = app.user("u1@example.com", Role::User).await.1;
    let u2 = app.user("u2@example.com", Role::User).await.1;
    for (video, who) in [("c", &u1), ("c", &u2), ("b", &u1)] {
        let r = app
            .client
            .put(format!("{}/v1/videos/{video}/reaction", app.url))
            .bearer_auth(who)
            .json(&json!({"value": "like"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let top = app.get_json("/v1/feeds/trending?limit=3").await;
    let order: Vec<&str> = top["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["c", "b", "a"]);
}

#[tokio::test]
async fn owners_delete_videos_and_the_edge_gets_a_tombstone() {
    let app = TestApp::spawn().await;
    let (creator_id, creator) = app.user("c@example.com", Role::Creator).await;
    let other = app.user("o@example.com", Role::Creator).await.1;
    // Ready, so that it takes comments.
    let id = app
        .public_video("gone-soon", Some(&creator_id))
        .await
        .id
        .to_string();
    let r = app
        .post(
            &format!("/v1/videos/{id}/comments"),
            Some(&other),
            json!({"body": "hi"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let del = |t: &str| {
        app.client
            .delete(format!("{}/v1/videos/{id}", app.url))
            .bearer_auth(t.to_owned())
            .send()
    };
    assert_eq!(del(&other).await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(
        del(&creator).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(del(&creator).await.unwrap().status(), StatusCode::NOT_FOUND);

    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM comments WHERE video_id = $1")
        .bind(&id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(n, 0);
    let (value, version): (Vec<u8>, i64) = sqlx::query_as(
        "SELECT value, version FROM edge_outbox WHERE key = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(format!("video:{id}"))
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    let tomb = shared_wasm::record::VideoRecord::from_cbor(&value).unwrap();
    assert!(tomb.taken_down && tomb.visibility == shared_wasm::record::Visibility::Private);
    assert_eq!(version, 2);
    assert_eq!(
        app.edge_get(&format!("/internal/videos/{id}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}
