//! Video rows and their edge records.

use shared_wasm::record::{VideoRecord, VideoState, Visibility, VIDEO_RECORD_VERSION};
use shared_wasm::VideoId;
use sqlx::SqlitePool;

use crate::clock::now;

fn enum_name<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .expect("unit enum serializes to a string")
}

fn parse_enum<T: serde::de::DeserializeOwned>(s: &str) -> anyhow::Result<T> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| anyhow::anyhow!("unexpected value {s:?} in videos table"))
}

/// The edge record of a video, if it exists.
pub async fn record(db: &SqlitePool, id: &VideoId) -> anyhow::Result<Option<VideoRecord>> {
    type Row = (String, String, String, Option<i64>, i64, i64);
    let row: Option<Row> = sqlx::query_as(
        "SELECT title, visibility, state, duration_ms, updated_at, version FROM videos WHERE id = ?",
    )
    .bind(id.as_str())
    .fetch_optional(db)
    .await?;
    row.map(
        |(title, visibility, state, duration_ms, updated_at, version)| {
            Ok(VideoRecord {
                v: VIDEO_RECORD_VERSION,
                id: id.clone(),
                title,
                visibility: parse_enum(&visibility)?,
                state: parse_enum(&state)?,
                duration_ms: duration_ms.map(|d| d as u64),
                updated_at: updated_at as u64,
                version: version as u64,
            })
        },
    )
    .transpose()
}

/// What [`upsert`] writes.
pub struct NewVideo<'a> {
    /// Id.
    pub id: &'a VideoId,
    /// Owner.
    pub owner_id: Option<&'a str>,
    /// Title.
    pub title: &'a str,
    /// Visibility.
    pub visibility: Visibility,
    /// State.
    pub state: VideoState,
    /// Duration.
    pub duration_ms: Option<u64>,
}

/// Inserts a video or updates it, bumping its version.
pub async fn upsert(db: &SqlitePool, v: NewVideo<'_>) -> anyhow::Result<()> {
    let t = now() as i64;
    sqlx::query(
        "INSERT INTO videos (id, owner_id, title, visibility, state, duration_ms, created_at, updated_at, version)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)
         ON CONFLICT (id) DO UPDATE SET title = excluded.title, visibility = excluded.visibility,
             state = excluded.state, duration_ms = excluded.duration_ms,
             updated_at = excluded.updated_at, version = videos.version + 1",
    )
    .bind(v.id.as_str())
    .bind(v.owner_id)
    .bind(v.title)
    .bind(enum_name(v.visibility))
    .bind(enum_name(v.state))
    .bind(v.duration_ms.map(|d| d as i64))
    .bind(t)
    .bind(t)
    .execute(db)
    .await?;
    Ok(())
}
