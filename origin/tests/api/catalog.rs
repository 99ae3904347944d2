//! What viewers read: a video's details under its rules, search (the database's full-text
//! engine, on both databases), categories and public profiles.

use reqwest::StatusCode;
use serde_json::{json, Value};
use shared_wasm::jwt::Role;

use crate::helpers::TestApp;

/// A video of `creator`'s made through the API with `body`'s fields, then marked ready (as a
/// finished transcode would); its id.
async fn ready_video(app: &TestApp, creator: &str, body: Value) -> String {
    let r = app.post("/v1/videos", Some(creator), body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sqlx::query("UPDATE videos SET state = 'ready' WHERE id = $1")
        .bind(&id)
        .execute(&app.state.db)
        .await
        .unwrap();
    id
}

async fn status_of(app: &TestApp, path: &str, bearer: Option<&str>) -> StatusCode {
    match bearer {
        Some(t) => app.get_as(path, t).await.status(),
        None => app
            .client
            .get(format!("{}{path}", app.url))
            .send()
            .await
            .unwrap()
            .status(),
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_videos_details_follow_its_rules() {
    let app = TestApp::spawn().await;
    let (creator_id, creator) = app.user("creator@example.com", Role::Creator).await;
    let (_, other) = app.user("other@example.com", Role::Creator).await;
    let (_, viewer) = app.user("viewer@example.com", Role::User).await;
    let (_, admin) = app.user("admin@example.com", Role::Admin).await;
    let r = app
        .send(
            reqwest::Method::PATCH,
            "/v1/me",
            &creator,
            Some(json!({"display_name": "Ada"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    let id = ready_video(
        &app,
        &creator,
        json!({"title": "Lighthouses", "description": "Keepers and lamps", "visibility": "public",
               "category": "travel", "tags": ["sea", "history"]}),
    )
    .await;
    let path = format!("/v1/videos/{id}");
    // Counts: two comments (one deleted), a like, a subscriber.
    for body in ["first", "second"] {
        let r = app
            .post(
                &format!("{path}/comments"),
                Some(&viewer),
                json!({"body": body}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let page = app.get_json(&format!("{path}/comments")).await;
    let gone = page["items"][0]["id"].as_str().unwrap();
    let r = app
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/comments/{gone}"),
            &viewer,
            None,
        )
        .await;
    assert!(r.status().is_success());
    let r = app
        .send(
            reqwest::Method::PUT,
            &format!("{path}/reaction"),
            &viewer,
            Some(json!({"value": "like"})),
        )
        .await;
    assert!(r.status().is_success());
    let details = app.get_json(&path).await;
    let channel = details["channel_id"].as_str().unwrap().to_owned();
    let r = app
        .send(
            reqwest::Method::PUT,
            &format!("/v1/channels/{channel}/subscription"),
            &viewer,
            None,
        )
        .await;
    assert!(r.status().is_success());

    let d = app.get_json(&path).await;
    assert_eq!(d["title"], "Lighthouses");
    assert_eq!(d["description"], "Keepers and lamps");
    assert_eq!(d["tags"], json!(["sea", "history"]));
    assert_eq!(d["category"], "travel");
    assert_eq!(d["owner_id"], creator_id.as_str());
    assert_eq!(d["owner_name"], "Ada");
    assert_eq!(d["channel_name"], "Ada");
    assert_eq!(
        (
            &d["likes"],
            &d["dislikes"],
            &d["comments"],
            &d["subscribers"]
        ),
        (&json!(1), &json!(0), &json!(1), &json!(1))
    );
    assert_eq!(d["poster_url"], format!("/posters/{id}.jpg"));
    assert_eq!(d["state"], "ready");
    // Anonymous: nobody's state; a viewer who asks: their own, and only theirs.
    assert!(d.get("viewer").is_none(), "{d}");
    let mine = app.get_json_as(&path, &viewer).await;
    assert_eq!(
        mine["viewer"],
        json!({"reaction": "like", "subscribed": true})
    );
    let theirs = app.get_json_as(&path, &other).await;
    assert_eq!(
        theirs["viewer"],
        json!({"reaction": "none", "subscribed": false})
    );
    let r = app
        .send(
            reqwest::Method::PUT,
            &format!("{path}/reaction"),
            &viewer,
            Some(json!({"value": "dislike"})),
        )
        .await;
    assert!(r.status().is_success());
    let mine = app.get_json_as(&path, &viewer).await;
    assert_eq!(mine["viewer"]["reaction"], "dislike");
    let r = app
        .send(
            reqwest::Method::PUT,
            &format!("{path}/reaction"),
            &viewer,
            Some(json!({"value": "like"})),
        )
        .await;
    assert!(r.status().is_success());

    // Members: anyone reads about it (its page invites them to join).
    let members = ready_video(
        &app,
        &creator,
        json!({"title": "Members", "visibility": "members"}),
    )
    .await;
    assert_eq!(
        status_of(&app, &format!("/v1/videos/{members}"), None).await,
        StatusCode::OK
    );

    // Private, unfinished: not found, except by the owner and admins.
    let private = ready_video(
        &app,
        &creator,
        json!({"title": "Private", "visibility": "private"}),
    )
    .await;
    let unfinished = app.new_video(&creator, "Unfinished").await;
    for video in [&private, &unfinished] {
        let path = format!("/v1/videos/{video}");
        for (who, expected) in [
            (None, StatusCode::NOT_FOUND),
            (Some(viewer.as_str()), StatusCode::NOT_FOUND),
            (Some(other.as_str()), StatusCode::NOT_FOUND),
            (Some(creator.as_str()), StatusCode::OK),
            (Some(admin.as_str()), StatusCode::OK),
        ] {
            assert_eq!(
                status_of(&app, &path, who).await,
                expected,
                "{path} {who:?}"
            );
        }
    }
    let d = app
        .get_json_as(&format!("/v1/videos/{unfinished}"), &creator)
        .await;
    assert_eq!(
        (&d["state"], &d["poster_url"]),
        (&json!("uploading"), &Value::Null)
    );

    // Taken down: withheld with the reason, except from the owner and admins.
    sqlx::query("UPDATE videos SET taken_down = 1 WHERE id = $1")
        .bind(&id)
        .execute(&app.state.db)
        .await
        .unwrap();
    let r = app
        .client
        .get(format!("{}{path}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "taken_down");
    assert_eq!(status_of(&app, &path, Some(&creator)).await, StatusCode::OK);
    assert_eq!(
        status_of(&app, "/v1/videos/no-such-video", None).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn search_ranks_public_videos_by_relevance_then_recency() {
    let app = TestApp::spawn().await;
    let (_, creator) = app.user("creator@example.com", Role::Creator).await;
    let in_tags = ready_video(
        &app,
        &creator,
        json!({"title": "Coast walk", "visibility": "public", "tags": ["lighthouse"]}),
    )
    .await;
    let in_description = ready_video(
        &app,
        &creator,
        json!({"title": "Harbour", "description": "we pass a lighthouse", "visibility": "public"}),
    )
    .await;
    let in_title = ready_video(
        &app,
        &creator,
        json!({"title": "The lighthouse keeper", "visibility": "public"}),
    )
    .await;
    // Never found: not public, not ready, taken down.
    for visibility in ["private", "members"] {
        ready_video(
            &app,
            &creator,
            json!({"title": "Lighthouse hidden", "visibility": visibility}),
        )
        .await;
    }
    app.new_video(&creator, "Lighthouse unfinished").await;
    let down = ready_video(
        &app,
        &creator,
        json!({"title": "Lighthouse down", "visibility": "public"}),
    )
    .await;
    sqlx::query("UPDATE videos SET taken_down = 1 WHERE id = $1")
        .bind(&down)
        .execute(&app.state.db)
        .await
        .unwrap();

    let page = app.get_json("/v1/search?q=lighthouse").await;
    assert_eq!(ids(&page), [in_title.as_str(), &in_tags, &in_description]);
    // A prefix, any case, and every word must match.
    let page = app.get_json("/v1/search?q=LIGHTH%20keep").await;
    assert_eq!(ids(&page), [in_title.as_str()]);
    let page = app.get_json("/v1/search?q=lighthouse%20nowhere").await;
    assert!(ids(&page).is_empty());

    // Edits and deletes reach the index.
    let r = app
        .send(
            reqwest::Method::PATCH,
            &format!("/v1/videos/{in_description}"),
            &creator,
            Some(json!({"description": "boats only"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/videos/{in_tags}"),
            &creator,
            None,
        )
        .await;
    assert!(r.status().is_success());
    let page = app.get_json("/v1/search?q=lighthouse").await;
    assert_eq!(ids(&page), [in_title.as_str()]);
    let page = app.get_json("/v1/search?q=boats").await;
    assert_eq!(ids(&page), [in_description.as_str()]);

    // Equal relevance: newest first, in pages that neither skip nor repeat.
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(
            ready_video(
                &app,
                &creator,
                json!({"title": format!("Sunset {i}"), "visibility": "public"}),
            )
            .await,
        );
        // Distinct creation seconds, so the order is the test's.
        sqlx::query("UPDATE videos SET created_at = $1 WHERE id = $2")
            .bind(1_000 + i as i64)
            .bind(made.last().unwrap())
            .execute(&app.state.db)
            .await
            .unwrap();
    }
    made.reverse();
    let (mut seen, mut cursor) = (Vec::new(), String::new());
    loop {
        let page = app
            .get_json(&format!("/v1/search?q=sunset&limit=2{cursor}"))
            .await;
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, made);
}

#[tokio::test]
async fn hostile_or_empty_queries_get_a_clear_error_or_plain_words() {
    let app = TestApp::spawn().await;
    let (_, creator) = app.user("creator@example.com", Role::Creator).await;
    let id = ready_video(
        &app,
        &creator,
        json!({"title": "Near or far", "visibility": "public"}),
    )
    .await;
    // The engines' own syntax arrives as plain words.
    for q in [
        "%22near%22%20OR%20far*",
        "NEAR(near%20far)",
        "title%3Anear",
        "near%20-far",
        "far%27%3B%20DROP%20TABLE%20videos%3B--",
        "%5E(near)%20%7B%7D%20%3A*%20%26%20%7C%20!",
    ] {
        let r = app
            .client
            .get(format!("{}/v1/search?q={q}", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{q}");
        let page: Value = r.json().await.unwrap();
        assert!(ids(&page).iter().all(|i| *i == id), "{q}: {page}");
    }
    for (q, code) in [
        ("", "invalid_query"),
        ("%20%2A%2A%20", "invalid_query"),
        (&"x".repeat(201), "invalid_query"),
    ] {
        let r = app
            .client
            .get(format!("{}/v1/search?q={q}", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], code);
    }
    let r = app
        .client
        .get(format!("{}/v1/search", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = app
        .client
        .get(format!("{}/v1/search?q=near&cursor=forged", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_cursor");
}

#[tokio::test]
async fn categories_and_profiles_show_only_what_is_public() {
    let app = TestApp::spawn().await;
    let (creator_id, creator) = app.user("creator@example.com", Role::Creator).await;
    let (viewer_id, _) = app.user("viewer@example.com", Role::User).await;
    for (category, visibility) in [
        ("music", "public"),
        ("music", "public"),
        ("travel", "public"),
        ("secret", "private"),
    ] {
        ready_video(
            &app,
            &creator,
            json!({"title": "A video", "visibility": visibility, "category": category}),
        )
        .await;
    }
    let list = app.get_json("/v1/categories").await;
    assert_eq!(
        list["categories"],
        json!([{"slug": "music", "videos": 2}, {"slug": "travel", "videos": 1}])
    );

    let profile = app.get_json(&format!("/v1/users/{creator_id}")).await;
    assert_eq!(profile["public_videos"], 3);
    assert_eq!(profile["channels"].as_array().unwrap().len(), 1);
    assert!(profile.get("email").is_none() && profile.get("role").is_none());
    for user in [viewer_id.as_str(), "no-such-user"] {
        assert_eq!(
            status_of(&app, &format!("/v1/users/{user}"), None).await,
            StatusCode::NOT_FOUND,
            "{user}"
        );
    }
}
