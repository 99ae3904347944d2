//! A moderator's actions. Each is one write transaction: the change (its records queued for the
//! edge, so a takedown or a suspension reaches it at the next push), the open reports of its
//! target closed, and a line in the audit log. The caller wakes the outbox.

use serde::{Deserialize, Serialize};
use shared_wasm::jwt::Role;
use shared_wasm::VideoId;
use sqlx::AnyPool;

use super::Target;
use crate::clock::now;
use crate::db::{enum_name, parse_enum, WriteTx};
use crate::videos::{self, VideoPatch};

/// What a moderator does to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Closes a video's or a comment's open reports, changing nothing else.
    Dismiss,
    /// Removes a comment's text (the row stays, as when its author deletes it).
    RemoveComment,
    /// Takes a video down; viewers are told the reason.
    TakeDown,
    /// Puts a taken-down video back.
    Restore,
    /// Suspends an account: it cannot sign in, its sessions end at the edge, its videos are
    /// taken down with it.
    Suspend,
    /// Lifts a suspension and restores the videos taken down with it.
    Reinstate,
}

/// Why an action was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No such video, comment or account (or the comment is already removed).
    NoTarget,
    /// The action does not apply to that kind of target.
    WrongTarget,
    /// The target has no open reports to dismiss.
    NothingToDismiss,
    /// The target's owner (or who suspended the account, or took the video down) ranks above the
    /// actor; or, for a suspension, does not rank below.
    Outranked,
    /// Moderators do not judge their own videos and comments.
    OwnContent,
    /// The video went down with its owner's suspension: reinstating the owner restores it.
    SuspendedOwner,
    /// The account is already suspended (suspend) or is not (reinstate).
    AlreadySo,
}

/// What an action did.
#[derive(Debug, Serialize)]
pub struct Acted {
    /// Its line in the audit log.
    pub seq: i64,
    /// The action.
    pub action: Action,
    /// Its target.
    pub target: serde_json::Value,
    /// Open reports it closed.
    pub reports: i64,
    /// Videos it took down or restored (a suspension's, a reinstatement's, or the one).
    pub videos: Vec<String>,
    /// Unix seconds.
    pub at: i64,
}

/// The reason a suspension's videos show.
pub const SUSPENDED: &str = "the account that published it is suspended";

