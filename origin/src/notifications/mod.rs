//! Notifications: what a user is told of (a new video in a channel they follow, a reply or a like
//! on their comment, the outcome of a moderation case they are part of, their membership ending
//! or a payment failing), in the app and by email, as each user wants each kind.
//!
//! - **Written with the change** ([`notify`]): a notification is a row of the transaction that
//!   makes the change it tells of (the reply, the like, the moderation action, the billing
//!   event), so none is told of a change that rolled back, and none is lost.
//! - **Once** per user and happening: `(user_id, key)` is unique and a second write is dropped.
//! - **Fan-out** ([`fanout`]): a video published to a channel commits with one `notify.fanout`
//!   job; the job writes its subscribers' notifications in batches, each batch in a transaction
//!   with the job's progress, so a crash resumes after the last batch committed and the unique
//!   key drops what a batch wrote twice.
//! - **Email** ([`mail`]): a notification the user wants by email waits `email = 'pending'`; the
//!   first pending one of a user opens a digest window, and everything pending at its end goes
//!   in one email (one notification alone goes as itself). Each email carries a signed one-click
//!   unsubscribe link ([`unsubscribe`]).
//! - **In the app** ([`inbox`]): the list, its unread count and an `ETag` for polling.

pub mod confirm;
pub mod fanout;
pub mod inbox;
pub mod mail;
pub mod prefs;
pub mod text;
pub mod unsubscribe;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::AnyConnection;

/// What a notification tells of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A new video in a channel the user follows.
    NewVideo,
    /// A reply to the user's comment.
    CommentReply,
    /// A like on the user's comment.
    CommentLike,
    /// A moderator acted on the user's content, or on something the user reported.
    Moderation,
    /// The user's membership ends soon, or a payment for it failed.
    Billing,
}

impl Kind {
    /// Every kind, in the order the preferences list them.
    pub const ALL: [Self; 5] = [
        Self::NewVideo,
        Self::CommentReply,
        Self::CommentLike,
        Self::Moderation,
        Self::Billing,
    ];

    /// Its name in the database and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NewVideo => "new_video",
            Self::CommentReply => "comment_reply",
            Self::CommentLike => "comment_like",
            Self::Moderation => "moderation",
            Self::Billing => "billing",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Where a user who has not chosen gets it: everything in the app; by email everything
    /// but likes, which come too often to be worth a message each.
    pub fn default_channels(self) -> Channels {
        Channels {
            in_app: true,
            email: self != Self::CommentLike,
        }
    }
}

/// Where a user wants one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channels {
    /// In the app's list.
    pub in_app: bool,
    /// By email.
    pub email: bool,
}

/// One notification to write.
#[derive(Debug)]
pub struct Note<'a> {
    /// Whom it is for.
    pub user: &'a str,
    /// What it tells of.
    pub kind: Kind,
    /// The happening: a second note with the same key for the same user is dropped.
    pub key: String,
    /// What the app and the email show.
    pub data: Value,
}

/// Writes `note` on `conn` (the transaction of the change it tells of), as its user wants that
/// kind (by email only to a confirmed address); nothing when they want it nowhere, or already
/// have it. `true` when written.
pub async fn notify(conn: &mut AnyConnection, note: &Note<'_>, now: u64) -> sqlx::Result<bool> {
    let confirmed: Option<Option<i64>> =
        sqlx::query_scalar("SELECT email_confirmed_at FROM users WHERE id = $1")
            .bind(note.user)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(confirmed) = confirmed else {
        return Ok(false);
    };
    let mut want = prefs::of(conn, note.user, note.kind).await?;
    want.email &= confirmed.is_some();
    if !want.in_app && !want.email {
        return Ok(false);
    }
    let done = sqlx::query(
        "INSERT INTO notifications (user_id, kind, key, data, in_app, email, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (user_id, key) DO NOTHING",
    )
    .bind(note.user)
    .bind(note.kind.as_str())
    .bind(&note.key)
    .bind(note.data.to_string())
    .bind(i64::from(want.in_app))
    .bind(if want.email { "pending" } else { "none" })
    .bind(now as i64)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
