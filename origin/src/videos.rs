//! Video rows and their edge records.

use shared_wasm::playback::BindingPolicy;
use shared_wasm::record::{CountryRule, VideoRecord, VideoState, Visibility, VIDEO_RECORD_VERSION};
use shared_wasm::{CountryCode, VideoId};
use sqlx::AnyPool;

use crate::clock::now;
use crate::db::{enum_name, parse_enum, WriteTx};
use crate::webhooks::{self, EventType};
use crate::{channels, feeds, outbox};

#[derive(sqlx::FromRow)]
struct VideoRow {
    title: String,
    visibility: String,
    state: String,
    duration_ms: Option<i64>,
    country_mode: Option<String>,
    country_list: Option<String>,
    taken_down: i64,
    bind_ip: Option<String>,
    bind_country: Option<i64>,
    category: Option<String>,
    updated_at: i64,
    version: i64,
}

/// The country rule as stored: a mode and a comma-separated list, or no mode for none.
fn country_rule(mode: Option<&str>, list: Option<&str>) -> anyhow::Result<Option<CountryRule>> {
    let Some(mode) = mode else {
        return Ok(None);
    };
    Ok(Some(CountryRule {
        mode: parse_enum(mode)?,
        list: list
            .unwrap_or_default()
            .split(',')
            .filter(|c| !c.is_empty())
            .map(|c| CountryCode::parse(c).map_err(|e| anyhow::anyhow!("{c:?}: {e}")))
            .collect::<anyhow::Result<_>>()?,
    }))
}

impl VideoRow {
    fn into_record(self, id: &VideoId) -> anyhow::Result<VideoRecord> {
        let countries = country_rule(self.country_mode.as_deref(), self.country_list.as_deref())?;
        Ok(VideoRecord {
            v: VIDEO_RECORD_VERSION,
            id: id.clone(),
            title: self.title,
            visibility: parse_enum(&self.visibility)?,
            state: parse_enum(&self.state)?,
            duration_ms: self.duration_ms.map(|d| d as u64),
            countries,
            taken_down: self.taken_down != 0,
            binding: match self.bind_ip {
                None => None,
                Some(ip) => Some(BindingPolicy {
                    ip: parse_enum(&ip)?,
                    country: self.bind_country == Some(1),
                }),
            },
            category: self.category,
            updated_at: self.updated_at as u64,
            version: self.version as u64,
        })
    }
}

/// The edge record of a video, if it exists.
pub async fn record(
    db: impl sqlx::AnyExecutor<'_>,
    id: &VideoId,
) -> anyhow::Result<Option<VideoRecord>> {
    let row: Option<VideoRow> = sqlx::query_as(
        "SELECT title, visibility, state, duration_ms, country_mode, country_list, taken_down,
                bind_ip, bind_country, category, updated_at, version
         FROM videos WHERE id = $1",
    )
    .bind(id.as_str())
    .fetch_optional(db)
    .await?;
    row.map(|r| r.into_record(id)).transpose()
}

/// What [`upsert`] writes.
pub struct NewVideo<'a> {
    /// Id.
    pub id: &'a VideoId,
    /// Owner.
    pub owner_id: Option<&'a str>,
    /// Its channel (one of the owner's); `None`: the owner's default channel.
    pub channel_id: Option<&'a str>,
    /// Title.
    pub title: &'a str,
    /// Description.
    pub description: &'a str,
    /// Visibility.
    pub visibility: Visibility,
    /// State.
    pub state: VideoState,
    /// Duration.
    pub duration_ms: Option<u64>,
    /// Where it may play.
    pub countries: Option<CountryRule>,
    /// Taken down.
    pub taken_down: bool,
    /// Its own token binding; `None`: the deployment's.
    pub binding: Option<BindingPolicy>,
    /// Category slug.
    pub category: Option<&'a str>,
    /// Tags, comma-separated slugs.
    pub tags: &'a str,
}

