//! The app's notification list: newest first, paged by id, with the unread count and an `ETag`
//! that changes when either does, so a client polls cheaply (`If-None-Match` → 304).

use serde::Serialize;
use serde_json::Value;
use sqlx::AnyPool;

use super::text::describe;
use super::Kind;

/// The unread count stops here ("99+"): counting further would read every unread row.
pub const UNREAD_CAP: i64 = 100;

/// One notification as the app shows it.
#[derive(Debug, Serialize)]
pub struct Item {
    /// Its place (newer is higher).
    pub id: i64,
    /// What it tells of.
    pub kind: String,
    /// Ids, titles and names as they were.
    pub data: Value,
    /// What it says ([`describe`]).
    pub text: String,
    /// Where it leads: a path on the edge.
    pub link: String,
    /// When it was written.
    pub created_at: i64,
    /// Whether the user has read it.
    pub read: bool,
}

/// A page of the list.
#[derive(Debug, Serialize)]
pub struct Page {
    /// Newest first.
    pub items: Vec<Item>,
    /// Unread notifications, at most [`UNREAD_CAP`].
    pub unread: i64,
    /// The `before` of the next page, if there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

/// What the list looks like now, in two numbers: the newest id and the unread count. The
/// `ETag` of the first page is made of them.
pub async fn version(db: &AnyPool, user: &str) -> sqlx::Result<(i64, i64)> {
    let newest: Option<i64> =
        sqlx::query_scalar("SELECT MAX(id) FROM notifications WHERE user_id = $1 AND in_app = 1")
            .bind(user)
            .fetch_one(db)
            .await?;
    Ok((newest.unwrap_or(0), unread(db, user).await?))
}

/// Unread notifications of `user`, at most [`UNREAD_CAP`].
pub async fn unread(db: &AnyPool, user: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT 1 FROM notifications
             WHERE user_id = $1 AND in_app = 1 AND read_at IS NULL LIMIT $2) AS u",
    )
    .bind(user)
    .bind(UNREAD_CAP)
    .fetch_one(db)
    .await
}

/// Up to `limit` notifications of `user` older than `before` (all when `None`).
pub async fn page(db: &AnyPool, user: &str, before: Option<i64>, limit: u32) -> sqlx::Result<Page> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: i64,
        kind: String,
        data: String,
        created_at: i64,
        read_at: Option<i64>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, kind, data, created_at, read_at FROM notifications
         WHERE user_id = $1 AND in_app = 1 AND id < $2 ORDER BY id DESC LIMIT $3",
    )
    .bind(user)
    .bind(before.unwrap_or(i64::MAX))
    .bind(i64::from(limit) + 1)
    .fetch_all(db)
    .await?;
    let more = rows.len() > limit as usize;
    let items: Vec<Item> = rows
        .into_iter()
        .take(limit as usize)
        .map(|r| {
            // Written by us as JSON, of a kind the schema allows.
            let data = serde_json::from_str(&r.data).unwrap_or(Value::Null);
            let (text, link) = Kind::parse(&r.kind)
                .map(|k| describe(k, &data))
                .unwrap_or_default();
            Item {
                id: r.id,
                kind: r.kind,
                data,
                text,
                link,
                created_at: r.created_at,
                read: r.read_at.is_some(),
            }
        })
        .collect();
    let next_before = more.then(|| items.last().map(|i| i.id)).flatten();
    Ok(Page {
        items,
        unread: unread(db, user).await?,
        next_before,
    })
}

/// What to mark read.
#[derive(Debug, Clone)]
pub enum Mark {
    /// Everything up to and including this id.
    UpTo(i64),
    /// These.
    Ids(Vec<i64>),
}

/// Marks `user`'s notifications read; returns the unread count after.
pub async fn mark_read(db: &AnyPool, user: &str, mark: &Mark, now: u64) -> sqlx::Result<i64> {
    match mark {
        Mark::UpTo(id) => {
            sqlx::query(
                "UPDATE notifications SET read_at = $1
                 WHERE user_id = $2 AND in_app = 1 AND read_at IS NULL AND id <= $3",
            )
            .bind(now as i64)
            .bind(user)
            .bind(*id)
            .execute(db)
            .await?;
        }
        Mark::Ids(ids) => {
            let mut tx = db.begin().await?;
            for id in ids {
                sqlx::query(
                    "UPDATE notifications SET read_at = $1
                     WHERE user_id = $2 AND read_at IS NULL AND id = $3",
                )
                .bind(now as i64)
                .bind(user)
                .bind(*id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        }
    }
    unread(db, user).await
}
