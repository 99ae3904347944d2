//! Comments, reactions and subscriptions.
//!
//! Reaction counts live on the target row and change in the same transaction as the reaction,
//! whose first statement is a write: SQLite then takes the write lock at once (waiting on the
//! busy timeout) instead of failing to upgrade a read, so concurrent reactions serialise and the
//! counts stay exact.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use serde_json::json;
use sqlx::{AnyConnection, AnyPool};

use shared_wasm::cursor::CursorKey;
use shared_wasm::jwt::{AccessClaims, Role};
use shared_wasm::record::{VideoState, Visibility};
use shared_wasm::UnixTime;

use crate::clock::now;
use crate::db::parse_enum;
use crate::error::ApiError;
use crate::keys::random_bytes;
use crate::notifications::{self, Kind, Note};
use crate::{entitlements, feeds};

/// Refuses comments and reactions on a video its viewer may not watch: the rules playback
/// follows at the edge (a private video is not found, a taken-down one is withheld, a members
/// one needs an active membership, one not yet ready has nothing to talk about), with its owner
/// and admins exempt as for the video's own management. `viewer`: `None` when anonymous.
pub async fn video_rules(
    db: &AnyPool,
    video: &str,
    viewer: Option<&AccessClaims>,
) -> Result<(), ApiError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        owner_id: Option<String>,
        visibility: String,
        state: String,
        taken_down: i64,
    }
    let row: Option<Row> =
        sqlx::query_as("SELECT owner_id, visibility, state, taken_down FROM videos WHERE id = $1")
            .bind(video)
            .fetch_optional(db)
            .await?;
    let Row {
        owner_id: owner,
        visibility,
        state,
        taken_down,
    } = row.ok_or(ApiError::NotFound("video"))?;
    let exempt = viewer.is_some_and(|v| {
        v.role >= Role::Moderator || (v.role >= Role::Creator && owner.as_deref() == Some(&v.sub))
    });
    if exempt {
        return Ok(());
    }
    match parse_enum::<Visibility>(&visibility)? {
        Visibility::Private => return Err(ApiError::NotFound("video")),
        _ if taken_down != 0 => {
            return Err(ApiError::legal(
                "taken_down",
                "this video has been taken down",
            ))
        }
        Visibility::Members => {
            let viewer = viewer.ok_or(ApiError::unauthorized(
                "unauthorized",
                "this video is for members; log in",
            ))?;
            let active = entitlements::record(db, &viewer.sub)
                .await?
                .is_some_and(|e| e.active_at(UnixTime(now())));
            if !active {
                return Err(ApiError::forbidden(
                    "entitlement_required",
                    "this video needs an active membership",
                ));
            }
        }
        Visibility::Public => {}
    }
    if parse_enum::<VideoState>(&state)? != VideoState::Ready {
        return Err(ApiError::conflict(
            "not_ready",
            "this video is not playable yet",
        ));
    }
    Ok(())
}

/// Who wrote a live comment and where.
pub struct CommentRef {
    /// Its author; `None` if the author is gone.
    pub author: Option<String>,
    /// The video it is on.
    pub video: String,
}

/// A live comment's author and video; 404 if there is none.
pub async fn comment_ref(db: &AnyPool, id: &str) -> Result<CommentRef, ApiError> {
    let row: Option<(Option<String>, String)> =
        sqlx::query_as("SELECT author_id, video_id FROM comments WHERE id = $1 AND deleted = 0")
            .bind(id)
            .fetch_optional(db)
            .await?;
    let (author, video) = row.ok_or(ApiError::NotFound("comment"))?;
    Ok(CommentRef { author, video })
}

/// What a reaction is on.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A video.
    Video(&'a str),
    /// A comment.
    Comment(&'a str),
}

impl Target<'_> {
    fn key(&self) -> String {
        match self {
            Self::Video(id) => format!("video:{id}"),
            Self::Comment(id) => format!("comment:{id}"),
        }
    }

    fn table(&self) -> &'static str {
        match self {
            Self::Video(_) => "videos",
            Self::Comment(_) => "comments",
        }
    }

    fn id(&self) -> &str {
        match self {
            Self::Video(id) | Self::Comment(id) => id,
        }
    }
}

/// Counts after a reaction.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Likes.
    pub likes: i64,
    /// Dislikes.
    pub dislikes: i64,
}