/// Inserts a video or updates it, bumping its version, and queues its new record for the edge
/// in the same transaction. The caller wakes the outbox.
pub async fn upsert(db: &AnyPool, v: NewVideo<'_>) -> anyhow::Result<VideoRecord> {
    let t = now() as i64;
    let mut tx = crate::db::begin_write(db).await?;
    let channel = match (v.channel_id, v.owner_id) {
        (Some(c), _) => Some(c.to_owned()),
        (None, Some(owner)) => Some(channels::default_for(&mut tx, owner).await?),
        (None, None) => None,
    };
    sqlx::query(
        "INSERT INTO videos (id, owner_id, title, description, visibility, state, duration_ms,
                             country_mode, country_list, taken_down, bind_ip, bind_country,
                             category, tags, created_at, updated_at, channel_id, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, 1)
         ON CONFLICT (id) DO UPDATE SET title = excluded.title,
             description = excluded.description, visibility = excluded.visibility,
             state = excluded.state, duration_ms = excluded.duration_ms,
             country_mode = excluded.country_mode, country_list = excluded.country_list,
             taken_down = excluded.taken_down, bind_ip = excluded.bind_ip,
             bind_country = excluded.bind_country, category = excluded.category,
             tags = excluded.tags, channel_id = excluded.channel_id,
             updated_at = excluded.updated_at, version = videos.version + 1",
    )
    .bind(v.id.as_str())
    .bind(v.owner_id)
    .bind(v.title)
    .bind(v.description)
    .bind(enum_name(v.visibility))
    .bind(enum_name(v.state))
    .bind(v.duration_ms.map(|d| d as i64))
    .bind(v.countries.as_ref().map(|c| enum_name(c.mode)))
    .bind(v.countries.as_ref().map(country_list))
    .bind(i64::from(v.taken_down))
    .bind(v.binding.map(|b| enum_name(b.ip)))
    .bind(v.binding.map(|b| i64::from(b.country)))
    .bind(v.category)
    .bind(v.tags)
    .bind(t)
    .bind(t)
    .bind(channel.as_deref())
    .execute(&mut *tx)
    .await?;
    let rec = publish(&mut tx, v.id, Vec::new()).await?;
    tx.commit().await?;
    Ok(rec)
}

/// Queues the current record of video `id` for the edge, inside `tx` (after a change to its
/// row). The caller wakes the outbox after the commit.
pub async fn push_record(tx: &mut WriteTx, id: &VideoId) -> anyhow::Result<VideoRecord> {
    let rec = record(&mut **tx, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("video {id} vanished inside its transaction"))?;
    outbox::enqueue(tx, &rec).await?;
    Ok(rec)
}

/// Publishes a change to video `id` made in `tx`: its record for the edge, and new versions of
/// the feeds it is in now and of `left` (feeds it was in before the change). The caller wakes
/// the outbox after the commit.
pub async fn publish(
    tx: &mut WriteTx,
    id: &VideoId,
    mut left: Vec<String>,
) -> anyhow::Result<VideoRecord> {
    let rec = push_record(tx, id).await?;
    let (channel, category) = placement(&mut **tx, id).await?.unwrap_or_default();
    left.extend(feeds::of_video(channel.as_deref(), category.as_deref()));
    left.sort_unstable();
    left.dedup();
    feeds::bump(tx, &left).await?;
    crate::notifications::fanout::announce(tx, id).await?;
    Ok(rec)
}

