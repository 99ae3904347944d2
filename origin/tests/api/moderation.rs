//! Moderation: reports (one open per reporter and target, bounded per hour, grouped in the
//! queue with their context), a moderator's actions (each closing its target's reports and
//! written to the append-only audit log), suspension and reinstatement, and who may do what.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared_wasm::jwt::Role;

use crate::helpers::{json_of, TestApp, PW};

async fn report(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    json_of(app.post("/v1/reports", Some(token), body).await).await
}

async fn act(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    json_of(app.post("/v1/moderation/actions", Some(token), body).await).await
}

#[tokio::test]
async fn reports_are_bounded_and_grouped_for_moderators() {
    let app = TestApp::spawn().await;
    let (creator_id, _) = app.user("creator@example.com", Role::Creator).await;
    let (_, one) = app.user("one@example.com", Role::User).await;
    let (_, two) = app.user("two@example.com", Role::User).await;
    let (_, moderator) = app.user("mod@example.com", Role::Moderator).await;
    app.public_video("v-bad", Some(&creator_id)).await;
    let (s, comment) = json_of(
        app.post(
            "/v1/videos/v-bad/comments",
            Some(&one),
            json!({"body": "first!"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{comment}");
    let comment = comment["id"].as_str().unwrap().to_owned();

    let (s, filed) = report(
        &app,
        &one,
        json!({"video": "v-bad", "reason": "spam", "note": "links to a shop"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{filed}");
    assert_eq!(filed["target"], json!({"video": "v-bad"}));
    let (s, e) = report(&app, &one, json!({"video": "v-bad", "reason": "abuse"})).await;
    assert_eq!(
        (s, &e["error"]),
        (StatusCode::CONFLICT, &json!("already_reported"))
    );
    for (body, status, code) in [
        (
            json!({"reason": "spam"}),
            StatusCode::BAD_REQUEST,
            "invalid_target",
        ),
        (
            json!({"video": "v-bad", "comment": comment, "reason": "spam"}),
            StatusCode::BAD_REQUEST,
            "invalid_target",
        ),
        (
            json!({"video": "v-none", "reason": "spam"}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            json!({"video": "v-bad", "reason": "meh"}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json!({"video": "v-bad", "reason": "other", "note": "x".repeat(1001)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
    ] {
        let (s, e) = report(&app, &two, body.clone()).await;
        assert_eq!(
            (s, e["error"].as_str()),
            (status, Some(code)),
            "{body}: {e}"
        );
    }
    let (s, _) = report(
        &app,
        &two,
        json!({"video": "v-bad", "reason": "abuse", "note": "rude"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = report(&app, &two, json!({"comment": comment, "reason": "abuse"})).await;
    assert_eq!(s, StatusCode::CREATED);

    // The queue: most-reported first, with its reasons, notes and context; moderators only.
    let (s, _) = json_of(app.get_as("/v1/moderation/queue", &one).await).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, q) = json_of(app.get_as("/v1/moderation/queue", &moderator).await).await;
    assert_eq!(s, StatusCode::OK);
    let items = q["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{q}");
    assert_eq!(items[0]["target"], json!({"video": "v-bad"}));
    assert_eq!(items[0]["reports"], 2);
    assert_eq!(items[0]["reasons"], json!({"abuse": 1, "spam": 1}));
    let notes: Vec<&str> = items[0]["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["note"].as_str().unwrap())
        .collect();
    assert_eq!(notes.len(), 2);
    assert!(
        notes.contains(&"links to a shop") && notes.contains(&"rude"),
        "{notes:?}"
    );
    assert_eq!(items[0]["context"]["owner"], creator_id.as_str());
    assert_eq!(items[1]["target"], json!({"comment": comment}));
    assert_eq!(items[1]["context"]["body"], "first!");

    // A dismissal closes the comment's report; the reporter may report it again.
    let (s, acted) = act(
        &app,
        &moderator,
        json!({"action": "dismiss", "comment": comment, "reason": "banter"}),
    )
    .await;
    assert_eq!(
        (s, &acted["reports"]),
        (StatusCode::OK, &json!(1)),
        "{acted}"
    );
    let (_, q) = json_of(app.get_as("/v1/moderation/queue", &moderator).await).await;
    assert_eq!(q["items"].as_array().unwrap().len(), 1);
    let (s, _) = report(&app, &two, json!({"comment": comment, "reason": "abuse"})).await;
    assert_eq!(s, StatusCode::CREATED);

    // At most 20 reports an hour per reporter.
    let (_, busy) = app.user("busy@example.com", Role::User).await;
    for n in 0..20 {
        app.public_video(&format!("v-{n}"), Some(&creator_id)).await;
        let (s, _) = report(
            &app,
            &busy,
            json!({"video": format!("v-{n}"), "reason": "spam"}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let r = app
        .post(
            "/v1/reports",
            Some(&busy),
            json!({"video": "v-bad", "reason": "spam"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&wait), "{wait}");
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "too_many_reports"
    );
}

#[tokio::test]
async fn actions_change_their_target_close_its_reports_and_are_logged() {
    let app = TestApp::spawn().await;
    let (creator_id, _) = app.user("creator@example.com", Role::Creator).await;
    let (_, viewer) = app.user("viewer@example.com", Role::User).await;
    let (mod_id, moderator) = app.user("mod@example.com", Role::Moderator).await;
    let (other_mod_id, other_mod) = app.user("mod2@example.com", Role::Moderator).await;
    let (admin_id, admin) = app.user("admin@example.com", Role::Admin).await;
    for v in ["v-a", "v-b", "v-c"] {
        app.public_video(v, Some(&creator_id)).await;
    }
    let (s, _) = report(&app, &viewer, json!({"video": "v-a", "reason": "violence"})).await;
    assert_eq!(s, StatusCode::CREATED);
    // What a reporter cannot see cannot be reported (nor its existence learned).
    app.video_with(
        "v-private",
        Some(&creator_id),
        shared_wasm::record::Visibility::Private,
        shared_wasm::record::VideoState::Ready,
        false,
    )
    .await;
    let (s, _) = report(
        &app,
        &viewer,
        json!({"video": "v-private", "reason": "spam"}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Takedown with a reason the viewer is told; restore.
    let (s, acted) = act(
        &app,
        &moderator,
        json!({"action": "take_down", "video": "v-a", "reason": "graphic violence"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{acted}");
    assert_eq!(
        (&acted["reports"], &acted["videos"]),
        (&json!(1), &json!(["v-a"]))
    );
    let (s, e) = json_of(app.edge_get("/v1/videos/v-a").await).await;
    assert_eq!(
        (s, &e["error"], &e["message"]),
        (
            StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS,
            &json!("taken_down"),
            &json!("graphic violence")
        )
    );
    let (s, _) = act(
        &app,
        &moderator,
        json!({"action": "restore", "video": "v-a", "reason": "appeal"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = json_of(app.edge_get("/v1/videos/v-a").await).await;
    assert_eq!(s, StatusCode::OK);
    // v-c stays down across the suspension and reinstatement below: it went down on its own.
    let (s, _) = act(
        &app,
        &moderator,
        json!({"action": "take_down", "video": "v-c", "reason": "copyright"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);

    // Ranks: not on one's own content, not on a higher role's, not undoing a higher role's
    // takedown or suspension.
    app.public_video("v-mod", Some(&mod_id)).await;
    app.public_video("v-admin", Some(&admin_id)).await;
    let down = |video: &str| json!({"action": "take_down", "video": video, "reason": "x"});
    for (token, body, status, code) in [
        (
            &moderator,
            down("v-mod"),
            StatusCode::FORBIDDEN,
            "own_content",
        ),
        (
            &moderator,
            down("v-admin"),
            StatusCode::FORBIDDEN,
            "outranked",
        ),
        (&admin, down("v-mod"), StatusCode::OK, ""),
        (
            &moderator,
            json!({"action": "restore", "video": "v-mod", "reason": "x"}),
            StatusCode::FORBIDDEN,
            "own_content",
        ),
        (
            &other_mod,
            json!({"action": "restore", "video": "v-mod", "reason": "x"}),
            StatusCode::FORBIDDEN,
            "outranked",
        ),
    ] {
        let (s, e) = act(&app, token, body.clone()).await;
        assert_eq!(s, status, "{body}: {e}");
        if !code.is_empty() {
            assert_eq!(e["error"], code, "{body}");
        }
    }

    // Refusals.
    for (body, status, code) in [
        (
            json!({"action": "take_down", "user": creator_id, "reason": "x"}),
            StatusCode::BAD_REQUEST,
            "invalid_target",
        ),
        (
            json!({"action": "dismiss", "video": "v-b", "reason": "x"}),
            StatusCode::CONFLICT,
            "no_open_reports",
        ),
        (
            json!({"action": "take_down", "video": "v-none", "reason": "x"}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            json!({"action": "take_down", "video": "v-b", "reason": " "}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            json!({"action": "suspend", "user": admin_id, "reason": "x"}),
            StatusCode::FORBIDDEN,
            "outranked",
        ),
        (
            json!({"action": "suspend", "user": other_mod_id, "reason": "x"}),
            StatusCode::FORBIDDEN,
            "outranked",
        ),
    ] {
        let (s, e) = act(&app, &moderator, body.clone()).await;
        assert_eq!(
            (s, e["error"].as_str()),
            (status, Some(code)),
            "{body}: {e}"
        );
    }
    let (s, _) = act(
        &app,
        &viewer,
        json!({"action": "take_down", "video": "v-b", "reason": "x"}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "viewers do not moderate");
    let (s, _) = json_of(
        app.post(
            &format!("/v1/admin/users/{creator_id}/role"),
            Some(&moderator),
            json!({"role": "admin"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "moderators do not change roles");

    // Suspension: no sign-in, sessions ended, videos down with it; reinstatement undoes only
    // what the suspension did.
    let login = app.login("creator@example.com", PW).await;
    let refresh = login.json::<Value>().await.unwrap()["refresh_token"].clone();
    let (s, acted) = act(
        &app,
        &moderator,
        json!({"action": "suspend", "user": creator_id, "reason": "repeated spam"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{acted}");
    assert_eq!(acted["videos"], json!(["v-a", "v-b", "v-private"]));
    let (s, e) = json_of(app.login("creator@example.com", PW).await).await;
    assert_eq!(
        (s, &e["error"]),
        (StatusCode::FORBIDDEN, &json!("account_suspended"))
    );
    let (s, _) = json_of(
        app.post("/v1/auth/refresh", None, json!({"refresh_token": refresh}))
            .await,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, e) = json_of(app.edge_get("/v1/videos/v-b").await).await;
    assert_eq!(e["message"], origin::moderation::actions::SUSPENDED);
    let (s, e) = act(
        &app,
        &moderator,
        json!({"action": "restore", "video": "v-b", "reason": "x"}),
    )
    .await;
    assert_eq!(
        (s, &e["error"]),
        (StatusCode::CONFLICT, &json!("suspended_owner"))
    );
    let (s, e) = act(
        &app,
        &moderator,
        json!({"action": "suspend", "user": creator_id, "reason": "again"}),
    )
    .await;
    assert_eq!(
        (s, &e["error"]),
        (StatusCode::CONFLICT, &json!("already_so"))
    );
    let (s, acted) = act(
        &app,
        &moderator,
        json!({"action": "reinstate", "user": creator_id, "reason": "appeal granted"}),
    )
    .await;
    assert_eq!(
        (s, &acted["videos"]),
        (StatusCode::OK, &json!(["v-a", "v-b", "v-private"]))
    );
    let (s, _) = json_of(app.login("creator@example.com", PW).await).await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = json_of(app.edge_get("/v1/videos/v-c").await).await;
    assert_eq!(
        (s, &e["message"]),
        (
            StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS,
            &json!("copyright")
        )
    );

    // The audit log: admins only, newest first, every action with who and why.
    let (s, _) = json_of(app.get_as("/v1/moderation/log", &moderator).await).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, log) = json_of(app.get_as("/v1/moderation/log", &admin).await).await;
    assert_eq!(s, StatusCode::OK);
    let lines: Vec<(&str, &str)> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["action"].as_str().unwrap(), l["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        lines,
        [
            ("reinstate", "appeal granted"),
            ("suspend", "repeated spam"),
            ("take_down", "x"),
            ("take_down", "copyright"),
            ("restore", "appeal"),
            ("take_down", "graphic violence"),
        ]
    );
    let actors: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["actor"].as_str().unwrap())
        .collect();
    let m = mod_id.as_str();
    assert_eq!(actors, [m, m, admin_id.as_str(), m, m, m]);
    assert_eq!(log["next_before"], Value::Null);
    let before = log["items"][2]["seq"].as_i64().unwrap();
    let (_, page) = json_of(
        app.get_as(&format!("/v1/moderation/log?before={before}"), &admin)
            .await,
    )
    .await;
    assert_eq!(page["items"][0]["reason"], "copyright");

    // An admin's takedown through the video's edit is logged too.
    let r = app
        .send(
            Method::PATCH,
            "/v1/videos/v-b",
            &admin,
            Some(json!({"taken_down": true})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (_, e) = json_of(app.edge_get("/v1/videos/v-b").await).await;
    assert_eq!(
        e["message"], "this video has been taken down",
        "no reason given there"
    );
    let (_, log) = json_of(app.get_as("/v1/moderation/log", &admin).await).await;
    assert_eq!(
        (
            &log["items"][0]["action"],
            &log["items"][0]["target"],
            &log["items"][0]["actor"]
        ),
        (
            &json!("take_down"),
            &json!({"video": "v-b"}),
            &json!(admin_id)
        )
    );

    // Append-only, in the database itself.
    for stmt in [
        "UPDATE moderation_log SET reason = 'edited'",
        "DELETE FROM moderation_log",
    ] {
        let refused = sqlx::query(stmt).execute(&app.state.db).await;
        assert!(refused.is_err(), "{stmt} went through");
    }

    // A suspension by an admin is the admin's to lift.
    let (viewer_id, _) = app.user("viewer@example.com", Role::User).await;
    let (s, _) = act(
        &app,
        &admin,
        json!({"action": "suspend", "user": viewer_id, "reason": "x"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = act(
        &app,
        &moderator,
        json!({"action": "reinstate", "user": viewer_id, "reason": "x"}),
    )
    .await;
    assert_eq!(
        (s, &e["error"]),
        (StatusCode::FORBIDDEN, &json!("outranked"))
    );
}
