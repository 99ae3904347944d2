//! Webhooks for integrators: a creator (or, for every creator, an admin) registers endpoints
//! for video events, and each event is delivered to each endpoint that listens for it, signed
//! the way Stripe signs (`Webhook-Signature: t=…,v1=HMAC-SHA256(secret, "{t}.{body}")`), retried
//! with backoff for a day, in order per video.
//!
//! - **Written with the change** ([`emit`]): an event, its deliveries and their jobs are rows
//!   of the transaction that makes the change it reports (a video ready, taken down, deleted…),
//!   so an event is never lost nor told of a change that rolled back.
//! - **Delivered as jobs** ([`deliver`]): one `webhook.deliver` job per endpoint and event, with
//!   the queue's leases, backoff and fencing. The body is stored once and sent byte for byte the
//!   same in every attempt, under the event's stable id, so a receiver de-duplicates on it.
//!   Delivery is at least once: an attempt whose answer was lost (the origin killed between the
//!   receiver's 2xx and the commit that records it) is made again.
//! - **In order per video**: a delivery waits while an earlier event of the same video is
//!   still pending for the same endpoint.
//! - **Where to**: [`target`] (https, public addresses only, checked at every attempt).
//! - **Whose**: an endpoint hears its owner's videos while the owner is a creator or above, and
//!   every creator's (`all_creators`) while its owner is an admin ([`may_hear`]).

pub mod deliver;
pub mod endpoints;
pub mod target;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared_wasm::VideoId;

use crate::clock::now;
use crate::db::WriteTx;
use crate::jobs::{self, NewJob, OnConflict};
use crate::keys::random_bytes;

/// The job kind of one delivery (keyed `{endpoint}:{event seq}`).
pub const DELIVER: &str = "webhook.deliver";

/// What an endpoint can listen for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    /// A video's upload is complete and its transcoding queued.
    #[serde(rename = "upload.completed")]
    UploadCompleted,
    /// A video is transcoded and playable.
    #[serde(rename = "video.ready")]
    VideoReady,
    /// A video's transcoding failed (`data.video.reason` says why).
    #[serde(rename = "video.failed")]
    VideoFailed,
    /// A video was deleted.
    #[serde(rename = "video.deleted")]
    VideoDeleted,
    /// An admin took a video down.
    #[serde(rename = "video.taken_down")]
    VideoTakenDown,
}

impl EventType {
    /// Every type.
    pub const ALL: [Self; 5] = [
        Self::UploadCompleted,
        Self::VideoReady,
        Self::VideoFailed,
        Self::VideoDeleted,
        Self::VideoTakenDown,
    ];

    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UploadCompleted => "upload.completed",
            Self::VideoReady => "video.ready",
            Self::VideoFailed => "video.failed",
            Self::VideoDeleted => "video.deleted",
            Self::VideoTakenDown => "video.taken_down",
        }
    }
}

/// Whether an endpoint whose owner has `role` hears events now: its owner must still be a
/// creator or above, and an endpoint for every creator's events an admin. A demoted owner's
/// endpoints fall silent (checked when an event is written and again before each attempt),
/// and speak again if the role comes back.
pub fn may_hear(owner_role: &str, all_creators: bool) -> bool {
    owner_role != "user" && (!all_creators || owner_role == "admin")
}

/// Writes a `kind` event about `video` in `tx` (before the change deletes the video's row, for
/// `video.deleted`), with a delivery and a job for each endpoint of its owner, and each
/// all-creators endpoint, that listens for it; nothing when none does. `reason` goes into the
/// event as `data.video.reason`.
pub async fn emit(
    tx: &mut WriteTx,
    kind: EventType,
    video: &VideoId,
    reason: Option<&str>,
) -> anyhow::Result<()> {
    #[derive(sqlx::FromRow)]
    struct Video {
        owner_id: Option<String>,
        title: String,
        visibility: String,
        state: String,
    }
    let Some(v) = sqlx::query_as::<_, Video>(
        "SELECT owner_id, title, visibility, state FROM videos WHERE id = $1",
    )
    .bind(video.as_str())
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(());
    };
    let endpoints: Vec<(String, String, i64, String)> = sqlx::query_as(
        "SELECT w.id, w.events, w.all_creators, u.role FROM webhook_endpoints w
         JOIN users u ON u.id = w.owner_id
         WHERE w.owner_id = $1 OR w.all_creators = 1
         ORDER BY w.created_at, w.id",
    )
    .bind(v.owner_id.as_deref())
    .fetch_all(&mut **tx)
    .await?;
    let listening: Vec<String> = endpoints
        .into_iter()
        .filter(|(_, events, all, role)| {
            may_hear(role, *all != 0) && events.split(',').any(|e| e == kind.as_str())
        })
        .map(|(id, ..)| id)
        .collect();
    if listening.is_empty() {
        return Ok(());
    }
    let id = format!("evt_{}", URL_SAFE_NO_PAD.encode(random_bytes::<12>()));
    let at = now();
    let mut about = json!({
        "id": video.as_str(),
        "owner": v.owner_id,
        "title": v.title,
        "visibility": v.visibility,
        "state": v.state,
    });
    if let Some(reason) = reason {
        about["reason"] = reason.into();
    }
    let body = json!({"id": id, "type": kind.as_str(), "created": at, "data": {"video": about}});
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO webhook_events (id, type, video_id, body, created_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING seq",
    )
    .bind(&id)
    .bind(kind.as_str())
    .bind(video.as_str())
    .bind(body.to_string())
    .bind(at as i64)
    .fetch_one(&mut **tx)
    .await?;
    for endpoint in &listening {
        sqlx::query(
            "INSERT INTO webhook_deliveries (endpoint_id, event_seq, video_id, state, retry_from)
             VALUES ($1, $2, $3, 'pending', $4)",
        )
        .bind(endpoint)
        .bind(seq)
        .bind(video.as_str())
        .bind(at as i64)
        .execute(&mut **tx)
        .await?;
        let key = format!("{endpoint}:{seq}");
        jobs::enqueue(tx, &NewJob::new(DELIVER, &key), OnConflict::Keep, at).await?;
    }
    tracing::info!(event = %id, kind = kind.as_str(), video = %video, endpoints = listening.len(), "webhook event");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::may_hear;

    #[test]
    fn an_endpoint_hears_while_its_owner_keeps_the_role() {
        assert!(may_hear("creator", false));
        assert!(may_hear("admin", false));
        assert!(may_hear("admin", true));
        assert!(
            !may_hear("creator", true),
            "every creator's events are an admin's"
        );
        assert!(
            !may_hear("user", false),
            "a demoted creator's endpoints fall silent"
        );
    }
}
