//! Entitlements to `members` videos, and their edge records. Billing writes them (Stripe
//! events); the demo seed grants one so the local stack can play a members video.

use shared_wasm::record::{Entitlement, EntitlementStatus};
use sqlx::AnyPool;

use crate::db::{enum_name, parse_enum, WriteTx};
use crate::outbox;

/// The user's entitlement, if any.
pub async fn record(
    db: impl sqlx::AnyExecutor<'_>,
    user_id: &str,
) -> anyhow::Result<Option<Entitlement>> {
    let row: Option<EntitlementRow> = sqlx::query_as(
        "SELECT tier, status, period_end, version FROM entitlements WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(db)
    .await?;
    row.map(|r| {
        Ok(Entitlement {
            v: 1,
            user: user_id.to_owned(),
            tier: r.tier,
            status: parse_enum(&r.status)?,
            period_end: r.period_end as u64,
            version: r.version as u64,
        })
    })
    .transpose()
}

#[derive(sqlx::FromRow)]
struct EntitlementRow {
    tier: String,
    status: String,
    period_end: i64,
    version: i64,
}

/// Sets a user's entitlement (bumping its version) and queues the record for the edge in the
/// same transaction. The caller wakes the outbox.
pub async fn set(
    db: &AnyPool,
    user_id: &str,
    tier: &str,
    status: EntitlementStatus,
    period_end: u64,
) -> anyhow::Result<Entitlement> {
    let mut tx = crate::db::begin_write(db).await?;
    let rec = set_in(&mut tx, user_id, tier, status, period_end).await?;
    tx.commit().await?;
    Ok(rec)
}

/// [`set`] inside the caller's transaction.
pub async fn set_in(
    tx: &mut WriteTx,
    user_id: &str,
    tier: &str,
    status: EntitlementStatus,
    period_end: u64,
) -> anyhow::Result<Entitlement> {
    sqlx::query(
        "INSERT INTO entitlements (user_id, tier, status, period_end, version) VALUES ($1, $2, $3, $4, 1)
         ON CONFLICT (user_id) DO UPDATE SET tier = excluded.tier, status = excluded.status,
             period_end = excluded.period_end, version = entitlements.version + 1",
    )
    .bind(user_id)
    .bind(tier)
    .bind(enum_name(status))
    .bind(period_end as i64)
    .execute(&mut **tx)
    .await?;
    let rec = record(&mut **tx, user_id).await?.ok_or_else(|| {
        anyhow::anyhow!("entitlement of {user_id} vanished inside its transaction")
    })?;
    outbox::enqueue(tx, &rec).await?;
    Ok(rec)
}
