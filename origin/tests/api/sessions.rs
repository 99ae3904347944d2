//! Sessions: refresh rotation and reuse detection, logout, logout everywhere, admin role
//! changes, each checked against the origin's own token check.

use origin::users;
use reqwest::StatusCode;
use serde_json::{json, Value};
use shared_wasm::jwt::Role;

use crate::helpers::TestApp;

const PW: &str = "correct horse";

async fn json_of(r: reqwest::Response) -> Value {
    r.json().await.unwrap()
}

/// The access and refresh tokens of a 200 answer (asserted).
async fn tokens(r: reqwest::Response) -> (String, String) {
    assert_eq!(r.status(), StatusCode::OK);
    let b = json_of(r).await;
    (
        b["access_token"].as_str().unwrap().to_owned(),
        b["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn login(app: &TestApp, email: &str) -> (String, String) {
    tokens(app.login(email, PW).await).await
}

async fn user(app: &TestApp, email: &str, role: Role) -> String {
    users::ensure_user(&app.state.db, email, PW, role, "test")
        .await
        .unwrap()
        .id
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.post("/v1/auth/refresh", None, json!({"refresh_token": token}))
        .await
}

/// A refresh that must succeed: its access and refresh tokens.
async fn refreshed(app: &TestApp, token: &str) -> (String, String) {
    tokens(refresh(app, token).await).await
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_token_revokes_the_session() {
    // No grace: the replaced token revokes at once (the grace is the next test's).
    let app = TestApp::spawn_tweaked(|s| s.auth.refresh_reuse_grace_secs = 0).await;
    user(&app, "a@example.com", Role::User).await;
    let (access, first) = login(&app, "a@example.com").await;
    assert_eq!(app.get_as("/v1/me", &access).await.status(), StatusCode::OK);

    let (access2, second) = refreshed(&app, &first).await;
    assert_ne!(second, first);
    assert_eq!(
        app.get_as("/v1/me", &access2).await.status(),
        StatusCode::OK
    );

    // The replaced token comes back: someone else holds the session. All of it dies.
    let r = refresh(&app, &first).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(r).await["error"], "refresh_token_reused");
    let r = refresh(&app, &second).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(r).await["error"], "invalid_refresh_token");
    for token in [&access, &access2] {
        let r = app.get_as("/v1/me", token).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(json_of(r).await["message"], "token revoked");
    }
}

/// A browser that leaves a page while its refresh is under way never gets the new token and
/// presents the replaced one from the next page: within the grace that is not theft.
#[tokio::test]
async fn a_replaced_token_is_exchanged_again_within_the_grace_and_revokes_after_it() {
    let app = TestApp::spawn_tweaked(|s| s.auth.refresh_reuse_grace_secs = 2).await;
    user(&app, "a@example.com", Role::User).await;
    let (_, first) = login(&app, "a@example.com").await;
    let (_, lost) = refreshed(&app, &first).await;

    // The answer carrying `lost` never arrived; the first token comes back at once.
    let (access, third) = refreshed(&app, &first).await;
    assert!(third != lost && third != first);
    // The lost one is gone (without ending the session), the new one carries on.
    let r = refresh(&app, &lost).await;
    assert_eq!(json_of(r).await["error"], "invalid_refresh_token");
    assert_eq!(app.get_as("/v1/me", &access).await.status(), StatusCode::OK);
    let (_, fourth) = refreshed(&app, &third).await;

    // Past the grace of that rotation, the replaced token is theft again: all of it dies.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    let r = refresh(&app, &third).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(r).await["error"], "refresh_token_reused");
    let r = refresh(&app, &fourth).await;
    assert_eq!(json_of(r).await["error"], "invalid_refresh_token");
    let r = app.get_as("/v1/me", &access).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn forged_refresh_tokens_are_refused() {
    let app = TestApp::spawn().await;
    user(&app, "a@example.com", Role::User).await;
    let (_, token) = login(&app, "a@example.com").await;
    let (id, _) = token.split_once('.').unwrap();
    for bad in [
        format!("{id}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        "nosuchsession.secret".into(),
        "no-dot".into(),
        format!("{id}.{}", "x".repeat(500)),
    ] {
        let r = refresh(&app, &bad).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{bad}");
        assert_eq!(json_of(r).await["error"], "invalid_refresh_token");
    }
    // The genuine one still works: failed guesses do not touch the session.
    assert_eq!(refresh(&app, &token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn logout_ends_one_session_and_everywhere_ends_all() {
    let app = TestApp::spawn().await;
    user(&app, "a@example.com", Role::User).await;
    let (a1, r1) = login(&app, "a@example.com").await;
    let (a2, r2) = login(&app, "a@example.com").await;

    let r = app.post("/v1/auth/logout", Some(&a1), json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        app.get_as("/v1/me", &a1).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(refresh(&app, &r1).await.status(), StatusCode::UNAUTHORIZED);
    // The other session is untouched by a plain logout.
    assert_eq!(app.get_as("/v1/me", &a2).await.status(), StatusCode::OK);

    let (a3, _) = login(&app, "a@example.com").await;
    let r = app
        .post("/v1/auth/logout", Some(&a3), json!({"everywhere": true}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        app.get_as("/v1/me", &a2).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(refresh(&app, &r2).await.status(), StatusCode::UNAUTHORIZED);

    // Without a token, logout is a 401; with a bad body, a 400.
    let r = app.post("/v1/auth/logout", None, json!({})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (a4, _) = login(&app, "a@example.com").await;
    let r = app
        .post("/v1/auth/logout", Some(&a4), json!({"everywhere": "yes"}))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_revocation_refuses_its_own_second_and_a_login_right_after_works() {
    let app = TestApp::spawn().await;
    user(&app, "a@example.com", Role::User).await;
    // Tokens are dated to the second. Start at the top of one so that the login and the
    // revocation share it; a slow run that crosses into the next second tries again.
    for _ in 0..5 {
        let ms = origin::clock::now_ms();
        tokio::time::sleep(std::time::Duration::from_millis(1000 - ms % 1000)).await;
        let second = origin::clock::now_ms() / 1000;
        let (early, _) = login(&app, "a@example.com").await;
        let (other, _) = login(&app, "a@example.com").await;
        let r = app
            .post("/v1/auth/logout", Some(&other), json!({"everywhere": true}))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        if origin::clock::now_ms() / 1000 != second {
            continue;
        }
        let r = app.get_as("/v1/me", &early).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(json_of(r).await["message"], "token revoked");
        // A login right after the revocation (its second, or the next) gets a working token.
        let (late, _) = login(&app, "a@example.com").await;
        assert_eq!(app.get_as("/v1/me", &late).await.status(), StatusCode::OK);
        return;
    }
    panic!("five tries never fitted a login and a revocation in one second");
}

#[tokio::test]
async fn only_admins_change_roles_and_a_change_retires_old_tokens() {
    let app = TestApp::spawn().await;
    let target = user(&app, "u@example.com", Role::User).await;
    user(&app, "admin@example.com", Role::Admin).await;
    let (user_token, _) = login(&app, "u@example.com").await;
    let (admin_token, _) = login(&app, "admin@example.com").await;
    let path = format!("/v1/admin/users/{target}/role");

    let r = app
        .post(&path, Some(&user_token), json!({"role": "admin"}))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(json_of(r).await["error"], "role_required");
    let r = app.get_as("/v1/creator/videos", &user_token).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let r = app
        .post(&path, Some(&admin_token), json!({"role": "superuser"}))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = app
        .post(
            "/v1/admin/users/nobody/role",
            Some(&admin_token),
            json!({"role": "creator"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let r = app
        .post(&path, Some(&admin_token), json!({"role": "creator"}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        app.get_as("/v1/me", &user_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let (creator_token, _) = login(&app, "u@example.com").await;
    let r = app.get_as("/v1/creator/videos", &creator_token).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json_of(r).await["items"], json!([]));
}
