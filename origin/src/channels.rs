//! Channels: a creator has one or more, each video belongs to one, and the channel feed and
//! subscriptions are per channel. A creator's first video without a channel named gets their
//! default channel (the oldest, made on demand).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use sqlx::AnyPool;

use crate::clock::now;
use crate::db::WriteTx;
use crate::error::ApiError;
use crate::keys::random_bytes;

/// A channel as the API shows it.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Channel {
    /// `ch_…`.
    pub id: String,
    /// The creator.
    pub owner_id: String,
    /// Shown name.
    pub name: String,
    /// About the channel.
    pub description: String,
    /// Unix seconds.
    pub created_at: i64,
}

const COLUMNS: &str = "id, owner_id, name, description, created_at";

fn new_id() -> String {
    format!("ch_{}", URL_SAFE_NO_PAD.encode(random_bytes::<9>()))
}

/// Makes a channel owned by `owner`, unless they have `max` already (`None`).
pub async fn create(
    db: &AnyPool,
    owner: &str,
    name: &str,
    description: &str,
    max: usize,
) -> Result<Option<Channel>, ApiError> {
    let mut tx = db.begin().await?;
    // A write first: it locks the owner's row on PostgreSQL and takes SQLite's write lock, so
    // concurrent creations by one owner count and insert one after the other and the cap holds.
    sqlx::query("UPDATE users SET role = role WHERE id = $1")
        .bind(owner)
        .execute(&mut *tx)
        .await?;
    let have: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM channels WHERE owner_id = $1")
        .bind(owner)
        .fetch_one(&mut *tx)
        .await?;
    if have >= max as i64 {
        return Ok(None);
    }
    let sql = format!(
        "INSERT INTO channels (id, owner_id, name, description, created_at, ordinal)
         VALUES ($1, $2, $3, $4, $5,
                 (SELECT COALESCE(MAX(ordinal), 0) + 1 FROM channels WHERE owner_id = $2))
         RETURNING {COLUMNS}"
    );
    let channel = sqlx::query_as(&sql)
        .bind(new_id())
        .bind(owner)
        .bind(name)
        .bind(description)
        .bind(now() as i64)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(channel))
}

/// One channel.
pub async fn get(db: &AnyPool, id: &str) -> Result<Option<Channel>, ApiError> {
    let sql = format!("SELECT {COLUMNS} FROM channels WHERE id = $1");
    Ok(sqlx::query_as(&sql).bind(id).fetch_optional(db).await?)
}

/// A creator's channels, first made (the default) first.
pub async fn of_owner(db: &AnyPool, owner: &str) -> Result<Vec<Channel>, ApiError> {
    let sql = format!("SELECT {COLUMNS} FROM channels WHERE owner_id = $1 ORDER BY ordinal, id");
    Ok(sqlx::query_as(&sql).bind(owner).fetch_all(db).await?)
}

/// How many subscribe to a channel.
pub async fn subscribers(db: &AnyPool, id: &str) -> Result<i64, ApiError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM subscriptions WHERE channel_id = $1")
        .bind(id)
        .fetch_one(db)
        .await?;
    Ok(n)
}

/// `owner`'s default channel, made (named after their display name) if they have none yet.
/// Inside the caller's transaction, so a video and its first channel appear together.
pub async fn default_for(tx: &mut WriteTx, owner: &str) -> sqlx::Result<String> {
    let first: Option<String> = sqlx::query_scalar(
        "SELECT id FROM channels WHERE owner_id = $1 ORDER BY ordinal, id LIMIT 1",
    )
    .bind(owner)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(id) = first {
        return Ok(id);
    }
    let id = new_id();
    sqlx::query(
        "INSERT INTO channels (id, owner_id, name, created_at, ordinal)
         SELECT $1, id, CASE WHEN display_name = '' THEN 'Channel' ELSE display_name END, $2, 1
         FROM users WHERE id = $3",
    )
    .bind(&id)
    .bind(now() as i64)
    .bind(owner)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// Renames or re-describes a channel; `None` fields stay.
pub async fn update(
    db: &AnyPool,
    id: &str,
    name: Option<&str>,
    description: Option<&str>,
) -> Result<Option<Channel>, ApiError> {
    let sql = format!(
        "UPDATE channels SET name = COALESCE($1, name), description = COALESCE($2, description)
         WHERE id = $3 RETURNING {COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(name)
        .bind(description)
        .bind(id)
        .fetch_optional(db)
        .await?)
}

/// Deletes an empty channel (its subscriptions go with it) and bumps its feed, so the edge
/// stops serving a cached page of it. A channel with videos is refused: move or delete them
/// first, so no video leaves its channel behind its owner's back.
pub async fn delete(db: &AnyPool, id: &str) -> Result<bool, ApiError> {
    let mut tx = crate::db::begin_write(db).await?;
    let done = sqlx::query(
        "DELETE FROM channels WHERE id = $1
           AND NOT EXISTS (SELECT 1 FROM videos WHERE channel_id = $1)",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        drop(tx);
        if get(db, id).await?.is_some() {
            return Err(ApiError::conflict(
                "channel_not_empty",
                "the channel still has videos",
            ));
        }
        return Ok(false);
    }
    crate::feeds::bump(&mut tx, &[format!("channel:{id}")]).await?;
    tx.commit().await?;
    Ok(true)
}
