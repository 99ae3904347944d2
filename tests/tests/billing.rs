//! The billing flow end to end, on both edge runtimes: a viewer subscribes (Checkout through
//! the edge, then Stripe's webhooks at the origin), a members video plays through the edge;
//! a failed renewal leaves the membership a grace of two minutes, and playback tokens expire
//! when it ends; the subscription is deleted, and the next playback request is refused.
//!
//! Stripe itself is the one part played by a stand-in (`e2e::stripe`): its API for Checkout,
//! and its webhook deliveries, signed by Python's `hmac` as Stripe signs them.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use e2e::stripe::{deliver, event, StandIn};
use e2e::{billing_env, free_port, Edge, Origin, Runtime, VIEWER_EMAIL};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

/// `billing.grace_secs` of the test's origin.
const GRACE: u64 = 120;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Asks for the members video's playback until `want` comes (the entitlement travels from
/// the webhook through the worker and the sync to the edge's KV).
async fn playback_until(c: &Client, edge: &Edge, token: &str, want: StatusCode) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = c
            .get(format!("{}/v1/videos/demo-members/playback", edge.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        if status == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "still {status} {body}: {}",
            edge.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn flow(runtime: Runtime) {
    let stripe = StandIn::start().await;
    let edge_port = free_port();
    let mut origin = Origin::start(edge_port).await;
    origin.env = billing_env(&stripe.url);
    // Two minutes of grace after a failed payment, so a membership that ends within a
    // playback token's hour is quick to make below.
    origin
        .env
        .push(("APP_BILLING__GRACE_SECS".into(), GRACE.to_string()));
    origin.restart().await;
    let edge = Edge::start(runtime, &origin, edge_port).await;
    let c = e2e::client();

    let viewer = e2e::login(&c, &edge.url, VIEWER_EMAIL).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = playback_until(&c, &edge, &viewer, StatusCode::FORBIDDEN).await;
    assert_eq!(refused["reason"], "entitlement_required");

    // Checkout through the edge (forwarded to the viewer's home region).
    let r = c
        .post(format!("{}/v1/billing/checkout", edge.url))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", edge.log());
    let session: Value = r.json().await.unwrap();
    assert!(session["url"].as_str().unwrap().starts_with(&stripe.url));
    let calls = stripe.calls();
    let user = calls[0].field("metadata[user_id]").unwrap().to_owned();
    let customer = "cus_standin1";
    assert_eq!(calls[1].field("customer"), Some(customer));

    // The buyer pays; Stripe tells the origin.
    let t = now();
    deliver(
        &c,
        &origin.url,
        event(
            "evt_e2e_checkout",
            "checkout.session.completed",
            t,
            json!({
                "id": session["id"], "object": "checkout.session", "mode": "subscription",
                "client_reference_id": user, "customer": customer, "subscription": "sub_e2e",
            }),
        ),
    )
    .await;
    let month = t + 30 * 24 * 3600;
    let sub = |status: &str, period_end: u64| {
        json!({
            "id": "sub_e2e", "object": "subscription", "customer": customer, "status": status,
            "items": {"data": [{"id": "si_e2e", "current_period_end": period_end}]},
        })
    };
    deliver(
        &c,
        &origin.url,
        event(
            "evt_e2e_created",
            "customer.subscription.created",
            t,
            sub("active", month),
        ),
    )
    .await;
    let granted = playback_until(&c, &edge, &viewer, StatusCode::OK).await;
    let exp = granted["expires_at"].as_u64().unwrap();
    assert!(
        (t + 3600..=now() + 3600).contains(&exp),
        "a month's membership: the token lives its full hour: {granted}"
    );
    let manifest = c
        .get(granted["manifest_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(manifest.status(), StatusCode::OK);

    // The renewal's payment fails: the membership now ends when the grace does, in two
    // minutes, and a playback token never outlives it once the record reaches the edge.
    let ends = t + 1 + GRACE;
    deliver(
        &c,
        &origin.url,
        event(
            "evt_e2e_payment_failed",
            "invoice.payment_failed",
            t + 1,
            json!({
                "id": "in_e2e_renewal", "object": "invoice", "customer": customer,
                "subscription": "sub_e2e",
            }),
        ),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let capped = playback_until(&c, &edge, &viewer, StatusCode::OK).await;
        if capped["expires_at"].as_u64() == Some(ends) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the token outlives the membership: {capped} (ends {ends}): {}",
            edge.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Canceled: the next playback request is refused once the record reaches the edge. A late,
    // older `updated` does not bring it back.
    deliver(
        &c,
        &origin.url,
        event(
            "evt_e2e_deleted",
            "customer.subscription.deleted",
            t + 2,
            sub("canceled", month),
        ),
    )
    .await;
    deliver(
        &c,
        &origin.url,
        event(
            "evt_e2e_late",
            "customer.subscription.updated",
            t + 1,
            sub("active", month),
        ),
    )
    .await;
    let refused = playback_until(&c, &edge, &viewer, StatusCode::FORBIDDEN).await;
    assert_eq!(refused["reason"], "entitlement_required");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let r = c
        .get(format!("{}/v1/videos/demo-members/playback", edge.url))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "the late event revived it"
    );
}

#[tokio::test]
async fn billing_on_workerd_via_wrangler_dev() {
    flow(Runtime::Wrangler).await;
}

#[tokio::test]
async fn billing_on_spin_component_in_wasmtime() {
    flow(Runtime::Spin).await;
}

#[tokio::test]
async fn billing_under_spin_up() {
    flow(Runtime::SpinUp).await;
}
