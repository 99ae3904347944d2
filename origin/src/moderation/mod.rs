//! Moderation: users report videos and comments; moderators (and admins) work the queue of
//! open reports, grouped by target, most-reported first; every action they take (dismiss,
//! remove a comment, take a video down or restore it, suspend an account or reinstate it) is
//! one transaction with the reports it closes and its line in the append-only audit log
//! ([`actions`]).

pub mod actions;
pub mod outcome;
pub mod queue;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sqlx::AnyPool;

use crate::keys::random_bytes;

/// Why something is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Spam or scams.
    Spam,
    /// Harassment, hate, threats.
    Abuse,
    /// Someone else's work.
    Copyright,
    /// Sexual content.
    Sexual,
    /// Violence or gore.
    Violence,
    /// Anything else (the note says what).
    Other,
}

/// What a report or an action is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A video.
    Video(String),
    /// A comment.
    Comment(String),
    /// An account (actions only).
    User(String),
}

impl Target {
    /// How it is stored: `video:{id}`, `comment:{id}`, `user:{id}`.
    pub fn key(&self) -> String {
        match self {
            Self::Video(id) => format!("video:{id}"),
            Self::Comment(id) => format!("comment:{id}"),
            Self::User(id) => format!("user:{id}"),
        }
    }

    /// From its stored form.
    pub fn parse(key: &str) -> Option<Self> {
        let (kind, id) = key.split_once(':')?;
        let id = id.to_owned();
        match kind {
            "video" => Some(Self::Video(id)),
            "comment" => Some(Self::Comment(id)),
            "user" => Some(Self::User(id)),
            _ => None,
        }
    }

    /// As the API shows it: `{"video": id}`, `{"comment": id}`, `{"user": id}`.
    pub fn json(&self) -> serde_json::Value {
        match self {
            Self::Video(id) => serde_json::json!({"video": id}),
            Self::Comment(id) => serde_json::json!({"comment": id}),
            Self::User(id) => serde_json::json!({"user": id}),
        }
    }
}

/// Reports one reporter may file in an hour.
pub const MAX_REPORTS_PER_HOUR: i64 = 20;

/// Why a report was not filed.
#[derive(Debug, PartialEq, Eq)]
pub enum NotFiled {
    /// No such video or comment the reporter could see (private, unfinished, taken down,
    /// removed).
    NoTarget,
    /// The reporter's report of it is still open.
    AlreadyOpen,
    /// The reporter filed [`MAX_REPORTS_PER_HOUR`] in the last hour; the next may come after
    /// this many seconds.
    TooMany(u64),
}

/// Files a report; its id, or why not.
pub async fn report(
    db: &AnyPool,
    reporter: &str,
    target: &Target,
    reason: Reason,
    note: &str,
    now: u64,
) -> anyhow::Result<Result<String, NotFiled>> {
    // Only what the reporter could see: a playable video that is not private, or a comment on
    // one (anything else is "not found", as everywhere else).
    let visible = "v.visibility <> 'private' AND v.state = 'ready' AND v.taken_down = 0";
    let sql = match target {
        Target::Video(_) => format!("SELECT 1 FROM videos v WHERE v.id = $1 AND {visible}"),
        Target::Comment(_) => format!(
            "SELECT 1 FROM comments c JOIN videos v ON v.id = c.video_id
             WHERE c.id = $1 AND c.deleted = 0 AND {visible}"
        ),
        Target::User(_) => return Ok(Err(NotFiled::NoTarget)),
    };
    let id = match target {
        Target::Video(id) | Target::Comment(id) | Target::User(id) => id,
    };
    let mut tx = db.begin().await?;
    // A write first: it locks the reporter's row on PostgreSQL and takes SQLite's write lock, so
    // one reporter's concurrent reports count one after the other and the bound holds.
    sqlx::query("UPDATE users SET role = role WHERE id = $1")
        .bind(reporter)
        .execute(&mut *tx)
        .await?;
    let exists: Option<i64> = sqlx::query_scalar(&sql)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Ok(Err(NotFiled::NoTarget));
    }
    let hour_ago = now.saturating_sub(3600) as i64;
    let recent: Vec<i64> = sqlx::query_scalar(
        "SELECT created_at FROM reports WHERE reporter_id = $1 AND created_at > $2
         ORDER BY created_at",
    )
    .bind(reporter)
    .bind(hour_ago)
    .fetch_all(&mut *tx)
    .await?;
    if recent.len() as i64 >= MAX_REPORTS_PER_HOUR {
        // The oldest of the hour's reports leaves the window first.
        let wait = (recent[0] - hour_ago).max(1) as u64;
        return Ok(Err(NotFiled::TooMany(wait)));
    }
    let report_id = format!("rp_{}", URL_SAFE_NO_PAD.encode(random_bytes::<9>()));
    let filed = sqlx::query(
        "INSERT INTO reports (id, reporter_id, target, reason, note, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (reporter_id, target) WHERE resolved_at IS NULL DO NOTHING",
    )
    .bind(&report_id)
    .bind(reporter)
    .bind(target.key())
    .bind(crate::db::enum_name(reason))
    .bind(note)
    .bind(now as i64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(if filed.rows_affected() == 1 {
        Ok(report_id)
    } else {
        Err(NotFiled::AlreadyOpen)
    })
}
