//! Telling people how a moderation case ended, in the action's transaction: each reporter whose
//! report it closed (whether moderators acted, never what they did: that is the owner's to
//! know), and the owner of the content or the account it changed, with the reason they are
//! given.

use serde_json::json;

use super::actions::Action;
use super::Target;
use crate::db::{enum_name, WriteTx};
use crate::notifications::{self, Kind, Note};

/// What the people of a case are told of the target.
#[derive(sqlx::FromRow)]
struct About {
    owner: Option<String>,
    title: Option<String>,
    video: Option<String>,
    takedown_reason: Option<String>,
}

/// Notifies the reporters (`reports`: id and reporter of each report the action closed) and,
/// unless the action only dismissed, the owner of `target`, for log line `seq`.
pub async fn tell(
    tx: &mut WriteTx,
    action: Action,
    target: &str,
    reason: &str,
    seq: i64,
    reports: &[(String, String)],
    at: u64,
) -> anyhow::Result<()> {
    let Some(parsed) = Target::parse(target) else {
        return Ok(());
    };
    let (sql, id, kind) = match &parsed {
        Target::Video(id) => (
            "SELECT owner_id AS owner, title, id AS video, takedown_reason
             FROM videos WHERE id = $1",
            id,
            "video",
        ),
        Target::Comment(id) => (
            "SELECT c.author_id AS owner, v.title, v.id AS video,
                    CAST(NULL AS TEXT) AS takedown_reason
             FROM comments c JOIN videos v ON v.id = c.video_id WHERE c.id = $1",
            id,
            "comment",
        ),
        Target::User(id) => (
            "SELECT id AS owner, CAST(NULL AS TEXT) AS title, CAST(NULL AS TEXT) AS video,
                    CAST(NULL AS TEXT) AS takedown_reason
             FROM users WHERE id = $1",
            id,
            "user",
        ),
    };
    let Some(about) = sqlx::query_as::<_, About>(sql)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(());
    };
    let owner_data = |reason: &str| {
        json!({
            "role": "owner",
            "action": enum_name(action),
            "target": kind,
            "title": about.title,
            "video": about.video,
            "reason": reason,
        })
    };
    // A reporter learns whether moderators acted, not what they did to the owner.
    let verdict = if action == Action::Dismiss {
        "dismissed"
    } else {
        "acted"
    };
    for (report, reporter) in reports {
        let note = Note {
            user: reporter,
            kind: Kind::Moderation,
            key: format!("report:{report}"),
            data: json!({
                "role": "reporter",
                "outcome": verdict,
                "target": kind,
                "title": about.title,
                "video": about.video,
            }),
        };
        notifications::notify(tx, &note, at).await?;
    }
    if action == Action::Dismiss {
        return Ok(());
    }
    let Some(owner) = &about.owner else {
        return Ok(());
    };
    // A video's owner is told what its viewers are told (a takedown made on the video's edit
    // gives none); a comment's author and an account are told the action's reason.
    let told = match (&parsed, action) {
        (Target::Video(_), _) => about.takedown_reason.as_deref().unwrap_or_default(),
        (_, Action::Reinstate) => "",
        _ => reason,
    };
    let note = Note {
        user: owner,
        kind: Kind::Moderation,
        key: format!("moderation:{seq}"),
        data: owner_data(told),
    };
    notifications::notify(tx, &note, at).await?;
    Ok(())
}
