//! The OpenAPI document stays true: it lists exactly the router's public routes, each documented
//! operation is served (not the router's 404 or a 405), and live answers carry the fields the
//! document requires.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;

fn router_paths() -> BTreeSet<String> {
    let src = include_str!("../../src/startup.rs");
    src.split(".route(")
        .skip(1)
        .filter_map(|rest| rest.trim_start().strip_prefix('"'))
        .filter_map(|rest| rest.split('"').next())
        .filter(|p| !p.starts_with("/internal/"))
        .map(str::to_owned)
        .collect()
}

fn required(doc: &Value, schema: &str) -> Vec<String> {
    doc["components"]["schemas"][schema]["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_document_matches_the_router_and_the_answers() {
    let app = TestApp::spawn().await;
    let doc = app.get_json("/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        documented,
        router_paths(),
        "document and router list different paths"
    );

    for (path, ops) in doc["paths"].as_object().unwrap() {
        // Every `{param}` becomes `x`.
        let concrete: String = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for method in ops.as_object().unwrap().keys() {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = app
                .client
                .request(m, format!("{}{concrete}", app.url))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body = r.bytes().await.unwrap();
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            // The router's own 404 for an unknown route has no body; ours are JSON.
            assert!(
                status != StatusCode::NOT_FOUND || !body.is_empty(),
                "{method} {path} is not routed"
            );
            if status.is_client_error() {
                let e: Value = serde_json::from_slice(&body)
                    .unwrap_or_else(|_| panic!("{method} {path}: a non-JSON {status}"));
                for field in required(&doc, "Error") {
                    assert!(
                        e.get(&field).is_some(),
                        "{method} {path}: {e} lacks {field}"
                    );
                }
            }
        }
    }

    // Live answers have what the document promises.
    let r = app
        .post(
            "/v1/auth/signup",
            None,
            serde_json::json!({"email": "doc@example.com", "password": "long enough pw"}),
        )
        .await;
    let tokens: Value = r.json().await.unwrap();
    for field in required(&doc, "Tokens") {
        assert!(tokens.get(&field).is_some(), "Tokens lacks {field}");
    }
    let page = app.get_json("/v1/feeds/home").await;
    for field in required(&doc, "FeedPage") {
        assert!(page.get(&field).is_some(), "FeedPage lacks {field}");
    }
    let me = app
        .get_json_as("/v1/me", tokens["access_token"].as_str().unwrap())
        .await;
    for field in required(&doc, "Profile") {
        assert!(me.get(&field).is_some(), "Profile lacks {field}");
    }
}
