//! Shared feeds: the newest public, playable videos (`home`), a channel's (`channel:{id}`) and a
//! category's (`category:{slug}`),
//! in pages with an opaque cursor, and the versions the edge caches them under.

use serde::Serialize;
use shared_wasm::cursor::CursorKey;
use shared_wasm::record::FeedVersion;
use sqlx::AnyPool;

use crate::db::WriteTx;

use crate::error::ApiError;
use crate::outbox;

/// Most items per page.
pub const MAX_PAGE: u32 = 50;

/// Bumps the versions of `feeds` and queues them for the edge, inside the caller's transaction.
pub async fn bump(tx: &mut WriteTx, feeds: &[String]) -> sqlx::Result<()> {
    for feed in feeds {
        let version: i64 = sqlx::query_scalar(
            "INSERT INTO feed_versions (feed, version) VALUES ($1, 1)
             ON CONFLICT (feed) DO UPDATE SET version = feed_versions.version + 1 RETURNING version",
        )
        .bind(feed)
        .fetch_one(&mut **tx)
        .await?;
        let rec = FeedVersion {
            v: 1,
            feed: feed.clone(),
            version: version as u64,
        };
        outbox::enqueue(tx, &rec).await?;
    }
    Ok(())
}

/// The feeds a video appears in (trending has no version: it moves with time and likes, and
/// the edge's freshness windows bound how stale it gets).
pub fn of_video(channel: Option<&str>, category: Option<&str>) -> Vec<String> {
    let mut feeds = vec!["home".to_owned()];
    if let Some(c) = channel {
        feeds.push(format!("channel:{c}"));
    }
    if let Some(c) = category {
        feeds.push(format!("category:{c}"));
    }
    feeds
}

/// Which videos a feed page holds.
#[derive(Debug, Clone, Copy)]
pub enum Filter<'a> {
    /// Every public video.
    All,
    /// One channel's.
    Channel(&'a str),
    /// One category's.
    Category(&'a str),
}

/// One entry of a feed.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Item {
    id: String,
    title: String,
    owner_id: Option<String>,
    channel_id: Option<String>,
    duration_ms: Option<i64>,
    created_at: i64,
}

/// A page of a feed.
#[derive(Debug, Serialize)]
pub struct Page {
    items: Vec<Item>,
    /// Pass back as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

impl Page {
    /// A page of `items`, and the cursor of the next one, if any.
    pub fn new(items: Vec<Item>, next_cursor: Option<String>) -> Self {
        Self { items, next_cursor }
    }
}

/// `(created_at, id)` of the last item seen: pages never skip or repeat an item, whatever is
/// inserted meanwhile (ordering is by creation time, then id).
/// Cursors are sealed ([`shared_wasm::cursor`]), so the edge refuses a forged one itself.
pub fn decode_cursor(key: &CursorKey, cursor: &str) -> Result<(i64, String), ApiError> {
    let bad = || ApiError::BadRequest {
        code: "invalid_cursor",
        message: "cursor is not one this API returned".into(),
    };
    let text = key.open(cursor).ok_or_else(bad)?;
    let (t, id) = text.split_once(':').ok_or_else(bad)?;
    Ok((t.parse().map_err(|_| bad())?, id.to_owned()))
}

/// The cursor after an item created at `created_at` with id `id`.
pub fn encode_cursor(key: &CursorKey, created_at: i64, id: &str) -> String {
    key.seal(&format!("{created_at}:{id}"))
}

/// A page of public, ready, not taken down videos, newest first, optionally of one owner.
pub async fn page(
    db: &AnyPool,
    key: &CursorKey,
    filter: Filter<'_>,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page, ApiError> {
    let (channel, category) = match filter {
        Filter::All => (None, None),
        Filter::Channel(c) => (Some(c), None),
        Filter::Category(c) => (None, Some(c)),
    };
    let limit = limit.clamp(1, MAX_PAGE);
    let (after_t, after_id) = match cursor {
        Some(c) => decode_cursor(key, c)?,
        None => (i64::MAX, String::new()),
    };
    let mut items: Vec<Item> = sqlx::query_as(
        "SELECT id, title, owner_id, channel_id, duration_ms, created_at FROM videos
         WHERE visibility = 'public' AND state = 'ready' AND taken_down = 0
           AND ($1 IS NULL OR channel_id = $2)
           AND ($3 IS NULL OR category = $4)
           AND (created_at < $5 OR (created_at = $6 AND ($7 = '' OR id < $8)))
         ORDER BY created_at DESC, id DESC LIMIT $9",
    )
    .bind(channel)
    .bind(channel)
    .bind(category)
    .bind(category)
    .bind(after_t)
    .bind(after_t)
    .bind(&after_id)
    .bind(&after_id)
    .bind(i64::from(limit) + 1)
    .fetch_all(db)
    .await?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items
            .last()
            .map(|i| encode_cursor(key, i.created_at, &i.id))
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// How far back watch time counts towards trending.
const TRENDING_WATCH_SECS: u64 = 48 * 3600;

/// The top public videos by recent approval and recent watching: net likes weighted down
/// linearly with the video's age (a day old counts about a third of new), plus one for every
/// ten minutes watched in the last 48 hours (the analytics rollup's hourly rows). One page, no
/// cursor: the ranking moves between reads.
pub async fn trending(db: &AnyPool, limit: u32) -> Result<Page, ApiError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let now = crate::clock::now();
    let items: Vec<Item> = sqlx::query_as(
        "SELECT id, title, owner_id, channel_id, duration_ms, created_at FROM videos
         WHERE visibility = 'public' AND state = 'ready' AND taken_down = 0
         ORDER BY (likes - dislikes) * 43200.0 / (CASE WHEN $1 > created_at THEN $1 - created_at ELSE 0 END + 43200.0)
                  + COALESCE((SELECT SUM(s.watch_ms) FROM video_stats_hourly s
                              WHERE s.video_id = videos.id AND s.hour >= $3), 0) / 600000.0 DESC,
                  created_at DESC, id DESC
         LIMIT $2",
    )
    .bind(now as i64)
    .bind(i64::from(limit))
    .bind(now.saturating_sub(TRENDING_WATCH_SECS) as i64)
    .fetch_all(db)
    .await?;
    Ok(Page {
        items,
        next_cursor: None,
    })
}