/// Sets the user's reaction on `target` (1 like, -1 dislike, 0 none); `None` if the target does
/// not exist.
pub async fn react(
    db: &AnyPool,
    user: &str,
    target: Target<'_>,
    value: i8,
) -> Result<Option<Counts>, ApiError> {
    let key = target.key();
    let mut tx = db.begin().await?;
    // A write first: on SQLite it takes the write lock at once (a read first would fail to
    // upgrade under contention), on PostgreSQL it locks the target's row, so two reactions of
    // one user on one target never both see "no reaction yet".
    let lock = format!("UPDATE {} SET likes = likes WHERE id = $1", target.table());
    let found = sqlx::query(&lock)
        .bind(target.id())
        .execute(&mut *tx)
        .await?;
    if found.rows_affected() == 0 {
        return Ok(None);
    }
    let old: Option<i64> = sqlx::query_scalar(
        "DELETE FROM reactions WHERE user_id = $1 AND target = $2 RETURNING value",
    )
    .bind(user)
    .bind(&key)
    .fetch_optional(&mut *tx)
    .await?;
    let old = old.unwrap_or(0);
    if value != 0 {
        sqlx::query("INSERT INTO reactions (user_id, target, value) VALUES ($1, $2, $3)")
            .bind(user)
            .bind(&key)
            .bind(i64::from(value))
            .execute(&mut *tx)
            .await?;
    }
    let new = i64::from(value);
    if let (Target::Comment(comment), 1, false) = (target, new, old == 1) {
        liked(&mut tx, user, comment).await?;
    }
    let (dl, dd) = (
        i64::from(new == 1) - i64::from(old == 1),
        i64::from(new == -1) - i64::from(old == -1),
    );
    // The table name comes from the enum, never from input.
    let sql = format!(
        "UPDATE {} SET likes = likes + $1, dislikes = dislikes + $2 WHERE id = $3
         RETURNING likes, dislikes",
        target.table()
    );
    let counts: Option<(i64, i64)> = sqlx::query_as(&sql)
        .bind(dl)
        .bind(dd)
        .bind(target.id())
        .fetch_optional(&mut *tx)
        .await?;
    let Some((likes, dislikes)) = counts else {
        return Ok(None); // dropped: the reaction rows roll back with it
    };
    tx.commit().await?;
    Ok(Some(Counts { likes, dislikes }))
}

/// A comment as the API shows it.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Comment {
    id: String,
    video_id: String,
    author_id: Option<String>,
    body: String,
    created_at: i64,
    edited_at: Option<i64>,
    /// The comment it answers, if it is a reply.
    parent_id: Option<String>,
    /// Stored as 0/1: the Any driver decodes no booleans from SQLite.
    #[serde(serialize_with = "crate::db::flag")]
    deleted: i64,
    likes: i64,
    dislikes: i64,
}

/// A page of comments.
#[derive(Debug, Serialize)]
pub struct CommentPage {
    items: Vec<Comment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

const COMMENT_COLUMNS: &str =
    "id, video_id, author_id, body, created_at, edited_at, parent_id, deleted, likes, dislikes";

/// Longest part of a reply a notification quotes.
const EXCERPT: usize = 120;

/// Adds a comment, or a reply to comment `reply_to` of the same video (its author is told);
/// `None` if the video does not exist, 404 if the comment answered is not a live one of it.
pub async fn add_comment(
    db: &AnyPool,
    video: &str,
    author: &str,
    body: &str,
    reply_to: Option<&str>,
) -> Result<Option<Comment>, ApiError> {
    let id = format!("c_{}", URL_SAFE_NO_PAD.encode(random_bytes::<9>()));
    let at = now();
    let sql = format!(
        "INSERT INTO comments (id, video_id, author_id, body, created_at, parent_id)
         SELECT $1, id, $2, $3, $4, $5 FROM videos WHERE id = $6 RETURNING {COMMENT_COLUMNS}"
    );
    // The comment answered must be a live one of the same video. Read before the transaction,
    // whose first statement is then a write (on SQLite a read first could not upgrade under
    // contention); a reply to a comment deleted in between stays a reply to a deleted comment.
    let parent = match reply_to {
        Some(parent) => Some(
            comment_about(&mut *db.acquire().await?, parent)
                .await?
                .filter(|a| a.video == video)
                .ok_or(ApiError::NotFound("comment"))?,
        ),
        None => None,
    };
    let mut tx = db.begin().await?;
    let Some(comment) = sqlx::query_as::<_, Comment>(&sql)
        .bind(&id)
        .bind(author)
        .bind(body)
        .bind(at as i64)
        .bind(reply_to)
        .bind(video)
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Ok(None);
    };
    let to = parent
        .as_ref()
        .and_then(|p| p.author.as_deref())
        .filter(|a| *a != author);
    if let (Some(to), Some(parent)) = (to, &parent) {
        let note = Note {
            user: to,
            kind: Kind::CommentReply,
            key: format!("reply:{id}"),
            data: json!({
                "video": video,
                "title": parent.title,
                "comment": id,
                "parent": reply_to,
                "actor": author,
                "actor_name": display_name(&mut tx, author).await?,
                "excerpt": body.chars().take(EXCERPT).collect::<String>(),
            }),
        };
        notifications::notify(&mut tx, &note, at).await?;
    }
    tx.commit().await?;
    Ok(Some(comment))
}

/// A live comment's author, video and the video's title.
struct About {
    author: Option<String>,
    video: String,
    title: String,
}

