//! The review queue: open reports grouped by their target, most-reported first (then the
//! longest waiting), each with its reasons, the latest notes and what the target is.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};
use sqlx::AnyPool;

use super::Target;

/// Notes shown per target.
const NOTES: i64 = 5;

/// One target with open reports.
#[derive(Debug, Serialize)]
pub struct Item {
    /// `{"video": id}` or `{"comment": id}`.
    pub target: Value,
    /// Open reports of it.
    pub reports: i64,
    /// How many give each reason.
    pub reasons: BTreeMap<String, i64>,
    /// When the first and the latest were filed (Unix seconds).
    pub first_at: i64,
    /// See `first_at`.
    pub last_at: i64,
    /// The latest notes reporters wrote, newest first.
    pub notes: Vec<Note>,
    /// What the target is: a video's title, owner and state; a comment's text, author and
    /// video. `null` when it is gone.
    pub context: Value,
}

/// A reporter's note (the reporter is not shown).
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Note {
    /// Its reason.
    pub reason: String,
    /// What they wrote.
    pub note: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// The `limit` most-reported targets with open reports.
pub async fn open(db: &AnyPool, limit: u32) -> anyhow::Result<Vec<Item>> {
    let groups: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT target, COUNT(*), MIN(created_at), MAX(created_at) FROM reports
         WHERE resolved_at IS NULL GROUP BY target
         ORDER BY COUNT(*) DESC, MIN(created_at), target LIMIT $1",
    )
    .bind(i64::from(limit))
    .fetch_all(db)
    .await?;
    let mut items = Vec::with_capacity(groups.len());
    for (key, reports, first_at, last_at) in groups {
        let Some(target) = Target::parse(&key) else {
            continue;
        };
        let reasons: Vec<(String, i64)> = sqlx::query_as(
            "SELECT reason, COUNT(*) FROM reports WHERE target = $1 AND resolved_at IS NULL
             GROUP BY reason",
        )
        .bind(&key)
        .fetch_all(db)
        .await?;
        let notes = sqlx::query_as(
            "SELECT reason, note, created_at FROM reports
             WHERE target = $1 AND resolved_at IS NULL AND note <> ''
             ORDER BY created_at DESC LIMIT $2",
        )
        .bind(&key)
        .bind(NOTES)
        .fetch_all(db)
        .await?;
        items.push(Item {
            context: context(db, &target).await?,
            target: target.json(),
            reports,
            reasons: reasons.into_iter().collect(),
            first_at,
            last_at,
            notes,
        });
    }
    Ok(items)
}

async fn context(db: &AnyPool, target: &Target) -> anyhow::Result<Value> {
    Ok(match target {
        Target::Video(id) => {
            #[derive(sqlx::FromRow)]
            struct Video {
                title: String,
                owner_id: Option<String>,
                visibility: String,
                taken_down: i64,
                takedown_reason: Option<String>,
            }
            let row: Option<Video> = sqlx::query_as(
                "SELECT title, owner_id, visibility, taken_down, takedown_reason FROM videos
                 WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(db)
            .await?;
            row.map_or(Value::Null, |v| {
                json!({"title": v.title, "owner": v.owner_id, "visibility": v.visibility,
                       "taken_down": v.taken_down != 0, "takedown_reason": v.takedown_reason})
            })
        }
        Target::Comment(id) => {
            let row: Option<(String, Option<String>, String, i64)> = sqlx::query_as(
                "SELECT body, author_id, video_id, deleted FROM comments WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(db)
            .await?;
            row.map_or(Value::Null, |(body, author, video, deleted)| {
                json!({"body": body, "author": author, "video": video, "removed": deleted != 0})
            })
        }
        Target::User(_) => Value::Null,
    })
}
