//! The OpenAPI document stays true: it lists exactly the router's public routes, each documented
//! operation is served (not the router's 404 or a 405), and a walk through every operation
//! finds each request and answer valid against the document's schemas.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared_wasm::jwt::Role;

use crate::helpers::{now, TestApp, PW, WEBHOOK_SECRETS};

fn router_paths() -> BTreeSet<String> {
    let src = include_str!("../../src/routes/mod.rs");
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
async fn the_document_matches_the_router() {
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
            if status.is_client_error() && method != "head" {
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
}

/// The document's schemas, checked with a JSON Schema 2020-12 validator (OpenAPI 3.1's dialect).
struct Doc {
    doc: Value,
    /// `(METHOD, path template)` of every operation answered with a 2xx so far.
    succeeded: BTreeSet<(String, String)>,
}

impl Doc {
    fn operation(&self, method: &str, template: &str) -> &Value {
        let op = &self.doc["paths"][template][method.to_lowercase()];
        assert!(op.is_object(), "{method} {template} is not documented");
        op
    }

    fn check(&self, what: &str, schema: &Value, instance: &Value) {
        // `$ref`s point into the document's components: carry them along.
        let mut schema = schema.clone();
        schema["components"] = self.doc["components"].clone();
        let validator = jsonschema::draft202012::new(&schema)
            .unwrap_or_else(|e| panic!("{what}: the documented schema is invalid: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("{} (at {})", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{what}: {errors:?} in {instance}");
    }

    /// Sends a request, checking its body against the operation's request schema and the
    /// answer against the response documented for its status; returns both.
    async fn call(
        &mut self,
        app: &TestApp,
        method: Method,
        template: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = app
            .client
            .request(method.clone(), format!("{}{path}", app.url));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        if let Some(b) = &body {
            req = req.json(b);
        }
        let (status, value, _) = self.send(req, method, template, path, body.as_ref()).await;
        (status, value)
    }

    /// [`Doc::call`] for a request built by the caller (`body`: what it carries, to check).
    async fn send(
        &mut self,
        req: reqwest::RequestBuilder,
        method: Method,
        template: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let what = format!("{method} {path}");
        let op = self.operation(method.as_str(), template).clone();
        match body {
            Some(b) => {
                let schema = &op["requestBody"]["content"]["application/json"]["schema"];
                assert!(schema.is_object(), "{what}: no request body documented");
                self.check(&format!("{what} request"), schema, b);
            }
            // Only JSON bodies are checked here; file bodies are the caller's.
            None => assert!(
                op["requestBody"]["required"] != true
                    || op["requestBody"]["content"]["application/json"].is_null(),
                "{what}: a body is required"
            ),
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.unwrap();
        let mut response = op["responses"][status.as_str()].clone();
        if response.is_null() && status.is_client_error() {
            response = op["responses"]["4XX"].clone();
        }
        assert!(
            response.is_object(),
            "{what}: status {status} is not documented"
        );
        if let Some(name) = response["$ref"].as_str() {
            let name = name.rsplit('/').next().unwrap();
            response = self.doc["components"]["responses"][name].clone();
        }
        let value = match response["content"]["application/json"]["schema"].as_object() {
            _ if method == Method::HEAD => Value::Null, // no body, whatever the status
            Some(_) => {
                let v: Value = serde_json::from_slice(&bytes)
                    .unwrap_or_else(|_| panic!("{what}: {status} is not JSON"));
                let schema = &response["content"]["application/json"]["schema"];
                self.check(&format!("{what} → {status}"), schema, &v);
                v
            }
            // A statement's CSV.
            None if response["content"]["text/csv"].is_object() => {
                let ct = headers.get("content-type").map(|v| v.to_str().unwrap());
                assert!(
                    ct.is_some_and(|c| c.starts_with("text/csv")),
                    "{what}: {status} is not the documented CSV"
                );
                Value::String(String::from_utf8(bytes.to_vec()).unwrap())
            }
            // Our own pages (the unsubscribe link's).
            None if response["content"]["text/html"].is_object() => {
                let ct = headers.get("content-type").map(|v| v.to_str().unwrap());
                assert!(
                    ct.is_some_and(|c| c.starts_with("text/html")),
                    "{what}: {status} is not the documented page"
                );
                Value::String(String::from_utf8(bytes.to_vec()).unwrap())
            }
            None => {
                assert!(
                    bytes.is_empty(),
                    "{what}: {status} has an undocumented body"
                );
                Value::Null
            }
        };
        if status.is_success() {
            self.succeeded
                .insert((method.as_str().to_owned(), template.to_owned()));
        }
        (status, value, headers)
    }
}

/// A new video of `creator`'s and an upload ticket for it, both through the document.
async fn upload_video(d: &mut Doc, app: &TestApp, creator: &str) -> Value {
    let (_, v) = d
        .call(
            app,
            Method::POST,
            "/v1/videos",
            "/v1/videos",
            Some(creator),
            Some(json!({"title": "Upload", "visibility": "public"})),
        )
        .await;
    let id = v["id"].as_str().unwrap().to_owned();
    let (s, t) = d
        .call(
            app,
            Method::POST,
            "/v1/videos/{id}/upload",
            &format!("/v1/videos/{id}/upload"),
            Some(creator),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    t
}

/// Every documented operation, answered with a 2xx at least once, and every request and answer
/// along the way (errors included) valid against the document's schemas.
#[tokio::test]
async fn every_operation_answers_as_documented() {
    use Method as M;
    // An SMTP server, so that the address confirmation can be asked for.
    let sink = e2e::mail::Sink::start().await;
    let smtp = sink.url.clone();
    let app = TestApp::spawn_tweaked(move |s| s.notifications.smtp_url = Some(smtp.into())).await;
    let doc = app.get_json("/openapi.json").await;
    let mut d = Doc {
        doc,
        succeeded: BTreeSet::new(),
    };
    let (creator_id, _) = app.user("creator@example.com", Role::Creator).await;
    let (_, admin) = app.user("admin@example.com", Role::Admin).await;

    for path in ["/healthz", "/.well-known/jwks.json", "/openapi.json"] {
        d.call(&app, M::GET, path, path, None, None).await;
    }
    // Accounts.
    let (s, e) = d
        .call(
            &app,
            M::POST,
            "/v1/auth/signup",
            "/v1/auth/signup",
            None,
            Some(json!({"email": "not an address", "password": "long enough pw"})),
        )
        .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("email"))
    );
    let (s, viewer) = d
        .call(
            &app,
            M::POST,
            "/v1/auth/signup",
            "/v1/auth/signup",
            None,
            Some(
                json!({"email": "viewer@example.com", "password": "long enough pw",
                        "display_name": "Vi"}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, refreshed) = d
        .call(
            &app,
            M::POST,
            "/v1/auth/refresh",
            "/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": viewer["refresh_token"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let viewer = refreshed["access_token"].as_str().unwrap().to_owned();
    let (_, login) = d
        .call(
            &app,
            M::POST,
            "/v1/auth/login",
            "/v1/auth/login",
            None,
            Some(json!({"email": "creator@example.com", "password": PW})),
        )
        .await;
    let creator = login["access_token"].as_str().unwrap().to_owned();
    let (_, me) = d
        .call(&app, M::GET, "/v1/me", "/v1/me", Some(&viewer), None)
        .await;
    let viewer_id = me["id"].as_str().unwrap().to_owned();
    d.call(
        &app,
        M::PATCH,
        "/v1/me",
        "/v1/me",
        Some(&viewer),
        Some(json!({"display_name": "Viewer"})),
    )
    .await;
    let (s, _) = d.call(&app, M::GET, "/v1/me", "/v1/me", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Channels and videos.
    let (_, ch) = d
        .call(
            &app,
            M::POST,
            "/v1/channels",
            "/v1/channels",
            Some(&creator),
            Some(json!({"name": "Docs", "description": "about the API"})),
        )
        .await;
    let ch = ch["id"].as_str().unwrap().to_owned();
    let ch_path = format!("/v1/channels/{ch}");
    d.call(&app, M::GET, "/v1/channels/{id}", &ch_path, None, None)
        .await;
    d.call(
        &app,
        M::PATCH,
        "/v1/channels/{id}",
        &ch_path,
        Some(&creator),
        Some(json!({"name": "Documentation"})),
    )
    .await;
    d.call(
        &app,
        M::GET,
        "/v1/users/{id}/channels",
        &format!("/v1/users/{creator_id}/channels"),
        None,
        None,
    )
    .await;
    let (_, video) = d
        .call(
            &app,
            M::POST,
            "/v1/videos",
            "/v1/videos",
            Some(&creator),
            Some(
                json!({"title": "Spec", "visibility": "public", "channel": ch,
                        "category": "docs", "tags": ["api"]}),
            ),
        )
        .await;
    let vid = video["id"].as_str().unwrap().to_owned();
    let v_path = format!("/v1/videos/{vid}");
    let (s, e) = d
        .call(
            &app,
            M::PATCH,
            "/v1/videos/{id}",
            &v_path,
            Some(&creator),
            Some(json!({"title": ""})),
        )
        .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("title"))
    );
    d.call(
        &app,
        M::PATCH,
        "/v1/videos/{id}",
        &v_path,
        Some(&creator),
        Some(json!({"description": "the document, live", "countries": null})),
    )
    .await;
    d.call(
        &app,
        M::GET,
        "/v1/creator/videos",
        "/v1/creator/videos",
        Some(&creator),
        None,
    )
    .await;
    let stats = format!("/v1/creator/stats?video={vid}");
    d.call(
        &app,
        M::GET,
        "/v1/creator/stats",
        &stats,
        Some(&creator),
        None,
    )
    .await;
    sqlx::query("UPDATE videos SET state = 'ready' WHERE id = $1")
        .bind(&vid)
        .execute(&app.state.db)
        .await
        .unwrap();

    // What viewers read.
    let (_, details) = d
        .call(&app, M::GET, "/v1/videos/{id}", &v_path, None, None)
        .await;
    assert_eq!(details["description"], "the document, live");
    // With a token, the asker's own reaction and subscription come along.
    let (_, details) = d
        .call(
            &app,
            M::GET,
            "/v1/videos/{id}",
            &v_path,
            Some(&creator),
            None,
        )
        .await;
    assert_eq!(details["viewer"]["reaction"], "none");
    let (_, found) = d
        .call(&app, M::GET, "/v1/search", "/v1/search?q=spe", None, None)
        .await;
    assert_eq!(found["items"][0]["id"], vid.as_str());
    let (_, categories) = d
        .call(&app, M::GET, "/v1/categories", "/v1/categories", None, None)
        .await;
    assert_eq!(categories["categories"][0]["slug"], "docs");
    let (_, profile) = d
        .call(
            &app,
            M::GET,
            "/v1/users/{id}",
            &format!("/v1/users/{creator_id}"),
            None,
            None,
        )
        .await;
    assert_eq!(profile["channels"][0]["id"], ch.as_str());

    // Feeds.
    for (template, path) in [
        ("/v1/feeds/home", "/v1/feeds/home?limit=1".to_owned()),
        ("/v1/feeds/trending", "/v1/feeds/trending".to_owned()),
        ("/v1/feeds/channel/{id}", format!("/v1/feeds/channel/{ch}")),
        (
            "/v1/feeds/category/{category}",
            "/v1/feeds/category/docs".to_owned(),
        ),
    ] {
        let (_, page) = d.call(&app, M::GET, template, &path, None, None).await;
        assert_eq!(page["items"][0]["id"], vid.as_str(), "{path}");
    }
    let (s, _) = d
        .call(
            &app,
            M::GET,
            "/v1/feeds/home",
            "/v1/feeds/home?cursor=x",
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Comments, reactions, subscriptions.
    let comments = format!("{v_path}/comments");
    let (_, c) = d
        .call(
            &app,
            M::POST,
            "/v1/videos/{id}/comments",
            &comments,
            Some(&viewer),
            Some(json!({"body": "first"})),
        )
        .await;
    let c_path = format!("/v1/comments/{}", c["id"].as_str().unwrap());
    // A reply, which notifies the comment's author.
    let (s, _) = d
        .call(
            &app,
            M::POST,
            "/v1/videos/{id}/comments",
            &comments,
            Some(&creator),
            Some(json!({"body": "thanks", "reply_to": c["id"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    d.call(
        &app,
        M::GET,
        "/v1/videos/{id}/comments",
        &comments,
        None,
        None,
    )
    .await;
    d.call(
        &app,
        M::PATCH,
        "/v1/comments/{id}",
        &c_path,
        Some(&viewer),
        Some(json!({"body": "first!"})),
    )
    .await;
    d.call(
        &app,
        M::PUT,
        "/v1/comments/{id}/reaction",
        &format!("{c_path}/reaction"),
        Some(&creator),
        Some(json!({"value": "like"})),
    )
    .await;
    d.call(
        &app,
        M::PUT,
        "/v1/videos/{id}/reaction",
        &format!("{v_path}/reaction"),
        Some(&viewer),
        Some(json!({"value": "dislike"})),
    )
    .await;
    d.call(
        &app,
        M::DELETE,
        "/v1/comments/{id}",
        &c_path,
        Some(&viewer),
        None,
    )
    .await;
    let sub = format!("{ch_path}/subscription");
    d.call(
        &app,
        M::PUT,
        "/v1/channels/{id}/subscription",
        &sub,
        Some(&viewer),
        None,
    )
    .await;
    d.call(
        &app,
        M::GET,
        "/v1/me/subscriptions",
        "/v1/me/subscriptions",
        Some(&viewer),
        None,
    )
    .await;
    d.call(
        &app,
        M::DELETE,
        "/v1/channels/{id}/subscription",
        &sub,
        Some(&viewer),
        None,
    )
    .await;

    // Deletions: a channel with a video is refused, then the video goes, then the channel.
    let (s, _) = d
        .call(
            &app,
            M::DELETE,
            "/v1/channels/{id}",
            &ch_path,
            Some(&creator),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    d.call(
        &app,
        M::DELETE,
        "/v1/videos/{id}",
        &v_path,
        Some(&creator),
        None,
    )
    .await;
    d.call(
        &app,
        M::DELETE,
        "/v1/channels/{id}",
        &ch_path,
        Some(&creator),
        None,
    )
    .await;

    // Billing: Checkout (against the Stripe stand-in) and a signed webhook.
    d.call(
        &app,
        M::POST,
        "/v1/billing/checkout",
        "/v1/billing/checkout",
        Some(&viewer),
        None,
    )
    .await;
    let hook = "/billing/stripe/webhook";
    let event = e2e::stripe::event(
        "evt_doc",
        "customer.created",
        now(),
        json!({"id": "cus_doc"}),
    );
    let signature = e2e::stripe::sign(WEBHOOK_SECRETS[0], now(), &event);
    let req = app
        .client
        .post(format!("{}{hook}", app.origin_url))
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(event.clone());
    let parsed: Value = serde_json::from_str(&event).unwrap();
    let (s, _, _) = d.send(req, M::POST, hook, hook, Some(&parsed)).await;
    assert_eq!(s, StatusCode::OK);
    let req = app
        .client
        .post(format!("{}{hook}", app.origin_url))
        .body(event);
    let (s, e, _) = d.send(req, M::POST, hook, hook, Some(&parsed)).await;
    assert_eq!(
        (s, e["reason"].as_str()),
        (StatusCode::BAD_REQUEST, Some("missing_signature"))
    );

    // Uploads: a ticket, a PUT, and a tus upload through creation, HEAD, PATCH and DELETE.
    let t = upload_video(&mut d, &app, &creator).await;
    let url = t["upload_url"].as_str().unwrap();
    let path = url.strip_prefix(&app.origin_url).unwrap().to_owned();
    let req = app
        .client
        .put(url)
        .header("content-type", "video/mp4")
        .body(mp4_like(100));
    let (s, _, _) = d.send(req, M::PUT, "/uploads/{ticket}", &path, None).await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, v) = d
        .call(
            &app,
            M::GET,
            "/v1/creator/videos",
            "/v1/creator/videos",
            Some(&creator),
            None,
        )
        .await;
    let uploaded = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["state"] == "processing" || i["state"] == "failed" || i["state"] == "ready")
        .expect("the uploaded video")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    d.call(
        &app,
        M::GET,
        "/v1/videos/{id}/transcode",
        &format!("/v1/videos/{uploaded}/transcode"),
        Some(&creator),
        None,
    )
    .await;
    let tus_path = "/uploads/tus";
    let req = app
        .client
        .request(M::OPTIONS, format!("{}{tus_path}", app.origin_url));
    d.send(req, M::OPTIONS, tus_path, tus_path, None).await;
    for finish in [false, true] {
        let t = upload_video(&mut d, &app, &creator).await;
        let url = t["tus_url"].as_str().unwrap();
        let path = url.strip_prefix(&app.origin_url).unwrap().to_owned();
        let req = app
            .client
            .post(url)
            .header("tus-resumable", "1.0.0")
            .header("upload-length", "10")
            .header("upload-metadata", "filetype dmlkZW8vbXA0");
        let (s, _, headers) = d
            .send(req, M::POST, "/uploads/{ticket}/tus", &path, None)
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let location = headers["location"].to_str().unwrap().to_owned();
        let up = location.strip_prefix(&app.origin_url).unwrap().to_owned();
        let template = "/uploads/tus/{id}";
        let req = app.client.head(&location).header("tus-resumable", "1.0.0");
        d.send(req, M::HEAD, template, &up, None).await;
        let (method, req) = if finish {
            let req = app
                .client
                .patch(&location)
                .header("tus-resumable", "1.0.0")
                .header("content-type", "application/offset+octet-stream")
                .header("upload-offset", "0")
                .body(mp4_like(10));
            (M::PATCH, req)
        } else {
            (
                M::DELETE,
                app.client
                    .delete(&location)
                    .header("tus-resumable", "1.0.0"),
            )
        };
        let (s, _, _) = d.send(req, method, template, &up, None).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }

    // Admin, then the end of sessions and of an account.
    // Ad campaigns, with a public 8 s creative.
    app.public_video("openapi-ad", None).await;
    sqlx::query("UPDATE videos SET duration_ms = 8000 WHERE id = 'openapi-ad'")
        .execute(&app.state.db)
        .await
        .unwrap();
    let campaign = json!({
        "name": "Campaign", "creative": "openapi-ad", "click_url": "https://ads.example/",
        "countries": ["FR"], "ends_at": now() + 86_400, "daily_cap": 1000, "cpm_minor": 1500,
    });
    let (s, c) = d
        .call(
            &app,
            M::POST,
            "/v1/ads/campaigns",
            "/v1/ads/campaigns",
            Some(&admin),
            Some(campaign),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let one = format!("/v1/ads/campaigns/{}", c["id"].as_str().unwrap());
    let template = "/v1/ads/campaigns/{id}";
    d.call(
        &app,
        M::GET,
        "/v1/ads/campaigns",
        "/v1/ads/campaigns",
        Some(&admin),
        None,
    )
    .await;
    d.call(&app, M::GET, template, &one, Some(&admin), None)
        .await;
    let pause = json!({"status": "paused"});
    d.call(&app, M::PATCH, template, &one, Some(&admin), Some(pause))
        .await;
    // Earnings: last month closed, then read as the creator sees it and as the admin does.
    let month = origin::earnings::Month::of(now()).previous().to_string();
    let close = format!("/v1/admin/earnings/{month}/close");
    d.call(
        &app,
        M::POST,
        "/v1/admin/earnings/{month}/close",
        &close,
        Some(&admin),
        None,
    )
    .await;
    let report = format!("/v1/admin/earnings/{month}");
    d.call(
        &app,
        M::GET,
        "/v1/admin/earnings/{month}",
        &report,
        Some(&admin),
        None,
    )
    .await;
    let mine = format!("/v1/creator/earnings/{month}");
    for (template, path) in [
        ("/v1/creator/earnings", "/v1/creator/earnings".to_owned()),
        ("/v1/creator/earnings/{month}", mine.clone()),
        ("/v1/creator/earnings/{month}/csv", format!("{mine}/csv")),
    ] {
        d.call(&app, M::GET, template, &path, Some(&creator), None)
            .await;
    }
    d.call(
        &app,
        M::GET,
        "/v1/admin/stats",
        "/v1/admin/stats",
        Some(&admin),
        None,
    )
    .await;
    let (s, found) = d
        .call(
            &app,
            M::GET,
            "/v1/admin/users",
            "/v1/admin/users?q=viewer%40",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (s, &found["items"][0]["id"]),
        (StatusCode::OK, &json!(viewer_id))
    );
    let (s, _) = d
        .call(
            &app,
            M::GET,
            "/v1/admin/users",
            "/v1/admin/users?q=",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let admin_user = format!("/v1/admin/users/{viewer_id}");
    d.call(
        &app,
        M::POST,
        "/v1/admin/users/{id}/role",
        &format!("{admin_user}/role"),
        Some(&admin),
        Some(json!({"role": "creator"})),
    )
    .await;
    d.call(
        &app,
        M::POST,
        "/v1/admin/users/{id}/revoke",
        &format!("{admin_user}/revoke"),
        Some(&admin),
        None,
    )
    .await;
    // Moderation: a report, the queue, an action, the log.
    let (_, reporter) = app.user("reporter@example.com", Role::User).await;
    let (_, moderator) = app.user("moderator@example.com", Role::Moderator).await;
    let reported = "v-reported";
    app.public_video(reported, Some(&creator_id)).await;
    let (s, _) = d
        .call(
            &app,
            M::POST,
            "/v1/reports",
            "/v1/reports",
            Some(&reporter),
            Some(json!({"video": reported, "reason": "spam", "note": "a shop"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    d.call(
        &app,
        M::GET,
        "/v1/moderation/queue",
        "/v1/moderation/queue",
        Some(&moderator),
        None,
    )
    .await;
    let (s, _) = d
        .call(
            &app,
            M::POST,
            "/v1/moderation/actions",
            "/v1/moderation/actions",
            Some(&moderator),
            Some(json!({"action": "take_down", "video": reported, "reason": "spam"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, log) = d
        .call(
            &app,
            M::GET,
            "/v1/moderation/log",
            "/v1/moderation/log?before=1000",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (s, &log["items"][0]["action"]),
        (StatusCode::OK, &json!("take_down"))
    );

    // Webhooks (no delivery here: this origin allows only public https endpoints).
    let (s, hook) = d
        .call(
            &app,
            M::POST,
            "/v1/webhooks",
            "/v1/webhooks",
            Some(&creator),
            Some(json!({"url": "https://hooks.example.com/in", "events": ["video.ready"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let hook = format!("/v1/webhooks/{}", hook["id"].as_str().unwrap());
    d.call(
        &app,
        M::GET,
        "/v1/webhooks",
        "/v1/webhooks",
        Some(&creator),
        None,
    )
    .await;
    d.call(
        &app,
        M::GET,
        "/v1/webhooks/{id}",
        &hook,
        Some(&creator),
        None,
    )
    .await;
    d.call(
        &app,
        M::PATCH,
        "/v1/webhooks/{id}",
        &hook,
        Some(&creator),
        Some(json!({"events": ["video.ready", "video.deleted"]})),
    )
    .await;
    d.call(
        &app,
        M::POST,
        "/v1/webhooks/{id}/rotate",
        &format!("{hook}/rotate"),
        Some(&creator),
        Some(json!({"overlap_secs": 60})),
    )
    .await;
    // An event for it: a video of the creator's deleted.
    let (_, v) = d
        .call(
            &app,
            M::POST,
            "/v1/videos",
            "/v1/videos",
            Some(&creator),
            Some(json!({"title": "Short-lived", "visibility": "public"})),
        )
        .await;
    d.call(
        &app,
        M::DELETE,
        "/v1/videos/{id}",
        &format!("/v1/videos/{}", v["id"].as_str().unwrap()),
        Some(&creator),
        None,
    )
    .await;
    let (_, log) = d
        .call(
            &app,
            M::GET,
            "/v1/webhooks/{id}/deliveries",
            &format!("{hook}/deliveries"),
            Some(&creator),
            None,
        )
        .await;
    assert_eq!(log["items"][0]["type"], "video.deleted", "{log}");
    let (s, _) = d
        .call(
            &app,
            M::POST,
            "/v1/webhooks/{id}/deliveries/{event}/retry",
            &format!(
                "{hook}/deliveries/{}/retry",
                log["items"][0]["event"].as_str().unwrap()
            ),
            Some(&creator),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, _) = d
        .call(
            &app,
            M::POST,
            "/v1/webhooks/{id}/deliveries/{event}/retry",
            &format!("{hook}/deliveries/evt_none/retry"),
            Some(&creator),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    d.call(
        &app,
        M::DELETE,
        "/v1/webhooks/{id}",
        &hook,
        Some(&creator),
        None,
    )
    .await;

    d.call(
        &app,
        M::POST,
        "/v1/auth/logout",
        "/v1/auth/logout",
        Some(&creator),
        Some(json!({})),
    )
    .await;
    let (_, again) = d
        .call(
            &app,
            M::POST,
            "/v1/auth/login",
            "/v1/auth/login",
            None,
            Some(json!({"email": "viewer@example.com", "password": "long enough pw"})),
        )
        .await;
    let again_token = again["access_token"].as_str();
    // Notifications: the viewer's reply came; preferences; the emails' unsubscribe link.
    let (s, list) = d
        .call(
            &app,
            M::GET,
            "/v1/me/notifications",
            "/v1/me/notifications",
            again_token,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let kinds: Vec<&Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["kind"])
        .collect();
    assert!(kinds.contains(&&json!("comment_reply")), "{list}");
    d.call(
        &app,
        M::GET,
        "/v1/me/notifications",
        "/v1/me/notifications?before=1000000",
        again_token,
        None,
    )
    .await;
    d.call(
        &app,
        M::POST,
        "/v1/me/notifications/read",
        "/v1/me/notifications/read",
        again_token,
        Some(json!({"up_to": list["items"][0]["id"]})),
    )
    .await;
    for m in [M::GET, M::PUT] {
        let body = (m == M::PUT).then(|| json!({"comment_like": {"in_app": true, "email": true}}));
        let (s, _) = d
            .call(
                &app,
                m,
                "/v1/me/notification-preferences",
                "/v1/me/notification-preferences",
                again_token,
                body,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let token = origin::notifications::unsubscribe::token(
        app.state.email_link_key.as_slice(),
        &viewer_id,
        origin::notifications::unsubscribe::Scope::All,
    );
    for m in [M::GET, M::POST] {
        let (s, _) = d
            .call(
                &app,
                m,
                "/v1/notifications/unsubscribe",
                &format!("/v1/notifications/unsubscribe?t={token}"),
                None,
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    // The viewer signed up unconfirmed (its link was queued then); ten minutes on, another.
    let (s, _) = d
        .call(
            &app,
            M::POST,
            "/v1/me/email/confirm",
            "/v1/me/email/confirm",
            again_token,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    sqlx::query("UPDATE jobs SET created_at = created_at - 600 WHERE kind = 'notify.confirm'")
        .execute(&app.state.db)
        .await
        .unwrap();
    let (s, _) = d
        .call(
            &app,
            M::POST,
            "/v1/me/email/confirm",
            "/v1/me/email/confirm",
            again_token,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let token = origin::notifications::confirm::token(
        app.state.email_link_key.as_slice(),
        &viewer_id,
        "viewer@example.com",
        now(),
    );
    for m in [M::GET, M::POST] {
        let (s, _) = d
            .call(
                &app,
                m,
                "/v1/auth/confirm-email",
                &format!("/v1/auth/confirm-email?t={token}"),
                None,
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
    }

    d.call(
        &app,
        M::DELETE,
        "/v1/me",
        "/v1/me",
        again["access_token"].as_str(),
        Some(json!({"password": "long enough pw"})),
    )
    .await;

    let documented: BTreeSet<(String, String)> = d.doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(|m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let missed: Vec<_> = documented.difference(&d.succeeded).collect();
    assert!(missed.is_empty(), "never answered with a 2xx: {missed:?}");
}

/// `n` bytes that start as an MP4 does (an `ftyp` box), so the upload's checks take them.
fn mp4_like(n: usize) -> Vec<u8> {
    let mut v = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2".to_vec();
    v.resize(n, 0);
    v.truncate(n);
    v
}