/// Does `action` to `target` as `actor` (of `actor_role`, a moderator or above), for `reason`.
pub async fn act(
    db: &AnyPool,
    actor: &str,
    actor_role: Role,
    action: Action,
    target: &Target,
    reason: &str,
) -> anyhow::Result<Result<Acted, Refusal>> {
    let mut tx = crate::db::begin_write(db).await?;
    let at = now();
    let done = match (action, target) {
        (Action::Dismiss | Action::RemoveComment | Action::TakeDown | Action::Restore, _) => {
            content(&mut tx, actor, actor_role, action, target, reason).await?
        }
        (Action::Suspend | Action::Reinstate, Target::User(id)) => {
            suspension(
                &mut tx,
                actor_role,
                id,
                action == Action::Suspend,
                reason,
                at,
            )
            .await?
        }
        _ => Err(Refusal::WrongTarget),
    };
    let videos = match done {
        Ok(videos) => videos,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let key = target.key();
    let (seq, closed) = record(&mut tx, actor, action, &key, reason, at).await?;
    if action == Action::Dismiss && closed == 0 {
        return Ok(Err(Refusal::NothingToDismiss));
    }
    tx.commit().await?;
    tracing::info!(actor, action = ?action, target = %key, reports = closed, "moderation action");
    Ok(Ok(Acted {
        seq,
        action,
        target: target.json(),
        reports: closed,
        videos,
        at: at as i64,
    }))
}

/// The bookkeeping every action shares, in its transaction: `target`'s open reports closed as
/// resolved by `action`, the audit line, and the reporters and the owner told the outcome.
/// Returns the line's place and the reports closed.
pub async fn record(
    tx: &mut WriteTx,
    actor: &str,
    action: Action,
    target: &str,
    reason: &str,
    at: u64,
) -> anyhow::Result<(i64, i64)> {
    let closed: Vec<(String, String)> = sqlx::query_as(
        "UPDATE reports SET resolved_at = $1, resolution = $2
         WHERE target = $3 AND resolved_at IS NULL RETURNING id, reporter_id",
    )
    .bind(at as i64)
    .bind(enum_name(action))
    .bind(target)
    .fetch_all(&mut **tx)
    .await?;
    let seq = log(tx, actor, action, target, reason, closed.len() as i64, at).await?;
    super::outcome::tell(tx, action, target, reason, seq, &closed, at).await?;
    Ok((seq, closed.len() as i64))
}

/// An action on a video or a comment, as far as the actor may take it: not on their own, not on
/// what a higher role owns, and a restore only of what their role (or a lower one) took down.
async fn content(
    tx: &mut WriteTx,
    actor: &str,
    actor_role: Role,
    action: Action,
    target: &Target,
    reason: &str,
) -> anyhow::Result<Result<Vec<String>, Refusal>> {
    #[derive(sqlx::FromRow)]
    struct Found {
        owner: Option<String>,
        owner_role: Option<String>,
        takedown_role: Option<String>,
        with_owner: i64,
    }
    let (sql, id) = match target {
        Target::Video(id) => (
            "SELECT v.owner_id AS owner, u.role AS owner_role, v.takedown_role,
                    v.taken_down_with_owner AS with_owner
             FROM videos v LEFT JOIN users u ON u.id = v.owner_id WHERE v.id = $1",
            id,
        ),
        Target::Comment(id) => (
            "SELECT c.author_id AS owner, u.role AS owner_role,
                    CAST(NULL AS TEXT) AS takedown_role, CAST(0 AS BIGINT) AS with_owner
             FROM comments c LEFT JOIN users u ON u.id = c.author_id
             WHERE c.id = $1 AND c.deleted = 0",
            id,
        ),
        Target::User(_) => return Ok(Err(Refusal::WrongTarget)),
    };
    let Some(found) = sqlx::query_as::<_, Found>(sql)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(Err(Refusal::NoTarget));
    };
    if found.owner.as_deref() == Some(actor) {
        return Ok(Err(Refusal::OwnContent));
    }
    let outranks = |role: &Option<String>| -> anyhow::Result<bool> {
        Ok(match role {
            Some(r) => parse_enum::<Role>(r)? > actor_role,
            None => false,
        })
    };
    if outranks(&found.owner_role)? {
        return Ok(Err(Refusal::Outranked));
    }
    match (action, target) {
        (Action::Dismiss, _) => Ok(Ok(Vec::new())),
        (Action::RemoveComment, Target::Comment(id)) => {
            sqlx::query("UPDATE comments SET body = '', deleted = 1 WHERE id = $1")
                .bind(id)
                .execute(&mut **tx)
                .await?;
            Ok(Ok(Vec::new()))
        }
        (Action::TakeDown, Target::Video(id)) => {
            set_down(tx, id, Some((reason, actor_role)), false).await?;
            Ok(Ok(vec![id.clone()]))
        }
        (Action::Restore, Target::Video(id)) => {
            if found.with_owner != 0 {
                return Ok(Err(Refusal::SuspendedOwner));
            }
            if outranks(&found.takedown_role)? {
                return Ok(Err(Refusal::Outranked));
            }
            set_down(tx, id, None, false).await?;
            Ok(Ok(vec![id.clone()]))
        }
        _ => Ok(Err(Refusal::WrongTarget)),
    }
}

/// Appends to the audit log.
pub async fn log(
    tx: &mut WriteTx,
    actor: &str,
    action: Action,
    target: &str,
    reason: &str,
    reports: i64,
    at: u64,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO moderation_log (actor_id, action, target, reason, reports, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
    )
    .bind(actor)
    .bind(enum_name(action))
    .bind(target)
    .bind(reason)
    .bind(reports)
    .bind(at as i64)
    .fetch_one(&mut **tx)
    .await
}

/// Takes video `id` down with a reason, by a role (`Some`), or restores it (`None`), its new
/// record queued for the edge.
async fn set_down(
    tx: &mut WriteTx,
    id: &str,
    down: Option<(&str, Role)>,
    with_owner: bool,
) -> anyhow::Result<()> {
    let video = VideoId::parse(id).map_err(|e| anyhow::anyhow!("stored video id: {e}"))?;
    let patch = VideoPatch {
        taken_down: Some(down.is_some()),
        ..VideoPatch::default()
    };
    videos::update_in(tx, &video, &patch).await?;
    takedown_columns(tx, id, down, with_owner).await?;
    Ok(())
}

