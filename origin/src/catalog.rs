//! What viewers read about videos before they play one: a video's public details, search over
//! titles, descriptions and tags (the database's own full-text engine), the categories in use
//! and a creator's public profile.

use serde::Serialize;
use shared_wasm::cursor::CursorKey;
use shared_wasm::jwt::{AccessClaims, Role};
use shared_wasm::search;
use sqlx::AnyPool;

use crate::db::Backend;
use crate::error::ApiError;
use crate::feeds::{Item, Page, MAX_PAGE};

/// One video as its watch page shows it.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Details {
    id: String,
    title: String,
    description: String,
    #[serde(serialize_with = "tag_list")]
    tags: String,
    category: Option<String>,
    visibility: String,
    state: String,
    duration_ms: Option<i64>,
    created_at: i64,
    owner_id: Option<String>,
    owner_name: Option<String>,
    channel_id: Option<String>,
    channel_name: Option<String>,
    subscribers: i64,
    likes: i64,
    dislikes: i64,
    comments: i64,
    /// Where the edge serves the poster (ready videos only).
    #[sqlx(skip)]
    poster_url: Option<String>,
    /// Whether an admin took it down: only its owner and admins ever see it true (anyone else
    /// gets 451), and the admin page shows it beside the take-down switch.
    #[serde(serialize_with = "flag")]
    taken_down: i64,
    /// Why, as the viewer is told.
    #[serde(skip)]
    takedown_reason: Option<String>,
    /// What the viewer who asked has done here (only when a viewer asked), so a watch page
    /// shows its buttons pressed.
    #[sqlx(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    viewer: Option<ViewerState>,
}

/// The asking viewer's own reaction to a video and subscription to its channel.
#[derive(Debug, Serialize)]
pub struct ViewerState {
    /// `like`, `dislike` or `none`.
    reaction: &'static str,
    /// Whether the viewer is subscribed to the video's channel.
    subscribed: bool,
}

fn flag<S: serde::Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bool(*v != 0)
}

fn tag_list<S: serde::Serializer>(tags: &str, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(tags.split(',').filter(|t| !t.is_empty()))
}

/// The video's details for `viewer` (`None`: anonymous). A private or unfinished video is not
/// found except by its owner or an admin, as for its management; a taken-down one is withheld
/// (451), so the page can say why. A members video's details are public: its page invites the
/// viewer to sign in or join.
pub async fn details(
    db: &AnyPool,
    id: &str,
    viewer: Option<&AccessClaims>,
) -> Result<Details, ApiError> {
    let found: Option<Details> = sqlx::query_as(
        "SELECT v.id, v.title, v.description, v.tags, v.category, v.visibility, v.state,
                v.duration_ms, v.created_at, v.owner_id, u.display_name AS owner_name,
                v.channel_id, c.name AS channel_name,
                (SELECT COUNT(*) FROM subscriptions s WHERE s.channel_id = v.channel_id)
                    AS subscribers,
                v.likes, v.dislikes,
                (SELECT COUNT(*) FROM comments m WHERE m.video_id = v.id AND m.deleted = 0)
                    AS comments,
                v.taken_down, v.takedown_reason
         FROM videos v
         LEFT JOIN users u ON u.id = v.owner_id
         LEFT JOIN channels c ON c.id = v.channel_id
         WHERE v.id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?;
    let mut video = found.ok_or(ApiError::NotFound("video"))?;
    // Moderators see what they review: private, unfinished and taken-down videos too.
    let manager = viewer.is_some_and(|v| {
        v.role >= Role::Moderator
            || (v.role >= Role::Creator && video.owner_id.as_deref() == Some(v.sub.as_str()))
    });
    if !manager {
        if video.visibility == "private" || video.state != "ready" {
            return Err(ApiError::NotFound("video"));
        }
        if video.taken_down != 0 {
            return Err(ApiError::TakenDown(
                video
                    .takedown_reason
                    .take()
                    .unwrap_or_else(|| "this video has been taken down".into()),
            ));
        }
    }
    if video.state == "ready" {
        video.poster_url = Some(format!("/posters/{}.jpg", video.id));
    }
    if let Some(v) = viewer {
        video.viewer = Some(viewer_state(db, &video, &v.sub).await?);
    }
    Ok(video)
}

async fn viewer_state(db: &AnyPool, video: &Details, user: &str) -> Result<ViewerState, ApiError> {
    let reaction: Option<i64> =
        sqlx::query_scalar("SELECT value FROM reactions WHERE user_id = $1 AND target = $2")
            .bind(user)
            .bind(format!("video:{}", video.id))
            .fetch_optional(db)
            .await?;
    let subscribed = match &video.channel_id {
        Some(channel) => {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM subscriptions WHERE user_id = $1 AND channel_id = $2",
            )
            .bind(user)
            .bind(channel)
            .fetch_one(db)
            .await?;
            n > 0
        }
        None => false,
    };
    Ok(ViewerState {
        reaction: match reaction {
            Some(1) => "like",
            Some(-1) => "dislike",
            _ => "none",
        },
        subscribed,
    })
}

/// Results reachable by paging: relevance pages are offsets, so deep ones are refused rather
/// than made expensive.
const MAX_RESULTS: u32 = 500;

