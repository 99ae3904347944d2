//! Checkout: the user's Stripe customer (made once, then linked to the user) and a Checkout
//! Session in subscription mode for the configured price.

use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::Value;
use sqlx::AnyPool;

use crate::clock::now;
use crate::error::ApiError;
use crate::settings::BillingSettings;

/// What the client opens to pay.
#[derive(Debug, serde::Serialize)]
pub struct Session {
    /// `cs_…`.
    pub id: String,
    /// Stripe's hosted payment page.
    pub url: String,
}

fn unavailable() -> ApiError {
    ApiError::unavailable("billing_unavailable", "billing is not configured")
}

fn upstream(what: &str, e: impl std::fmt::Display) -> ApiError {
    // Stripe's own message goes to the log, never to the client.
    tracing::warn!(error = %e, "stripe {what} failed");
    ApiError::bad_gateway(
        "billing_upstream",
        "the payment provider did not answer as expected",
    )
}

async fn post(
    http: &reqwest::Client,
    cfg: &BillingSettings,
    path: &str,
    form: &[(&str, &str)],
    idempotency_key: Option<&str>,
) -> Result<Value, ApiError> {
    let (Some(base), Some(key)) = (cfg.api_base.as_deref(), cfg.secret_key.as_ref()) else {
        return Err(unavailable());
    };
    let mut req = http
        .post(format!("{}{path}", base.trim_end_matches('/')))
        .timeout(Duration::from_secs(10))
        .bearer_auth(key.expose_secret())
        .form(form);
    if let Some(k) = idempotency_key {
        req = req.header("idempotency-key", k);
    }
    let resp = req.send().await.map_err(|e| upstream(path, e))?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| upstream(path, e))?;
    let body: Value = serde_json::from_slice(&bytes).map_err(|e| upstream(path, e))?;
    if !status.is_success() {
        return Err(upstream(
            path,
            format!("{status}: {}", body["error"]["message"]),
        ));
    }
    Ok(body)
}

/// The user's customer id, made (and linked) on first use.
async fn customer(
    db: &AnyPool,
    http: &reqwest::Client,
    cfg: &BillingSettings,
    user: &str,
    email: &str,
) -> Result<String, ApiError> {
    let linked: Option<String> =
        sqlx::query_scalar("SELECT customer_id FROM billing_customers WHERE user_id = $1")
            .bind(user)
            .fetch_optional(db)
            .await?;
    if let Some(id) = linked {
        return Ok(id);
    }
    // The idempotency key makes two racing first checkouts get the same customer.
    let made = post(
        http,
        cfg,
        "/v1/customers",
        &[("email", email), ("metadata[user_id]", user)],
        Some(&format!("customer-{user}")),
    )
    .await?;
    let id = made["id"]
        .as_str()
        .ok_or_else(|| upstream("customer", "no id"))?;
    sqlx::query(
        "INSERT INTO billing_customers (customer_id, user_id, created_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(user)
    .bind(now() as i64)
    .execute(db)
    .await?;
    Ok(id.to_owned())
}

/// A Checkout Session for `user`'s subscription, asked of Stripe through `http` (the process's
/// one client: connections and TLS sessions reused).
pub async fn start(
    db: &AnyPool,
    http: &reqwest::Client,
    cfg: &BillingSettings,
    user: &str,
    email: &str,
) -> Result<Session, ApiError> {
    let (Some(price), Some(success), Some(cancel)) = (
        cfg.price.as_deref(),
        cfg.success_url.as_deref(),
        cfg.cancel_url.as_deref(),
    ) else {
        return Err(unavailable());
    };
    let customer = customer(db, http, cfg, user, email).await?;
    let session = post(
        http,
        cfg,
        "/v1/checkout/sessions",
        &[
            ("mode", "subscription"),
            ("customer", &customer),
            ("client_reference_id", user),
            ("line_items[0][price]", price),
            ("line_items[0][quantity]", "1"),
            ("success_url", success),
            ("cancel_url", cancel),
            ("subscription_data[metadata][user_id]", user),
        ],
        None,
    )
    .await?;
    match (session["id"].as_str(), session["url"].as_str()) {
        (Some(id), Some(url)) => Ok(Session {
            id: id.to_owned(),
            url: url.to_owned(),
        }),
        _ => Err(upstream("checkout session", "no id or url")),
    }
}