/// The channel and category of video `id`: the feeds it shows in.
async fn placement(
    db: impl sqlx::AnyExecutor<'_>,
    id: &VideoId,
) -> sqlx::Result<Option<(Option<String>, Option<String>)>> {
    sqlx::query_as("SELECT channel_id, category FROM videos WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(db)
        .await
}

#[derive(sqlx::FromRow)]
struct OwnedRow {
    id: String,
    title: String,
    description: String,
    visibility: String,
    state: String,
    category: Option<String>,
    tags: String,
    country_mode: Option<String>,
    country_list: Option<String>,
    taken_down: i64,
    channel_id: Option<String>,
    duration_ms: Option<i64>,
    created_at: i64,
}

/// A video as its owner lists it: every field the owner edits, and where it stands.
#[derive(Debug, serde::Serialize)]
pub struct Owned {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Visibility, as stored.
    pub visibility: String,
    /// State, as stored.
    pub state: String,
    /// Category slug.
    pub category: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Country rule.
    pub countries: Option<CountryRule>,
    /// Taken down by an admin.
    pub taken_down: bool,
    /// Its channel.
    pub channel_id: Option<String>,
    /// Length, once transcoded.
    pub duration_ms: Option<i64>,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

/// The videos of `owner`, newest first (at most 100).
pub async fn owned_by(db: &AnyPool, owner: &str) -> anyhow::Result<Vec<Owned>> {
    let rows: Vec<OwnedRow> = sqlx::query_as(
        "SELECT id, title, description, visibility, state, category, tags, country_mode,
                country_list, taken_down, channel_id, duration_ms, created_at
         FROM videos WHERE owner_id = $1 ORDER BY created_at DESC, id LIMIT 100",
    )
    .bind(owner)
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Owned {
                countries: country_rule(r.country_mode.as_deref(), r.country_list.as_deref())?,
                tags: r
                    .tags
                    .split(',')
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect(),
                taken_down: r.taken_down != 0,
                id: r.id,
                title: r.title,
                description: r.description,
                visibility: r.visibility,
                state: r.state,
                category: r.category,
                channel_id: r.channel_id,
                duration_ms: r.duration_ms,
                created_at: r.created_at,
            })
        })
        .collect()
}

/// A change to a video's metadata; `None` fields stay as they are.
#[derive(Debug, Default)]
pub struct VideoPatch {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New visibility.
    pub visibility: Option<Visibility>,
    /// New country rule; `Some(None)` removes it.
    pub countries: Option<Option<CountryRule>>,
    /// Taken down or restored.
    pub taken_down: Option<bool>,
    /// New category; `Some(None)` removes it.
    pub category: Option<Option<String>>,
    /// New tags, comma-separated.
    pub tags: Option<String>,
    /// Another channel of the same owner (the caller checks it is theirs).
    pub channel: Option<String>,
}

