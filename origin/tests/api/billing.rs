//! Stripe: webhook signatures (made by Python's `hmac`, not by the verifier's code), idempotent
//! and order-proof event application, durable storage before a worker applies events, and
//! Checkout against the API stand-in.

use std::time::Duration;

use e2e::stripe::{event, sign};
use reqwest::StatusCode;
use serde_json::{json, Value};
use shared_wasm::jwt::Role;
use shared_wasm::record::{Entitlement, EntitlementStatus};

use crate::helpers::{now, TestApp, STRIPE_KEY, WEBHOOK_SECRETS};

const DAY: u64 = 24 * 3600;
/// `billing.grace_secs`' default.
const GRACE: u64 = 3 * DAY;

async fn webhook(app: &TestApp, body: &str, signature: Option<&str>) -> (StatusCode, Value) {
    let mut req = app
        .client
        .post(format!("{}/billing/stripe/webhook", app.origin_url))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(s) = signature {
        req = req.header("stripe-signature", s);
    }
    let r = req.send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

/// Signs with the current secret at the current time and delivers.
async fn deliver(app: &TestApp, body: &str) -> Value {
    let (status, v) = webhook(app, body, Some(&sign(WEBHOOK_SECRETS[0], now(), body))).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

async fn stored_events(app: &TestApp) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM billing_events")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    n
}

/// Waits until the worker has dealt with every stored event (or given up waiting).
async fn settled(app: &TestApp) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (pending,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM billing_events WHERE processed_at IS NULL")
                .fetch_one(&app.state.db)
                .await
                .unwrap();
        if pending == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{pending} events never applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn outcome(app: &TestApp, id: &str) -> Option<String> {
    let (o,): (Option<String>,) =
        sqlx::query_as("SELECT outcome FROM billing_events WHERE id = $1")
            .bind(id)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    o
}

async fn entitlement(app: &TestApp, user: &str) -> Option<Entitlement> {
    origin::entitlements::record(&app.state.db, user)
        .await
        .unwrap()
}

fn subscription(id: &str, customer: &str, status: &str, period_end: u64) -> Value {
    json!({
        "id": id, "object": "subscription", "customer": customer, "status": status,
        "items": {"data": [{"id": "si_1", "current_period_end": period_end}]},
    })
}

fn invoice(customer: &str, sub: &str, period_end: u64) -> Value {
    json!({
        "id": format!("in_{period_end}"), "object": "invoice", "customer": customer,
        "amount_paid": 999, "currency": "eur",
        "parent": {"subscription_details": {"subscription": sub}},
        "lines": {"data": [{"period": {"start": period_end - 30 * DAY, "end": period_end}}]},
    })
}

fn checkout_completed(user: &str, customer: &str, sub: &str) -> Value {
    json!({
        "id": "cs_1", "object": "checkout.session", "mode": "subscription",
        "client_reference_id": user, "customer": customer, "subscription": sub,
    })
}

#[tokio::test]
async fn webhook_signatures_are_checked_as_stripe_specifies() {
    let app = TestApp::spawn().await;
    let t = now();
    let body = event("evt_sig_1", "customer.created", t, json!({"id": "cus_x"}));
    let good = sign(WEBHOOK_SECRETS[0], t, &body);
    let v1 = good.split_once(",v1=").unwrap().1.to_owned();

    let refused: Vec<(Option<String>, String, &str)> = vec![
        (None, body.clone(), "missing_signature"),
        (Some("garbage".into()), body.clone(), "malformed_signature"),
        (
            Some(format!("t=soon,v1={v1}")),
            body.clone(),
            "malformed_signature",
        ),
        (
            Some(format!("t={t},t={t},v1={v1}")),
            body.clone(),
            "malformed_signature",
        ),
        (Some(format!("t={t}")), body.clone(), "no_v1_signature"),
        // v0 is ignored even when it carries the right value.
        (
            Some(format!("t={t},v0={v1}")),
            body.clone(),
            "no_v1_signature",
        ),
        (
            // Just past the 300 s tolerance either way (a few seconds of margin for the run).
            Some(sign(WEBHOOK_SECRETS[0], t - 305, &body)),
            body.clone(),
            "timestamp_outside_tolerance",
        ),
        (
            Some(sign(WEBHOOK_SECRETS[0], now() + 305, &body)),
            body.clone(),
            "timestamp_outside_tolerance",
        ),
        (
            Some(sign("whsec_someone_else", t, &body)),
            body.clone(),
            "signature_mismatch",
        ),
        // The raw body is what was signed: one added space breaks it.
        (Some(good.clone()), format!("{body} "), "signature_mismatch"),
        // The timestamp is part of what was signed.
        (
            Some(format!("t={},v1={v1}", t - 1)),
            body.clone(),
            "signature_mismatch",
        ),
        (
            Some(format!("t={t},v1=nothex")),
            body.clone(),
            "signature_mismatch",
        ),
    ];
    for (header, payload, reason) in refused {
        let (status, v) = webhook(&app, &payload, header.as_deref()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{header:?}: {reason}");
        assert_eq!(v["error"], "invalid_signature", "{header:?}");
        assert_eq!(v["reason"], reason, "{header:?}");
    }
    assert_eq!(
        stored_events(&app).await,
        0,
        "nothing recorded for a refusal"
    );

    // Signed but not an event: refused, nothing recorded.
    let junk = r#"{"hello": "world"}"#;
    let (status, v) = webhook(&app, junk, Some(&sign(WEBHOOK_SECRETS[0], t, junk))).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_event"))
    );
    assert_eq!(stored_events(&app).await, 0);

    // Accepted: the current secret; the next secret (rolling); several v1 of which one matches.
    assert_eq!(
        deliver(&app, &body).await,
        json!({"received": true, "duplicate": false})
    );
    let body2 = event("evt_sig_2", "customer.created", t, json!({"id": "cus_y"}));
    let (status, _) = webhook(&app, &body2, Some(&sign(WEBHOOK_SECRETS[1], t, &body2))).await;
    assert_eq!(status, StatusCode::OK);
    let body3 = event("evt_sig_3", "customer.created", t, json!({"id": "cus_z"}));
    let right = sign(WEBHOOK_SECRETS[0], t, &body3);
    let right_v1 = right.split_once(",v1=").unwrap().1;
    let several = format!("t={t},v1={},v0=ab,v1={right_v1}", "0".repeat(64));
    let (status, _) = webhook(&app, &body3, Some(&several)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stored_events(&app).await, 3);
    settled(&app).await;
    assert_eq!(outcome(&app, "evt_sig_1").await.as_deref(), Some("ignored"));
}

#[tokio::test]
async fn events_apply_once_and_only_move_forward() {
    let app = TestApp::spawn().await;
    let (ada, _) = app.user("ada@example.com", Role::User).await;
    let t0 = now() - 100;
    let end = now() + 30 * DAY;

    deliver(
        &app,
        &event(
            "evt_1",
            "checkout.session.completed",
            t0,
            checkout_completed(&ada, "cus_ada", "sub_ada"),
        ),
    )
    .await;
    let created = event(
        "evt_2",
        "customer.subscription.created",
        t0 + 1,
        subscription("sub_ada", "cus_ada", "active", end),
    );
    deliver(&app, &created).await;
    settled(&app).await;
    let e = entitlement(&app, &ada).await.expect("an entitlement");
    assert_eq!(
        (e.status, e.period_end, e.tier.as_str()),
        (EntitlementStatus::Active, end + GRACE, "members")
    );

    // A redelivery is acknowledged and changes nothing.
    assert_eq!(
        deliver(&app, &created).await,
        json!({"received": true, "duplicate": true})
    );
    settled(&app).await;
    assert_eq!(entitlement(&app, &ada).await.unwrap().version, e.version);

    // Deleted, then a late `updated` from before the deletion: still canceled.
    deliver(
        &app,
        &event(
            "evt_4",
            "customer.subscription.deleted",
            t0 + 30,
            subscription("sub_ada", "cus_ada", "canceled", end),
        ),
    )
    .await;
    deliver(
        &app,
        &event(
            "evt_3",
            "customer.subscription.updated",
            t0 + 20,
            subscription("sub_ada", "cus_ada", "active", end + 30 * DAY),
        ),
    )
    .await;
    settled(&app).await;
    assert_eq!(outcome(&app, "evt_3").await.as_deref(), Some("stale"));
    let e = entitlement(&app, &ada).await.unwrap();
    assert_eq!(e.status, EntitlementStatus::Inactive);
    // And a later one cannot revive it either.
    deliver(
        &app,
        &event(
            "evt_5",
            "customer.subscription.updated",
            t0 + 40,
            subscription("sub_ada", "cus_ada", "active", end),
        ),
    )
    .await;
    settled(&app).await;
    assert_eq!(outcome(&app, "evt_5").await.as_deref(), Some("stale"));
    assert_eq!(entitlement(&app, &ada).await.unwrap().version, e.version);
}

#[tokio::test]
async fn payment_failures_keep_access_for_the_grace_only() {
    let app = TestApp::spawn().await;
    let (bob, _) = app.user("bob@example.com", Role::User).await;
    let (cyd, _) = app.user("cyd@example.com", Role::User).await;
    let t0 = now() - 100;
    let end = now() + 10 * DAY;
    for (user, c) in [(&bob, "cus_bob"), (&cyd, "cus_cyd")] {
        let sub = format!("sub_{c}");
        deliver(
            &app,
            &event(
                &format!("evt_co_{c}"),
                "checkout.session.completed",
                t0,
                checkout_completed(user, c, &sub),
            ),
        )
        .await;
        deliver(
            &app,
            &event(
                &format!("evt_paid_{c}"),
                "invoice.paid",
                t0 + 1,
                invoice(c, &sub, end),
            ),
        )
        .await;
    }
    settled(&app).await;
    assert_eq!(
        entitlement(&app, &bob).await.unwrap().period_end,
        end + GRACE
    );

    // A renewal fails now: access lasts the grace from the failure.
    let failed_at = t0 + 10;
    deliver(
        &app,
        &event(
            "evt_fail_bob",
            "invoice.payment_failed",
            failed_at,
            invoice("cus_bob", "sub_cus_bob", end + 30 * DAY),
        ),
    )
    .await;
    settled(&app).await;
    let e = entitlement(&app, &bob).await.unwrap();
    assert_eq!(
        (e.status, e.period_end),
        (EntitlementStatus::Active, failed_at + GRACE)
    );
    // An older invoice.paid arriving late extends what was paid but not the status.
    deliver(
        &app,
        &event(
            "evt_paid_late",
            "invoice.paid",
            t0 + 5,
            invoice("cus_bob", "sub_cus_bob", end),
        ),
    )
    .await;
    settled(&app).await;
    assert_eq!(
        entitlement(&app, &bob).await.unwrap().period_end,
        failed_at + GRACE
    );
    // The retry succeeds: active through the new period.
    deliver(
        &app,
        &event(
            "evt_paid_bob",
            "invoice.paid",
            t0 + 20,
            invoice("cus_bob", "sub_cus_bob", end + 30 * DAY),
        ),
    )
    .await;
    settled(&app).await;
    let e = entitlement(&app, &bob).await.unwrap();
    assert_eq!(
        (e.status, e.period_end),
        (EntitlementStatus::Active, end + 30 * DAY + GRACE)
    );
    // Both paid invoices are kept for the creators' earnings, each once, the late one too.
    deliver(
        &app,
        &event(
            "evt_paid_bob_again",
            "invoice.paid",
            t0 + 21,
            invoice("cus_bob", "sub_cus_bob", end + 30 * DAY),
        ),
    )
    .await;
    settled(&app).await;
    let paid: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT id, amount_minor, currency FROM billing_invoices WHERE user_id = $1 ORDER BY id",
    )
    .bind(&bob)
    .fetch_all(&app.state.db)
    .await
    .unwrap();
    let ids = |p: u64| format!("in_{p}");
    assert_eq!(
        paid,
        vec![
            (ids(end), 999, "eur".into()),
            (ids(end + 30 * DAY), 999, "eur".into())
        ]
    );

    // A failure longer ago than the grace: access is gone.
    let long_ago = now() - GRACE - 60;
    deliver(
        &app,
        &event(
            "evt_fail_cyd",
            "invoice.payment_failed",
            long_ago.max(t0 + 2),
            invoice("cus_cyd", "sub_cus_cyd", end),
        ),
    )
    .await;
    settled(&app).await;
    let e = entitlement(&app, &cyd).await.unwrap();
    assert_eq!(
        e.status,
        EntitlementStatus::Active,
        "this failure is recent: {e:?}"
    );
    sqlx::query("UPDATE billing_subscriptions SET payment_failed_at = $1 WHERE id = 'sub_cus_cyd'")
        .bind(long_ago as i64)
        .execute(&app.state.db)
        .await
        .unwrap();
    deliver(
        &app,
        &event(
            "evt_fail_cyd_2",
            "invoice.payment_failed",
            t0 + 3,
            invoice("cus_cyd", "sub_cus_cyd", end),
        ),
    )
    .await;
    settled(&app).await;
    assert_eq!(
        entitlement(&app, &cyd).await.unwrap().status,
        EntitlementStatus::Inactive
    );
}

#[tokio::test]
async fn an_event_for_an_unknown_customer_is_retried_until_it_can_apply() {
    let app = TestApp::spawn().await;
    let (dee, _) = app.user("dee@example.com", Role::User).await;
    let t0 = now() - 100;
    deliver(
        &app,
        &event(
            "evt_early",
            "customer.subscription.created",
            t0 + 1,
            subscription("sub_dee", "cus_dee", "active", now() + DAY),
        ),
    )
    .await;
    // It fails, and waits for its next attempt with the error kept.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let error = loop {
        let (attempts, err): (i64, Option<String>) = sqlx::query_as(
            "SELECT attempts, last_error FROM billing_events WHERE id = 'evt_early'",
        )
        .fetch_one(&app.state.db)
        .await
        .unwrap();
        if let (1.., Some(err)) = (attempts, err) {
            break err;
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(error.contains("cus_dee"), "{error}");
    assert!(entitlement(&app, &dee).await.is_none());
    // The checkout's event links the customer; the retry then applies.
    deliver(
        &app,
        &event(
            "evt_link",
            "checkout.session.completed",
            t0,
            checkout_completed(&dee, "cus_dee", "sub_dee"),
        ),
    )
    .await;
    settled(&app).await;
    assert_eq!(outcome(&app, "evt_early").await.as_deref(), Some("applied"));
    assert_eq!(
        entitlement(&app, &dee).await.unwrap().status,
        EntitlementStatus::Active
    );
}

#[tokio::test]
async fn events_are_stored_before_the_answer_and_applied_by_any_worker() {
    // This origin only receives: its worker is off, as if it crashed right after answering.
    let receiver = TestApp::spawn_with("", None, false).await;
    let (eve, _) = receiver.user("eve@example.com", Role::User).await;
    let t0 = now() - 100;
    deliver(
        &receiver,
        &event(
            "evt_a",
            "checkout.session.completed",
            t0,
            checkout_completed(&eve, "cus_eve", "sub_eve"),
        ),
    )
    .await;
    deliver(
        &receiver,
        &event(
            "evt_b",
            "customer.subscription.created",
            t0 + 1,
            subscription("sub_eve", "cus_eve", "active", now() + DAY),
        ),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(entitlement(&receiver, &eve).await.is_none());
    // Another process on the same database applies them.
    let worker = receiver.spawn_beside(true).await;
    settled(&worker).await;
    let e = entitlement(&worker, &eve).await.unwrap();
    assert_eq!(e.status, EntitlementStatus::Active);
}

#[tokio::test]
async fn checkout_links_one_customer_and_opens_a_subscription_session() {
    let app = TestApp::spawn().await;
    let (fay, token) = app.user("fay@example.com", Role::User).await;
    let r = app
        .client
        .post(format!("{}/v1/billing/checkout", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = app
            .client
            .post(format!("{}/v1/billing/checkout", app.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.unwrap();
        assert!(v["url"].as_str().unwrap().starts_with(&app.stripe.url));
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    assert_ne!(ids[0], ids[1]);
    let calls = app.stripe.calls();
    let paths: Vec<&str> = calls.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/v1/customers",
            "/v1/checkout/sessions",
            "/v1/checkout/sessions"
        ],
        "one customer, then reused"
    );
    let bearer = format!("Bearer {STRIPE_KEY}");
    assert!(calls
        .iter()
        .all(|c| c.auth.as_deref() == Some(bearer.as_str())));
    let customer = &calls[0];
    assert_eq!(customer.field("email"), Some("fay@example.com"));
    assert_eq!(customer.field("metadata[user_id]"), Some(fay.as_str()));
    assert_eq!(customer.idempotency_key, Some(format!("customer-{fay}")));
    let session = &calls[1];
    for (k, v) in [
        ("mode", "subscription"),
        ("customer", "cus_standin1"),
        ("client_reference_id", fay.as_str()),
        ("line_items[0][price]", "price_members_monthly"),
        ("line_items[0][quantity]", "1"),
        ("subscription_data[metadata][user_id]", fay.as_str()),
    ] {
        assert_eq!(session.field(k), Some(v), "{k}");
    }
    let linked: (String,) =
        sqlx::query_as("SELECT customer_id FROM billing_customers WHERE user_id = $1")
            .bind(&fay)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(linked.0, "cus_standin1");
}