/// Public, ready, not taken down videos matching every word of `q` (each as a prefix, so a
/// query typed halfway finds), most relevant first (a title match above a tag, above the
/// description), then newest. Pages are sealed offsets.
pub async fn search(
    db: &AnyPool,
    backend: Backend,
    key: &CursorKey,
    q: &str,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page, ApiError> {
    let words = search::terms(q).map_err(|e| ApiError::BadRequest {
        code: "invalid_query",
        message: e.to_string(),
    })?;
    let limit = limit.clamp(1, MAX_PAGE);
    let offset = match cursor {
        None => 0,
        Some(c) => key
            .open(c)
            .and_then(|t| t.strip_prefix("search:")?.parse::<u32>().ok())
            .filter(|o| *o < MAX_RESULTS)
            .ok_or(ApiError::BadRequest {
                code: "invalid_cursor",
                message: "cursor is not one this API returned".into(),
            })?,
    };
    let limit = limit.min(MAX_RESULTS - offset);
    let (sql, query) = match backend {
        // bm25: lower is better; weights per column (title, description, tags).
        Backend::Sqlite => (
            "SELECT v.id, v.title, v.owner_id, v.channel_id, v.duration_ms, v.created_at
             FROM video_search JOIN videos v ON v.rowid = video_search.rowid
             WHERE video_search MATCH $1
               AND v.visibility = 'public' AND v.state = 'ready' AND v.taken_down = 0
             ORDER BY bm25(video_search, 10.0, 1.0, 4.0), v.created_at DESC, v.id DESC
             LIMIT $2 OFFSET $3",
            // Each word quoted (it holds only letters and digits) and a prefix.
            words
                .iter()
                .map(|w| format!("\"{w}\"*"))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        Backend::Postgres => (
            "SELECT id, title, owner_id, channel_id, duration_ms, created_at
             FROM videos, to_tsquery('simple', $1) AS query
             WHERE search @@ query
               AND visibility = 'public' AND state = 'ready' AND taken_down = 0
             ORDER BY ts_rank(search, query) DESC, created_at DESC, id DESC
             LIMIT $2 OFFSET $3",
            words
                .iter()
                .map(|w| format!("{w}:*"))
                .collect::<Vec<_>>()
                .join(" & "),
        ),
    };
    let mut items: Vec<Item> = sqlx::query_as(sql)
        .bind(query)
        .bind(i64::from(limit) + 1)
        .bind(i64::from(offset))
        .fetch_all(db)
        .await?;
    let next = offset + limit;
    let next_cursor = if items.len() > limit as usize && next < MAX_RESULTS {
        Some(key.seal(&format!("search:{next}")))
    } else {
        None
    };
    items.truncate(limit as usize);
    Ok(Page::new(items, next_cursor))
}

/// A category in use, with how many public videos it holds.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Category {
    slug: String,
    videos: i64,
}

/// The categories of public, ready videos, fullest first (at most 100).
pub async fn categories(db: &AnyPool) -> Result<Vec<Category>, ApiError> {
    Ok(sqlx::query_as(
        "SELECT category AS slug, COUNT(*) AS videos FROM videos
         WHERE category IS NOT NULL
           AND visibility = 'public' AND state = 'ready' AND taken_down = 0
         GROUP BY category ORDER BY videos DESC, slug LIMIT 100",
    )
    .fetch_all(db)
    .await?)
}

/// What anyone may see of a user: their name, their channels and how many public videos.
#[derive(Debug, Serialize)]
pub struct Profile {
    id: String,
    display_name: String,
    joined_at: i64,
    public_videos: i64,
    channels: Vec<ChannelSummary>,
}

/// One of a creator's channels.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct ChannelSummary {
    id: String,
    name: String,
    description: String,
    subscribers: i64,
}

/// A user's public profile: creators' and admins', and anyone's who still has a channel (a
/// demoted creator). Other accounts are nobody else's business, so they are not found, like a
/// user who does not exist.
pub async fn profile(db: &AnyPool, id: &str) -> Result<Profile, ApiError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: String,
        display_name: String,
        created_at: i64,
        role: String,
    }
    let user: Option<Row> =
        sqlx::query_as("SELECT id, display_name, created_at, role FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?;
    let user = user.ok_or(ApiError::NotFound("user"))?;
    let channels: Vec<ChannelSummary> = sqlx::query_as(
        "SELECT c.id, c.name, c.description,
                (SELECT COUNT(*) FROM subscriptions s WHERE s.channel_id = c.id) AS subscribers
         FROM channels c WHERE c.owner_id = $1 ORDER BY c.ordinal, c.id",
    )
    .bind(&user.id)
    .fetch_all(db)
    .await?;
    if user.role == "user" && channels.is_empty() {
        return Err(ApiError::NotFound("user"));
    }
    let public_videos: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM videos WHERE owner_id = $1
           AND visibility = 'public' AND state = 'ready' AND taken_down = 0",
    )
    .bind(&user.id)
    .fetch_one(db)
    .await?;
    Ok(Profile {
        id: user.id,
        display_name: user.display_name,
        joined_at: user.created_at,
        public_videos,
        channels,
    })
}