/// The channel of a video (`None` if it has none or there is no such video).
pub async fn channel_of(db: &AnyPool, id: &VideoId) -> anyhow::Result<Option<String>> {
    let row: Option<Option<String>> =
        sqlx::query_scalar("SELECT channel_id FROM videos WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(db)
            .await?;
    Ok(row.flatten())
}

/// The owner of a video: `None` if there is no such video, `Some(None)` if it has no owner.
pub async fn owner(db: &AnyPool, id: &VideoId) -> anyhow::Result<Option<Option<String>>> {
    let row: Option<Option<String>> =
        sqlx::query_scalar("SELECT owner_id FROM videos WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(db)
            .await?;
    Ok(row)
}

/// Applies `patch`, bumps the version and queues the new record for the edge, all in one
/// transaction. `None` when there is no such video. The caller wakes the outbox.
pub async fn update(
    db: &AnyPool,
    id: &VideoId,
    patch: &VideoPatch,
) -> anyhow::Result<Option<VideoRecord>> {
    let mut tx = crate::db::begin_write(db).await?;
    let rec = update_in(&mut tx, id, patch).await?;
    tx.commit().await?;
    Ok(rec)
}

/// [`update`] in the caller's transaction.
pub async fn update_in(
    tx: &mut WriteTx,
    id: &VideoId,
    patch: &VideoPatch,
) -> anyhow::Result<Option<VideoRecord>> {
    // Category and channel before the change: a video leaving one changes that feed too.
    let (old_channel, old_category) = placement(&mut **tx, id).await?.unwrap_or_default();
    let was_taken_down: Option<i64> =
        sqlx::query_scalar("SELECT taken_down FROM videos WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut **tx)
            .await?;
    let countries = patch.countries.as_ref();
    let category = patch.category.as_ref();
    let done = sqlx::query(
        "UPDATE videos SET
             title = COALESCE($1, title),
             description = COALESCE($2, description),
             visibility = COALESCE($3, visibility),
             country_mode = CASE WHEN $4 THEN $5 ELSE country_mode END,
             country_list = CASE WHEN $6 THEN $7 ELSE country_list END,
             taken_down = COALESCE($8, taken_down),
             category = CASE WHEN $9 THEN $10 ELSE category END,
             tags = COALESCE($11, tags),
             channel_id = COALESCE($12, channel_id),
             updated_at = $13, version = version + 1
         WHERE id = $14",
    )
    .bind(patch.title.as_deref())
    .bind(patch.description.as_deref())
    .bind(patch.visibility.map(enum_name))
    .bind(countries.is_some())
    .bind(countries.and_then(|c| c.as_ref().map(|r| enum_name(r.mode))))
    .bind(countries.is_some())
    .bind(countries.and_then(|c| c.as_ref().map(country_list)))
    .bind(patch.taken_down.map(i64::from))
    .bind(category.is_some())
    .bind(category.and_then(|c| c.as_deref()))
    .bind(patch.tags.as_deref())
    .bind(patch.channel.as_deref())
    .bind(now() as i64)
    .bind(id.as_str())
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    let left = feeds::of_video(old_channel.as_deref(), old_category.as_deref());
    let rec = publish(tx, id, left).await?;
    if patch.taken_down == Some(true) && was_taken_down == Some(0) {
        webhooks::emit(tx, EventType::VideoTakenDown, id, None).await?;
    }
    Ok(Some(rec))
}

fn country_list(rule: &CountryRule) -> String {
    rule.list
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// What [`delete`] leaves to remove.
#[derive(Debug)]
pub struct Deleted {
    /// The record the edge now has: private, taken down.
    pub tombstone: VideoRecord,
    /// The key of the uploaded source, if one was kept.
    pub source: Option<String>,
}

/// Deletes a video, its comments and reactions, in one transaction that also queues a
/// tombstone record (private, taken down, next version) for the edge, so every playback URL for
/// it fails as soon as the edge has it, and bumps its feeds. Returns the tombstone; `None` if
/// there was no such video. Removing the media files is the caller's (after the commit).
pub async fn delete(db: &AnyPool, id: &VideoId) -> anyhow::Result<Option<Deleted>> {
    let mut tx = crate::db::begin_write(db).await?;
    // A write first, so the transaction holds the write lock from the start.
    sqlx::query(
        "DELETE FROM reactions WHERE target = $1
            OR target IN (SELECT 'comment:' || id FROM comments WHERE video_id = $2)",
    )
    .bind(format!("video:{id}"))
    .bind(id.as_str())
    .execute(&mut *tx)
    .await?;
    let Some(mut rec) = record(&mut *tx, id).await? else {
        return Ok(None);
    };
    let (channel, category) = placement(&mut *tx, id).await?.unwrap_or_default();
    // Read before the row (and its job, by cascade) goes.
    let source = crate::transcode::status::source_of(&mut *tx, id).await?;
    webhooks::emit(&mut tx, EventType::VideoDeleted, id, None).await?;
    sqlx::query("DELETE FROM videos WHERE id = $1")
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
    rec.visibility = Visibility::Private;
    rec.taken_down = true;
    rec.version += 1;
    rec.updated_at = now();
    outbox::enqueue(&mut tx, &rec).await?;
    feeds::bump(
        &mut tx,
        &feeds::of_video(channel.as_deref(), category.as_deref()),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(Deleted {
        tombstone: rec,
        source,
    }))
}