/// What the origin keeps of a takedown beside the flag the edge has: the reason viewers are
/// told (`None`: the general message) and the role of who took it down (`None` once restored),
/// and whether it came with its owner's suspension.
pub async fn takedown_columns(
    tx: &mut WriteTx,
    id: &str,
    down: Option<(&str, Role)>,
    with_owner: bool,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE videos SET takedown_reason = $1, takedown_role = $2, taken_down_with_owner = $3
         WHERE id = $4",
    )
    .bind(down.map(|(reason, _)| reason).filter(|r| !r.is_empty()))
    .bind(down.map(|(_, role)| enum_name(role)))
    .bind(i64::from(with_owner))
    .bind(id)
    .execute(&mut **tx)
    .await
    .map(drop)
}

/// Suspends (`suspend`) or reinstates account `id`: the videos it took down or restored.
async fn suspension(
    tx: &mut WriteTx,
    actor_role: Role,
    id: &str,
    suspend: bool,
    reason: &str,
    at: u64,
) -> anyhow::Result<Result<Vec<String>, Refusal>> {
    let role: Option<String> = sqlx::query_scalar("SELECT role FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(role) = role else {
        return Ok(Err(Refusal::NoTarget));
    };
    if parse_enum::<Role>(&role)? >= actor_role {
        return Ok(Err(Refusal::Outranked));
    }
    let changed = if suspend {
        sqlx::query(
            "INSERT INTO suspensions (user_id, by_role, reason, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(id)
        .bind(enum_name(actor_role))
        .bind(reason)
        .bind(at as i64)
        .execute(&mut **tx)
        .await?
    } else {
        // Only the suspender's role or above lifts a suspension.
        let by: Option<String> =
            sqlx::query_scalar("SELECT by_role FROM suspensions WHERE user_id = $1")
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?;
        if let Some(by) = by {
            if parse_enum::<Role>(&by)? > actor_role {
                return Ok(Err(Refusal::Outranked));
            }
        }
        sqlx::query("DELETE FROM suspensions WHERE user_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?
    };
    if changed.rows_affected() == 0 {
        return Ok(Err(Refusal::AlreadySo));
    }
    let affected: Vec<String> = if suspend {
        // Its sessions end and its tokens are refused at the edge from the next push.
        crate::sessions::revoke_user(tx, id).await?;
        sqlx::query_scalar(
            "SELECT id FROM videos WHERE owner_id = $1 AND taken_down = 0 ORDER BY id",
        )
    } else {
        sqlx::query_scalar(
            "SELECT id FROM videos WHERE owner_id = $1 AND taken_down_with_owner = 1 ORDER BY id",
        )
    }
    .bind(id)
    .fetch_all(&mut **tx)
    .await?;
    for video in &affected {
        set_down(
            tx,
            video,
            suspend.then_some((SUSPENDED, actor_role)),
            suspend,
        )
        .await?;
    }
    Ok(Ok(affected))
}

/// A line of the audit log.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Entry {
    /// Its place (newest highest).
    pub seq: i64,
    /// Who.
    #[sqlx(rename = "actor_id")]
    pub actor: String,
    /// What.
    pub action: String,
    /// To what: `{"video": id}`, `{"comment": id}` or `{"user": id}`.
    #[serde(serialize_with = "target_json")]
    pub target: String,
    /// Why.
    pub reason: String,
    /// Open reports it closed.
    pub reports: i64,
    /// When (Unix seconds).
    pub created_at: i64,
}

fn target_json<S: serde::Serializer>(key: &str, s: S) -> Result<S::Ok, S::Error> {
    Target::parse(key)
        .map_or(serde_json::Value::Null, |t| t.json())
        .serialize(s)
}

/// The `limit` latest lines of the audit log before line `before` (all when `None`).
pub async fn history(db: &AnyPool, before: Option<i64>, limit: u32) -> sqlx::Result<Vec<Entry>> {
    sqlx::query_as(
        "SELECT seq, actor_id, action, target, reason, reports, created_at FROM moderation_log
         WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
    )
    .bind(before.unwrap_or(i64::MAX))
    .bind(i64::from(limit))
    .fetch_all(db)
    .await
}
