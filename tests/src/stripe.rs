//! Stripe, where the tests cannot reach it: a stand-in for the two API calls Checkout makes
//! (the one test double in the project, at the boundary we cannot cross), and webhook
//! signatures made by an implementation independent of the origin's verifier (Python's `hmac`,
//! following Stripe's published scheme).

use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct Call {
    /// `/v1/customers` or `/v1/checkout/sessions`.
    pub path: String,
    /// The form fields, in order.
    pub form: Vec<(String, String)>,
    /// The `Authorization` header.
    pub auth: Option<String>,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
}

impl Call {
    /// The value of form field `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A running stand-in.
#[derive(Clone)]
pub struct StandIn {
    /// Its base URL (`billing.api_base`).
    pub url: String,
    calls: Arc<Mutex<Vec<Call>>>,
}

type Shared = (String, Arc<Mutex<Vec<Call>>>);

fn record(s: &Shared, path: &str, headers: &HeaderMap, form: Vec<(String, String)>) -> usize {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut calls = s.1.lock().unwrap();
    calls.push(Call {
        path: path.to_owned(),
        form,
        auth: h("authorization"),
        idempotency_key: h("idempotency-key"),
    });
    calls.len()
}

async fn customers(
    State(s): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Json<Value> {
    let n = record(&s, "/v1/customers", &headers, form);
    Json(json!({"id": format!("cus_standin{n}"), "object": "customer"}))
}

async fn sessions(
    State(s): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Json<Value> {
    let n = record(&s, "/v1/checkout/sessions", &headers, form);
    let id = format!("cs_standin{n}");
    Json(json!({"id": id, "object": "checkout.session", "url": format!("{}/pay/{id}", s.0)}))
}

impl StandIn {
    /// Starts on a free loopback port, for the rest of the test process.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let calls = Arc::new(Mutex::new(Vec::new()));
        let router = Router::new()
            .route("/v1/customers", post(customers))
            .route("/v1/checkout/sessions", post(sessions))
            // Stripe's hosted payment page, where a browser lands: payment itself is the
            // webhooks the test delivers.
            .route(
                "/pay/{id}",
                axum::routing::get(|| async {
                    axum::response::Html("<!doctype html><title>Checkout</title><h1>Pay</h1>")
                }),
            )
            .with_state((url.clone(), calls.clone()));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, calls }
    }

    /// Everything received so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

/// `Stripe-Signature` for `payload` at `t` under `secret`, computed by Python's standard
/// library: `t=…,v1=hex(HMAC-SHA256(secret, "{t}.{payload}"))`.
pub fn sign(secret: &str, t: u64, payload: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import hmac, hashlib, sys\n\
             secret, t, payload = sys.argv[1], sys.argv[2], sys.stdin.buffer.read()\n\
             mac = hmac.new(secret.encode(), t.encode() + b'.' + payload, hashlib.sha256)\n\
             print(f't={t},v1={mac.hexdigest()}', end='')",
            secret,
            &t.to_string(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("piped stdin")
                .write_all(payload.as_bytes())?;
            child.wait_with_output()
        })
        .expect("python3 runs (scripts/setup.sh installs it)");
    assert!(out.status.success(), "the signer failed");
    String::from_utf8(out.stdout).unwrap()
}

/// A Stripe event envelope.
pub fn event(id: &str, kind: &str, created: u64, object: Value) -> String {
    json!({
        "id": id,
        "object": "event",
        "type": kind,
        "created": created,
        "api_version": "2024-06-20",
        "livemode": false,
        "data": {"object": object},
    })
    .to_string()
}

/// Delivers a signed event to `origin`'s webhook, as Stripe would.
pub async fn deliver(c: &reqwest::Client, origin: &str, body: String) {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let r = c
        .post(format!("{origin}/billing/stripe/webhook"))
        .header("content-type", "application/json")
        .header("stripe-signature", sign(crate::WEBHOOK_SECRET, t, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
}