async fn comment_about(conn: &mut AnyConnection, id: &str) -> sqlx::Result<Option<About>> {
    let row: Option<(Option<String>, String, String)> = sqlx::query_as(
        "SELECT c.author_id, c.video_id, v.title FROM comments c
         JOIN videos v ON v.id = c.video_id WHERE c.id = $1 AND c.deleted = 0",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(author, video, title)| About {
        author,
        video,
        title,
    }))
}

/// What others see as `user`'s name: their display name, or "Someone" if they gave none.
async fn display_name(conn: &mut AnyConnection, user: &str) -> sqlx::Result<String> {
    let name: Option<String> = sqlx::query_scalar("SELECT display_name FROM users WHERE id = $1")
        .bind(user)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "Someone".into()))
}

/// Tells a comment's author of `user`'s like, once per liker and comment whatever they take back
/// and give again.
async fn liked(conn: &mut AnyConnection, user: &str, comment: &str) -> sqlx::Result<()> {
    let Some(about) = comment_about(conn, comment).await? else {
        return Ok(());
    };
    let Some(to) = about.author.as_deref().filter(|a| *a != user) else {
        return Ok(());
    };
    let note = Note {
        user: to,
        kind: Kind::CommentLike,
        key: format!("like:{comment}:{user}"),
        data: json!({
            "video": about.video,
            "title": about.title,
            "comment": comment,
            "actor": user,
            "actor_name": display_name(conn, user).await?,
        }),
    };
    notifications::notify(conn, &note, now()).await?;
    Ok(())
}

/// Replaces a comment's text.
pub async fn edit_comment(db: &AnyPool, id: &str, body: &str) -> Result<Comment, ApiError> {
    let sql = format!(
        "UPDATE comments SET body = $1, edited_at = $2 WHERE id = $3 AND deleted = 0
         RETURNING {COMMENT_COLUMNS}"
    );
    sqlx::query_as(&sql)
        .bind(body)
        .bind(now() as i64)
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or(ApiError::NotFound("comment"))
}

/// Removes a comment's text (the row stays so replies and counts keep their place).
pub async fn delete_comment(db: &AnyPool, id: &str) -> Result<(), ApiError> {
    sqlx::query("UPDATE comments SET body = '', deleted = 1 WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// A page of a video's comments, oldest first, by `(created_at, id)`.
pub async fn comments(
    db: &AnyPool,
    key: &CursorKey,
    video: &str,
    cursor: Option<&str>,
    limit: u32,
) -> Result<CommentPage, ApiError> {
    let (after_t, after_id) = match cursor {
        Some(c) => feeds::decode_cursor(key, c)?,
        None => (i64::MIN, String::new()),
    };
    let limit = limit.clamp(1, 100);
    let sql = format!(
        "SELECT {COMMENT_COLUMNS} FROM comments WHERE video_id = $1
           AND (created_at > $2 OR (created_at = $3 AND id > $4))
         ORDER BY created_at, id LIMIT $5"
    );
    let mut items: Vec<Comment> = sqlx::query_as(&sql)
        .bind(video)
        .bind(after_t)
        .bind(after_t)
        .bind(&after_id)
        .bind(i64::from(limit) + 1)
        .fetch_all(db)
        .await?;
    let next_cursor = (items.len() > limit as usize).then(|| {
        items.truncate(limit as usize);
        let last = items.last().expect("limit is at least 1");
        feeds::encode_cursor(key, last.created_at, &last.id)
    });
    Ok(CommentPage { items, next_cursor })
}

/// Subscribes `user` to `channel` (idempotent); `false` if there is no such channel.
pub async fn subscribe(db: &AnyPool, user: &str, channel: &str) -> Result<bool, ApiError> {
    let done = sqlx::query(
        "INSERT INTO subscriptions (user_id, channel_id, created_at)
         SELECT $1, id, $2 FROM channels WHERE id = $3
         ON CONFLICT DO NOTHING",
    )
    .bind(user)
    .bind(now() as i64)
    .bind(channel)
    .execute(db)
    .await?;
    if done.rows_affected() == 1 {
        return Ok(true);
    }
    // Already subscribed, or no such channel.
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM subscriptions WHERE user_id = $1 AND channel_id = $2")
            .bind(user)
            .bind(channel)
            .fetch_optional(db)
            .await?;
    Ok(exists.is_some())
}

/// Ends a subscription (idempotent).
pub async fn unsubscribe(db: &AnyPool, user: &str, channel: &str) -> Result<(), ApiError> {
    sqlx::query("DELETE FROM subscriptions WHERE user_id = $1 AND channel_id = $2")
        .bind(user)
        .bind(channel)
        .execute(db)
        .await?;
    Ok(())
}

/// The channels `user` follows, oldest subscription first.
pub async fn subscriptions(db: &AnyPool, user: &str) -> Result<Vec<String>, ApiError> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT channel_id FROM subscriptions WHERE user_id = $1 ORDER BY created_at, channel_id",
    )
    .bind(user)
    .fetch_all(db)
    .await?;
    Ok(rows)
}
