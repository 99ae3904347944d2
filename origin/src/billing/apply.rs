//! What an event does. Events arrive out of order and more than once, so a subscription's
//! state only moves forward: `canceled` is final (Stripe never revives a canceled
//! subscription), an event older than the newest one applied (`created` against the row's
//! `observed_at`) changes nothing, and the paid-through time only grows. After each change the
//! user's entitlement is derived again from all their subscriptions and, if it moved, written
//! with its edge record in the same transaction.

use serde_json::{json, Value};
use shared_wasm::record::EntitlementStatus;

use crate::billing::events::Event;
use crate::db::WriteTx;
use crate::entitlements;
use crate::notifications::{self, Kind, Note};
use crate::settings::BillingSettings;

/// What happened to an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Its effect is committed.
    Applied,
    /// Older than what is stored, or about a canceled subscription: nothing to do.
    Stale,
    /// A type this platform does not act on.
    Ignored,
}

impl Outcome {
    /// As stored in `billing_events.outcome`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Stale => "stale",
            Self::Ignored => "ignored",
        }
    }
}

const CANCELED: &str = "canceled";

fn text<'a>(v: &'a Value, what: &str) -> anyhow::Result<&'a str> {
    v.as_str()
        .filter(|s| !s.is_empty() && s.len() <= 255)
        .ok_or_else(|| anyhow::anyhow!("the event's {what} is missing"))
}

/// A subscription's period end: top level in older API versions, on its items in newer ones.
fn period_end(sub: &Value) -> i64 {
    let items = sub["items"]["data"].as_array().into_iter().flatten();
    items
        .filter_map(|i| i["current_period_end"].as_i64())
        .chain(sub["current_period_end"].as_i64())
        .max()
        .unwrap_or(0)
}

/// An invoice's subscription: top level in older API versions, under `parent` in newer ones.
fn invoice_subscription(inv: &Value) -> Option<&str> {
    inv["subscription"]
        .as_str()
        .or_else(|| inv["parent"]["subscription_details"]["subscription"].as_str())
}

/// The end of the period an invoice pays for.
fn invoice_period_end(inv: &Value) -> i64 {
    let lines = inv["lines"]["data"].as_array().into_iter().flatten();
    lines
        .filter_map(|l| l["period"]["end"].as_i64())
        .max()
        .unwrap_or(0)
}

/// Keeps a paid invoice's amount, once per invoice (Stripe may send its event again).
async fn record_invoice(
    tx: &mut WriteTx,
    user: &str,
    subscription: &str,
    inv: &Value,
    created: i64,
) -> anyhow::Result<()> {
    let id = text(&inv["id"], "invoice id")?;
    let amount = inv["amount_paid"]
        .as_i64()
        .filter(|a| *a >= 0)
        .ok_or_else(|| anyhow::anyhow!("invoice {id}: no amount_paid"))?;
    let currency = text(&inv["currency"], "invoice currency")?.to_ascii_lowercase();
    let paid_at = inv["status_transitions"]["paid_at"]
        .as_i64()
        .unwrap_or(created);
    sqlx::query(
        "INSERT INTO billing_invoices (id, user_id, subscription_id, amount_minor, currency, paid_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(user)
    .bind(subscription)
    .bind(amount)
    .bind(currency)
    .bind(paid_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn user_of_customer(tx: &mut WriteTx, customer: &str) -> anyhow::Result<Option<String>> {
    let row: Option<String> =
        sqlx::query_scalar("SELECT user_id FROM billing_customers WHERE customer_id = $1")
            .bind(customer)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(row)
}

async fn user_exists(tx: &mut WriteTx, user: &str) -> anyhow::Result<bool> {
    let row: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users WHERE id = $1")
        .bind(user)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.is_some())
}

/// The user an object belongs to: through its customer, else the `user_id` the checkout put in
/// its metadata. An error (retried later) when neither is known yet.
async fn owner(tx: &mut WriteTx, obj: &Value) -> anyhow::Result<String> {
    let customer = text(&obj["customer"], "customer")?;
    if let Some(user) = user_of_customer(tx, customer).await? {
        return Ok(user);
    }
    if let Some(user) = obj["metadata"]["user_id"].as_str() {
        if user_exists(tx, user).await? {
            return Ok(user.to_owned());
        }
    }
    anyhow::bail!("customer {customer} is linked to no user")
}

struct Row {
    status: String,
    observed_at: i64,
}

async fn row(tx: &mut WriteTx, id: &str) -> anyhow::Result<Option<Row>> {
    let r: Option<(String, i64)> =
        sqlx::query_as("SELECT status, observed_at FROM billing_subscriptions WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(r.map(|(status, observed_at)| Row {
        status,
        observed_at,
    }))
}

