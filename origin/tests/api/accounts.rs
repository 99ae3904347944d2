//! Accounts: signup, profile and password changes, deletion.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{TestApp, PW};
use shared_wasm::jwt::Role;

async fn signup(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.post(
        "/v1/auth/signup",
        None,
        json!({"email": email, "password": password, "display_name": "Ada"}),
    )
    .await
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    token: &str,
    body: Value,
) -> reqwest::Response {
    app.client
        .request(method, format!("{}/v1/me", app.url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn signup_validates_and_refuses_a_taken_address() {
    let app = TestApp::spawn().await;
    for (email, password, field) in [
        ("not-an-address", "long enough pw", "email"),
        ("a b@example.com", "long enough pw", "email"),
        ("ada@example.com", "short", "password"),
    ] {
        let r = signup(&app, email, password).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{email}");
        assert_eq!(r.json::<Value>().await.unwrap()["field"], field);
    }
    let r = signup(&app, "Ada@Example.com", "long enough pw").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let b: Value = r.json().await.unwrap();
    let token = b["access_token"].as_str().unwrap();
    let me: Value = app.get_as("/v1/me", token).await.json().await.unwrap();
    assert_eq!(
        (me["email"].as_str(), me["role"].as_str()),
        (Some("ada@example.com"), Some("user"))
    );
    assert_eq!(me["home_region"], "test");

    let r = signup(&app, "ada@example.com", "another long pw").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "email");
    // Logins fold case the way signup does.
    assert_eq!(
        app.login("ADA@example.com", "long enough pw")
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_password_change_needs_the_old_one_and_ends_every_session() {
    let app = TestApp::spawn().await;
    let b: Value = signup(&app, "ada@example.com", "long enough pw")
        .await
        .json()
        .await
        .unwrap();
    let token = b["access_token"].as_str().unwrap().to_owned();

    let r = send(
        &app,
        reqwest::Method::PATCH,
        &token,
        json!({"password": {"current": "wrong password", "new": "a new long pw"}}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "wrong_password");
    let r = send(
        &app,
        reqwest::Method::PATCH,
        &token,
        json!({"display_name": "Ada L."}),
    )
    .await;
    assert_eq!(r.json::<Value>().await.unwrap()["signed_out"], false);

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = send(
        &app,
        reqwest::Method::PATCH,
        &token,
        json!({"password": {"current": "long enough pw", "new": "a new long pw"}}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["signed_out"], true);
    assert_eq!(
        app.get_as("/v1/me", &token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("ada@example.com", "long enough pw")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("ada@example.com", "a new long pw").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn deleting_an_account_revokes_it_and_keeps_its_videos_ownerless() {
    let app = TestApp::spawn().await;
    let b: Value = signup(&app, "ada@example.com", "long enough pw")
        .await
        .json()
        .await
        .unwrap();
    let token = b["access_token"].as_str().unwrap().to_owned();
    let me: Value = app.get_as("/v1/me", &token).await.json().await.unwrap();
    let id = me["id"].as_str().unwrap().to_owned();
    sqlx::query("UPDATE users SET role = 'creator' WHERE id = $1")
        .bind(&id)
        .execute(&app.state.db)
        .await
        .unwrap();
    let video = app.public_video("mine", Some(&id)).await;
    origin::entitlements::set(
        &app.state.db,
        &id,
        "members",
        shared_wasm::record::EntitlementStatus::Active,
        4_000_000_000,
    )
    .await
    .unwrap();

    let r = send(
        &app,
        reqwest::Method::DELETE,
        &token,
        json!({"password": "wrong password"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = send(
        &app,
        reqwest::Method::DELETE,
        &token,
        json!({"password": "long enough pw"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    assert_eq!(
        app.get_as("/v1/me", &token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("ada@example.com", "long enough pw")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let owner = origin::videos::owner(&app.state.db, &video.id)
        .await
        .unwrap();
    assert_eq!(owner, Some(None), "the video stays, without an owner");
    // The edge is told: the user's epoch, and the entitlement ended (version 2).
    let queued: Vec<(String, i64)> =
        sqlx::query_as("SELECT key, version FROM edge_outbox WHERE key IN ($1, $2) ORDER BY seq")
            .bind(format!("user:{id}"))
            .bind(format!("ent:{id}"))
            .fetch_all(&app.state.db)
            .await
            .unwrap();
    assert_eq!(
        queued,
        [
            (format!("ent:{id}"), 1),
            (format!("user:{id}"), 2),
            (format!("ent:{id}"), 2)
        ]
    );
}

/// Behind the edge's per-address limits, the origin refuses an account whose password keeps
/// being wrong (10 in 15 minutes), even with the right one, whoever tries; other accounts are
/// untouched. The same holds for the current password of a password change.
#[tokio::test]
async fn an_account_whose_password_keeps_being_wrong_is_refused_for_a_while() {
    let app = TestApp::spawn().await;
    let (_, ada) = app.user("ada@example.com", Role::User).await;
    app.user("bob@example.com", Role::User).await;
    for _ in 0..origin::passwords::FAILURES {
        let r = app.login("ada@example.com", "wrong password").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = app.login("ada@example.com", PW).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // One more is allowed 90 s (15 minutes / 10) after the first failure.
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=90).contains(&retry), "{retry}");
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "too_many_attempts"
    );
    assert_eq!(
        app.login("bob@example.com", PW).await.status(),
        StatusCode::OK
    );

    // Ada's session (from before) changing her password: the current one checked, and limited.
    let change = |current: &str| json!({"password": {"current": current, "new": "a new password, long enough"}});
    for _ in 0..origin::passwords::FAILURES {
        let r = app
            .send(Method::PATCH, "/v1/me", &ada, Some(change("wrong")))
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    let r = app
        .send(Method::PATCH, "/v1/me", &ada, Some(change(PW)))
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// POST `body` to `path` as if from `addr` (the edge's header for the client's address).
async fn post_from(app: &TestApp, addr: &str, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.url))
        .header(origin::passwords::CLIENT_ADDR_HEADER, addr)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Credential stuffing: one address getting passwords wrong across many accounts is refused
/// after [`origin::passwords::ADDRESS_FAILURES`], for any account, even a right password; other
/// addresses are not. An IPv6 client counts by its /64 (one subscriber holds it whole).
#[tokio::test]
async fn an_address_that_keeps_getting_passwords_wrong_is_refused_for_a_while() {
    let app = TestApp::spawn().await;
    app.user("ada@example.com", Role::User).await;
    let login =
        |email: String, password: &'static str| json!({"email": email, "password": password});
    for (i, addr) in ["203.0.113.7", "2001:db8:1:2::1"].into_iter().enumerate() {
        for n in 0..origin::passwords::ADDRESS_FAILURES {
            let email = format!("nobody{i}-{n}@example.com");
            let r = post_from(&app, addr, "/v1/auth/login", login(email, "wrong")).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        }
        let same_net = if i == 0 { addr } else { "2001:db8:1:2:ffff::9" };
        let r = post_from(
            &app,
            same_net,
            "/v1/auth/login",
            login("ada@example.com".into(), PW),
        )
        .await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{same_net}");
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"],
            "too_many_attempts"
        );
    }
    let r = post_from(
        &app,
        "198.51.100.1",
        "/v1/auth/login",
        login("ada@example.com".into(), PW),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// One address may sign up [`origin::passwords::SIGNUPS`] times an hour; the next is refused
/// before any work, and another address still may.
#[tokio::test]
async fn an_address_that_keeps_signing_up_is_refused_for_a_while() {
    let app = TestApp::spawn().await;
    let signup = |n: u32| json!({"email": format!("new{n}@example.com"), "password": "a password, long enough"});
    for n in 0..origin::passwords::SIGNUPS {
        let r = post_from(&app, "203.0.113.8", "/v1/auth/signup", signup(n)).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = post_from(&app, "203.0.113.8", "/v1/auth/signup", signup(100)).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    let r = post_from(&app, "198.51.100.2", "/v1/auth/signup", signup(100)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
}
