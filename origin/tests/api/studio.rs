//! What the web app's studio and admin pages rely on: CORS on the upload routes for the allowed
//! page origins only, the creator's list with every field the studio edits, and the admin's
//! user search.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared_wasm::jwt::Role;

use crate::helpers::TestApp;
use crate::uploads::{header, ticket};

const PAGE: &str = "https://studio.example";

fn cors_headers(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

#[tokio::test]
async fn the_upload_routes_open_to_the_web_apps_origins_only() {
    let app =
        TestApp::spawn_tweaked(|s| s.web.origins = format!("{PAGE},http://127.0.0.1:1")).await;
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;
    let (_, t) = ticket(&app, &ada).await;
    let tus_url = t["tus_url"].as_str().unwrap();

    // The browser's preflight before tus-js-client's POST.
    let preflight = |url: &str, origin: &str, method: &str| {
        app.client
            .request(Method::OPTIONS, url)
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header(
                "access-control-request-headers",
                "tus-resumable,upload-length,upload-metadata",
            )
            .send()
    };
    let r = preflight(tus_url, PAGE, "POST").await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "access-control-allow-origin"), PAGE);
    assert!(header(&r, "access-control-allow-methods").contains("PATCH"));
    assert!(header(&r, "access-control-allow-headers").contains("upload-metadata"));
    assert_eq!(header(&r, "access-control-allow-credentials"), "");
    let r = preflight(tus_url, "https://elsewhere.example", "POST")
        .await
        .unwrap();
    assert!(cors_headers(&r).is_empty(), "{:?}", cors_headers(&r));
    assert_ne!(r.status(), StatusCode::NO_CONTENT);

    // The upload itself, from the page: its answer's Location is readable by the page.
    let created = app
        .client
        .post(tus_url)
        .header("origin", PAGE)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "100")
        .header("upload-metadata", "filetype dmlkZW8vbXA0")
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(header(&created, "access-control-allow-origin"), PAGE);
    let exposed = header(&created, "access-control-expose-headers");
    for h in ["location", "upload-offset", "tus-resumable"] {
        assert!(exposed.contains(h), "{h} not in {exposed}");
    }
    let upload = header(&created, "location");
    let head = app
        .client
        .head(&upload)
        .header("origin", "https://elsewhere.example")
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK, "the route answers as ever");
    assert!(cors_headers(&head).is_empty());
    assert_eq!(header(&head, "upload-offset"), "0");

    // tus's own OPTIONS still describes the server, to any client.
    let tus = format!("{}/uploads/tus", app.origin_url);
    let r = preflight(&tus, PAGE, "POST").await.unwrap();
    assert_eq!(header(&r, "tus-version"), "1.0.0");
    // The API stays the edge's: no CORS for pages on the origin's /v1 routes.
    let me = format!("{}/v1/me", app.origin_url);
    let r = preflight(&me, PAGE, "GET").await.unwrap();
    assert!(cors_headers(&r).is_empty());
}

#[tokio::test]
async fn the_creators_list_carries_every_field_the_studio_edits() {
    let app = TestApp::spawn().await;
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;
    let id = app.new_video(&ada, "First").await;
    let r = app
        .send(
            Method::PATCH,
            &format!("/v1/videos/{id}"),
            &ada,
            Some(json!({
                "description": "about it", "visibility": "members", "category": "music",
                "tags": ["live", "jazz"], "countries": {"mode": "deny", "list": ["FR", "DE"]},
            })),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let list: Value = app.get_json_as("/v1/creator/videos", &ada).await;
    let v = &list["items"][0];
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["title"], "First");
    assert_eq!(v["description"], "about it");
    assert_eq!(v["visibility"], "members");
    assert_eq!(v["state"], "uploading");
    assert_eq!(v["category"], "music");
    assert_eq!(v["tags"], json!(["live", "jazz"]));
    assert_eq!(
        v["countries"],
        json!({"mode": "deny", "list": ["FR", "DE"]})
    );
    assert_eq!(v["taken_down"], false);
    assert!(v["created_at"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn admins_find_users_by_id_or_part_of_their_email() {
    let app = TestApp::spawn().await;
    let (ada_id, ada) = app.user("ada@example.com", Role::Creator).await;
    let (_, admin) = app.user("root@admin.example", Role::Admin).await;
    app.user("bob@example.com", Role::User).await;
    app.user("b_b@example.com", Role::User).await;
    let find = |q: &str, token: &str| {
        let path = format!(
            "/v1/admin/users?q={}",
            url_escape(q) // the edge sends it encoded the same way
        );
        let token = token.to_owned();
        let app = &app;
        async move {
            let r = app.get_as(&path, &token).await;
            let status = r.status();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let emails = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap().to_owned())
            .collect()
    };

    let (s, v) = find("EXAMPLE.COM", &admin).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        emails(&v),
        ["ada@example.com", "b_b@example.com", "bob@example.com"]
    );
    // `_` and `%` are characters of the address, not wildcards.
    let (_, v) = find("b_b", &admin).await;
    assert_eq!(emails(&v), ["b_b@example.com"]);
    let (_, v) = find("%", &admin).await;
    assert!(emails(&v).is_empty());
    let (_, v) = find(&ada_id, &admin).await;
    assert_eq!(v["items"][0]["id"], ada_id.as_str());
    assert_eq!(v["items"][0]["role"], "creator");
    assert_eq!(v["items"][0]["email"], "ada@example.com");

    for bad in ["", "   ", &"x".repeat(255)] {
        let (s, e) = find(bad, &admin).await;
        assert_eq!(
            (s, e["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_query")),
            "{bad:?}"
        );
    }
    let r = app.get_as("/v1/admin/users?q=a&x=1", &admin).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_query");
    let (s, e) = find("ada", &ada).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("role_required"))
    );
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