/// Tells `user` their membership ends, when subscription `id` (`sub`) is set to end (at its
/// period's end, or at a set time) while still running; once per end date.
async fn ending_soon(
    tx: &mut WriteTx,
    user: &str,
    id: &str,
    sub: &Value,
    now: u64,
) -> anyhow::Result<()> {
    let running = matches!(sub["status"].as_str(), Some("active" | "trialing"));
    let until = match (
        sub["cancel_at"].as_i64(),
        sub["cancel_at_period_end"].as_bool(),
    ) {
        (Some(at), _) => at,
        (None, Some(true)) => period_end(sub),
        _ => return Ok(()),
    };
    if !running || until <= now as i64 {
        return Ok(());
    }
    let note = Note {
        user,
        kind: Kind::Billing,
        key: format!("ending:{id}:{until}"),
        data: json!({"event": "membership_ending", "until": until}),
    };
    notifications::notify(tx, &note, now).await?;
    Ok(())
}

/// Applies `event` inside `tx` (the caller marks the event processed in the same transaction).
pub async fn apply(
    tx: &mut WriteTx,
    cfg: &BillingSettings,
    event: &Event,
    now: u64,
) -> anyhow::Result<Outcome> {
    let obj = &event.object;
    let user = match event.kind.as_str() {
        "checkout.session.completed" => {
            let user = text(&obj["client_reference_id"], "client_reference_id")?.to_owned();
            if !user_exists(tx, &user).await? {
                anyhow::bail!("checkout for unknown user {user}");
            }
            let customer = text(&obj["customer"], "customer")?;
            sqlx::query(
                "INSERT INTO billing_customers (customer_id, user_id, created_at)
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(customer)
            .bind(&user)
            .bind(now as i64)
            .execute(&mut **tx)
            .await?;
            if let Some(sub) = obj["subscription"].as_str() {
                // Known from here on; its state comes with the subscription's own events.
                sqlx::query(
                    "INSERT INTO billing_subscriptions (id, user_id, status)
                     VALUES ($1, $2, 'incomplete') ON CONFLICT DO NOTHING",
                )
                .bind(sub)
                .bind(&user)
                .execute(&mut **tx)
                .await?;
            }
            user
        }
        kind @ ("customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted") => {
            let id = text(&obj["id"], "subscription id")?;
            let user = owner(tx, obj).await?;
            let deleted = kind == "customer.subscription.deleted";
            let status = if deleted {
                CANCELED
            } else {
                text(&obj["status"], "status")?
            };
            if let Some(r) = row(tx, id).await? {
                if r.status == CANCELED || (!deleted && event.created < r.observed_at) {
                    return Ok(Outcome::Stale);
                }
            }
            sqlx::query(
                "INSERT INTO billing_subscriptions
                     (id, user_id, status, current_period_end, payment_failed_at, observed_at)
                 VALUES ($1, $2, $3, $4, NULL, $5)
                 ON CONFLICT (id) DO UPDATE SET status = excluded.status,
                     current_period_end = CASE
                         WHEN excluded.current_period_end > billing_subscriptions.current_period_end
                         THEN excluded.current_period_end
                         ELSE billing_subscriptions.current_period_end END,
                     payment_failed_at = CASE WHEN excluded.status IN ('active', 'trialing')
                         THEN NULL ELSE billing_subscriptions.payment_failed_at END,
                     observed_at = CASE WHEN excluded.observed_at > billing_subscriptions.observed_at
                         THEN excluded.observed_at ELSE billing_subscriptions.observed_at END",
            )
            .bind(id)
            .bind(&user)
            .bind(status)
            .bind(period_end(obj))
            .bind(event.created)
            .execute(&mut **tx)
            .await?;
            if !deleted {
                ending_soon(tx, &user, id, obj, now).await?;
            }
            user
        }
        kind @ ("invoice.paid" | "invoice.payment_failed") => {
            let Some(id) = invoice_subscription(obj) else {
                return Ok(Outcome::Ignored); // a one-off invoice
            };
            let user = owner(tx, obj).await?;
            if kind == "invoice.paid" {
                // Revenue whatever became of the subscription since (creators' earnings).
                record_invoice(tx, &user, id, obj, event.created).await?;
            }
            let existing = row(tx, id).await?;
            if existing.as_ref().is_some_and(|r| r.status == CANCELED) {
                return Ok(Outcome::Stale);
            }
            let newer = existing
                .as_ref()
                .is_none_or(|r| event.created >= r.observed_at);
            if kind == "invoice.paid" {
                // Paid through the invoice's period whatever the order; the status only from
                // an event at least as new as the last one applied.
                sqlx::query(
                    "INSERT INTO billing_subscriptions
                         (id, user_id, status, current_period_end, observed_at)
                     VALUES ($1, $2, 'active', $3, $4)
                     ON CONFLICT (id) DO UPDATE SET
                         current_period_end = CASE
                             WHEN excluded.current_period_end > billing_subscriptions.current_period_end
                             THEN excluded.current_period_end
                             ELSE billing_subscriptions.current_period_end END,
                         status = CASE WHEN $5 THEN 'active' ELSE billing_subscriptions.status END,
                         payment_failed_at = CASE WHEN $5 THEN NULL
                             ELSE billing_subscriptions.payment_failed_at END,
                         observed_at = CASE WHEN $5 THEN excluded.observed_at
                             ELSE billing_subscriptions.observed_at END",
                )
                .bind(id)
                .bind(&user)
                .bind(invoice_period_end(obj))
                .bind(event.created)
                .bind(newer)
                .execute(&mut **tx)
                .await?;
            } else {
                if !newer {
                    return Ok(Outcome::Stale);
                }
                // The grace runs from the first failure of the run.
                sqlx::query(
                    "INSERT INTO billing_subscriptions
                         (id, user_id, status, payment_failed_at, observed_at)
                     VALUES ($1, $2, 'past_due', $3, $3)
                     ON CONFLICT (id) DO UPDATE SET status = 'past_due',
                         payment_failed_at = COALESCE(billing_subscriptions.payment_failed_at,
                                                      excluded.payment_failed_at),
                         observed_at = excluded.observed_at",
                )
                .bind(id)
                .bind(&user)
                .bind(event.created)
                .execute(&mut **tx)
                .await?;
                // Once per invoice: Stripe's retries of one invoice fail under its id.
                let invoice = text(&obj["id"], "invoice id")?;
                let note = Note {
                    user: &user,
                    kind: Kind::Billing,
                    key: format!("payment_failed:{invoice}"),
                    data: json!({"event": "payment_failed"}),
                };
                notifications::notify(tx, &note, now).await?;
            }
            user
        }
        _ => return Ok(Outcome::Ignored),
    };
    derive_entitlement(tx, cfg, &user, now).await?;
    Ok(Outcome::Applied)
}

/// Until when a subscription grants access: its paid-through time plus the grace (the renewal
/// may land a little after the period ends); after a failed payment, the grace from the first
/// failure; nothing once canceled, unpaid or never paid.
fn access_until(status: &str, period_end: i64, failed_at: Option<i64>, grace: i64) -> Option<i64> {
    match status {
        "active" | "trialing" => Some(period_end + grace),
        "past_due" => Some(failed_at.unwrap_or(period_end) + grace),
        _ => None,
    }
}

/// Writes the user's entitlement (and its edge record) if what the subscriptions grant moved.
async fn derive_entitlement(
    tx: &mut WriteTx,
    cfg: &BillingSettings,
    user: &str,
    now: u64,
) -> anyhow::Result<()> {
    #[derive(sqlx::FromRow)]
    struct Sub {
        status: String,
        current_period_end: i64,
        payment_failed_at: Option<i64>,
    }
    let subs: Vec<Sub> = sqlx::query_as(
        "SELECT status, current_period_end, payment_failed_at FROM billing_subscriptions
         WHERE user_id = $1",
    )
    .bind(user)
    .fetch_all(&mut **tx)
    .await?;
    let best = subs
        .iter()
        .filter_map(|s| {
            access_until(
                &s.status,
                s.current_period_end,
                s.payment_failed_at,
                cfg.grace_secs as i64,
            )
        })
        .max();
    let (status, until) = match best {
        Some(t) if t > now as i64 => (EntitlementStatus::Active, t as u64),
        Some(t) => (EntitlementStatus::Inactive, t.max(0) as u64),
        None => (EntitlementStatus::Inactive, now),
    };
    let current = entitlements::record(&mut **tx, user).await?;
    let unchanged = match &current {
        None => status == EntitlementStatus::Inactive,
        // Inactive stays inactive: no new record for every event of a lapsed user.
        Some(c) if status == EntitlementStatus::Inactive => c.status == status,
        Some(c) => c.status == status && c.tier == cfg.tier && c.period_end == until,
    };
    if !unchanged {
        entitlements::set_in(tx, user, &cfg.tier, status, until).await?;
    }
    Ok(())
}
