//! Control characters (NUL above all, which PostgreSQL cannot store) are refused with 400
//! `invalid_text` in every field, cursor and query parameter, on either database, before any
//! query runs: a client's own bad input never becomes a 500.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared_wasm::jwt::Role;

use crate::helpers::TestApp;

async fn refused(r: reqwest::Response, what: &str) {
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_text")),
        "{what}: {body}"
    );
}

#[tokio::test]
async fn control_characters_are_refused_in_every_field_cursor_and_query() {
    let app = TestApp::spawn().await;
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;
    let id = app.new_video(&ada, "Clip").await;

    // Cursors and query parameters, raw or percent-encoded.
    for path in [
        "/v1/feeds/home?cursor=%00".to_owned(),
        "/v1/feeds/trending?cursor=abc%00def".to_owned(),
        format!("/v1/videos/{id}/comments?cursor=%01"),
        "/v1/feeds/category/mu%00sic".to_owned(),
        "/v1/channels/ch%1b".to_owned(),
    ] {
        refused(app.get_as(&path, &ada).await, &path).await;
    }
    // Bodies: an email, a password, a comment, a title, a tag.
    let r = app.login("ada\u{0}@example.com", "correct horse").await;
    refused(r, "login email").await;
    let r = app
        .post(
            "/v1/auth/signup",
            None,
            json!({"email": "new@example.com", "password": "pass\u{0}word-long-enough"}),
        )
        .await;
    refused(r, "signup password").await;
    let r = app
        .post(
            &format!("/v1/videos/{id}/comments"),
            Some(&ada),
            json!({"body": "hello\u{0}"}),
        )
        .await;
    refused(r, "comment").await;
    let path = format!("/v1/videos/{id}");
    for body in [
        json!({"title": "a\u{0}b"}),
        json!({"tags": ["ok", "b\u{8}d"]}),
    ] {
        let r = app
            .send(Method::PATCH, &path, &ada, Some(body.clone()))
            .await;
        refused(r, &body.to_string()).await;
    }
    // Lines and tabs are text, not control: a comment keeps them.
    let r = app
        .post(
            &format!("/v1/videos/{id}/comments"),
            Some(&ada),
            json!({"body": "two\nlines\tand a tab"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}
