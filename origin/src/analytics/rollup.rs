//! The rollup: pending events → each view's totals → hourly statistics, one batch per
//! transaction (see the module above for what counts).

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use shared_wasm::beacon::Event;
use sqlx::{Any, AnyPool, Row, Transaction};

use super::events::{Events, Stored};
use super::seqs::Seqs;
use super::{counts, played_ms, retention_mask, startup_bucket, RETENTION_POINTS};
use super::{STARTUP_BUCKETS_MS, VIEW_WINDOW_SECS};
use crate::clock::now;
use crate::db::{begin_serial, Backend};
use crate::jobs::{self, Finished, Job, Lane, NewJob, OnConflict, Policy};
use crate::settings::AnalyticsSettings;

/// The periodic job's kind (one job, keyed `rollup`).
pub const ROLLUP: &str = "analytics.rollup";
/// Any constant: the advisory lock that keeps rollups one at a time on PostgreSQL.
const ROLLUP_LOCK: i64 = 0x726f_6c6c_7570; // "rollup"
/// Batches one run takes before it lets other jobs of the lane have a turn.
const BATCHES_PER_RUN: usize = 20;

const POLICY: Policy = Policy {
    lease_secs: 300,
    max_attempts: 1_000_000,
    backoff_base_secs: 5,
    backoff_cap_secs: 300,
};

/// The rollup's lane, its job made due now.
pub async fn lane(
    db: &AnyPool,
    events: &Events,
    settings: &AnalyticsSettings,
) -> sqlx::Result<Lane> {
    let job = NewJob::new(ROLLUP, "rollup");
    let mut conn = db.acquire().await?;
    jobs::enqueue(&mut conn, &job, OnConflict::Sooner, now()).await?;
    let handler = Rollup {
        db: db.clone(),
        events: events.clone(),
        settings: settings.clone(),
        one_writer: Backend::of(&conn) == Backend::Sqlite,
    };
    Ok(Lane::new(&[ROLLUP], POLICY, handler).poll(Duration::from_secs(settings.rollup_secs)))
}

struct Rollup {
    db: AnyPool,
    events: Events,
    settings: AnalyticsSettings,
    /// SQLite: the database has one writer, which a batch holds while it runs.
    one_writer: bool,
}

#[async_trait::async_trait]
impl jobs::Handler for Rollup {
    async fn run(&self, _job: &Job) -> anyhow::Result<Finished> {
        let batch = self.settings.rollup_batch.max(1);
        for _ in 0..BATCHES_PER_RUN {
            let started = Instant::now();
            if batch_once(&self.db, &self.events, batch).await? < batch {
                return Ok(Finished::Again {
                    at: now() + self.settings.rollup_secs,
                });
            }
            // Batch after batch would starve the API's writes waiting for SQLite's one writer
            // (they poll for it, and time out): it is theirs for as long as a batch held it.
            if self.one_writer {
                tokio::time::sleep(started.elapsed()).await;
            }
        }
        Ok(Finished::Again { at: now() })
    }
}

/// A view's totals, as stored in `playback_views`.
struct View {
    video: String,
    viewer: String,
    country: String,
    device: String,
    hour: i64,
    issued_at: i64,
    watched_ms: i64,
    retention: i64,
    startup_ms: Option<i64>,
    rebuffers: i64,
    rebuffer_ms: i64,
    switches: i64,
    errors: i64,
    counted_at: Option<i64>,
    /// The events counted.
    seqs: Seqs,
}

/// What a batch adds to one hourly row.
#[derive(Default)]
struct Delta {
    plays: i64,
    views: i64,
    watch_ms: i64,
    rebuffers: i64,
    rebuffer_ms: i64,
    switches: i64,
    errors: i64,
    startup: [i64; STARTUP_BUCKETS_MS.len()],
    retention: [i64; RETENTION_POINTS],
}

impl Delta {
    /// The values in the order of [`counter_columns`].
    fn values(&self) -> impl Iterator<Item = i64> + '_ {
        [
            self.plays,
            self.views,
            self.watch_ms,
            self.rebuffers,
            self.rebuffer_ms,
            self.switches,
            self.errors,
        ]
        .into_iter()
        .chain(self.startup)
        .chain(self.retention)
    }
}

/// The hourly row's counters: totals, startup buckets `s0…`, retention points `r0…`.
pub(super) fn counter_columns() -> Vec<String> {
    let totals = [
        "plays",
        "views",
        "watch_ms",
        "rebuffers",
        "rebuffer_ms",
        "switches",
        "errors",
    ];
    totals
        .iter()
        .map(|c| (*c).to_owned())
        .chain((0..STARTUP_BUCKETS_MS.len()).map(|k| format!("s{k}")))
        .chain((0..RETENTION_POINTS).map(|k| format!("r{k}")))
        .collect()
}

/// Most stalls, rendition switches and errors one view counts: a player cannot swamp a video's
/// quality figures.
const MAX_PER_VIEW: i64 = 100;
/// Most a view's watch time counts, in durations of its video (a viewer may watch again).
const MAX_WATCHES: i64 = 4;

type RowKey = (String, i64, String, String);

/// Rolls up at most `limit` pending events of `store` in one transaction; how many it took.
pub async fn batch_once(db: &AnyPool, store: &Events, limit: usize) -> anyhow::Result<usize> {
    let mut tx = begin_serial(db, ROLLUP_LOCK).await?;
    let (events, taken) = store.pending(&mut tx, limit).await?;
    if events.is_empty() {
        return Ok(0);
    }
    let mut durations: HashMap<String, Option<u64>> = HashMap::new();
    let mut views: BTreeMap<String, View> = BTreeMap::new();
    let mut deltas: HashMap<RowKey, Delta> = HashMap::new();
    for stored in &events {
        let view_id = &stored.view_id;
        let received_at = stored.received_at;
        // Written by the ingest from a parsed event, so unreadable only if the store is
        // damaged: skipped (and taken below), or it would stop every rollup after it.
        let event: Event = match serde_json::from_str(&stored.data) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(seq = stored.seq, error = %e, "unreadable playback event skipped");
                continue;
            }
        };
        if !views.contains_key(view_id) {
            let view = match load_view(&mut tx, view_id).await? {
                Some(v) => v,
                None => new_view(stored),
            };
            views.insert(view_id.clone(), view);
        }
        let view = views.get_mut(view_id).expect("inserted above");
        // The database's key already dropped a retried beacon; ClickHouse kept it.
        if store.keeps_duplicates() && !view.seqs.insert(stored.seq) {
            continue;
        }
        let duration = match durations.get(&view.video) {
            Some(d) => *d,
            None => {
                let d = super::duration(&mut tx, &view.video).await?.flatten();
                durations.insert(view.video.clone(), d);
                d
            }
        };
        let key = (
            view.video.clone(),
            view.hour,
            view.country.clone(),
            view.device.clone(),
        );
        let delta = deltas.entry(key).or_default();
        apply(view, &event, received_at, duration, delta);
        let view = &views[view_id];
        if view.counted_at.is_none()
            && counts(view.watched_ms as u64, duration)
            && !counted_lately(&mut tx, &views, view_id, received_at).await?
        {
            views.get_mut(view_id).expect("present").counted_at = Some(received_at);
            delta.views += 1;
        }
    }
    for (id, v) in &views {
        save_view(&mut tx, id, v).await?;
    }
    for (key, d) in &deltas {
        add_to_hour(&mut tx, key, d).await?;
    }
    Events::taken(&mut tx, taken).await?;
    tx.commit().await?;
    Ok(events.len())
}

/// Adds one event to its view and to the view's hourly row. What a player claims is capped by
/// the clock: no more play than a player at double speed could have made since the playback
/// was allowed (and a minute), and no more than [`MAX_WATCHES`] times the video; no longer
/// stalls than the time gone by.
fn apply(view: &mut View, event: &Event, received_at: i64, duration: Option<u64>, d: &mut Delta) {
    let elapsed_ms = ((received_at - view.issued_at).max(0) + 60) * 1000;
    match event {
        Event::Start { startup_ms, .. } if view.startup_ms.is_none() => {
            view.startup_ms = Some(i64::from(*startup_ms));
            d.startup[startup_bucket(*startup_ms)] += 1;
        }
        Event::Start { .. } => {}
        Event::Heartbeat { played, .. } | Event::End { played, .. } => {
            let mut cap = elapsed_ms * 2;
            if let Some(duration) = duration.filter(|&d| d > 0) {
                cap = cap.min(duration as i64 * MAX_WATCHES);
            }
            let add = (played_ms(event) as i64).min(cap - view.watched_ms).max(0);
            if add > 0 && view.watched_ms == 0 {
                d.plays += 1;
            }
            view.watched_ms += add;
            d.watch_ms += add;
            if let Some(duration) = duration.filter(|&d| d > 0) {
                let old = view.retention as u32;
                let new = retention_mask(played, duration) & !old;
                for (k, n) in d.retention.iter_mut().enumerate() {
                    *n += i64::from(new >> k & 1);
                }
                view.retention = i64::from(old | new);
            }
        }
        Event::Rebuffer { ms, .. } if view.rebuffers < MAX_PER_VIEW => {
            let add = i64::from(*ms).min(elapsed_ms - view.rebuffer_ms).max(0);
            view.rebuffers += 1;
            view.rebuffer_ms += add;
            d.rebuffers += 1;
            d.rebuffer_ms += add;
        }
        Event::Rendition { .. } if view.switches < MAX_PER_VIEW => {
            view.switches += 1;
            d.switches += 1;
        }
        // A fatal error ends a playback: one per view.
        Event::Error { .. } if view.errors == 0 => {
            view.errors = 1;
            d.errors += 1;
        }
        Event::Rebuffer { .. } | Event::Rendition { .. } | Event::Error { .. } => {}
    }
}

/// Whether another view of the same viewer and video counted within the window before `at`
/// (stored, or counted earlier in this batch).
async fn counted_lately(
    tx: &mut Transaction<'static, Any>,
    views: &BTreeMap<String, View>,
    view_id: &str,
    at: i64,
) -> sqlx::Result<bool> {
    let me = &views[view_id];
    let since = at - VIEW_WINDOW_SECS as i64;
    let in_batch = views.iter().any(|(id, v)| {
        id != view_id
            && v.viewer == me.viewer
            && v.video == me.video
            && v.counted_at.is_some_and(|t| t > since)
    });
    if in_batch {
        return Ok(true);
    }
    let stored: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM playback_views
         WHERE viewer = $1 AND video_id = $2 AND counted_at > $3 AND view_id <> $4 LIMIT 1",
    )
    .bind(&me.viewer)
    .bind(&me.video)
    .bind(since)
    .bind(view_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(stored.is_some())
}

fn new_view(e: &Stored) -> View {
    View {
        video: e.video_id.clone(),
        viewer: e.viewer.clone(),
        country: e.country.clone(),
        device: e.device.clone(),
        hour: e.received_at - e.received_at.rem_euclid(3600),
        issued_at: e.issued_at,
        watched_ms: 0,
        retention: 0,
        startup_ms: None,
        rebuffers: 0,
        rebuffer_ms: 0,
        switches: 0,
        errors: 0,
        counted_at: None,
        seqs: Seqs::default(),
    }
}

async fn load_view(tx: &mut Transaction<'static, Any>, id: &str) -> sqlx::Result<Option<View>> {
    let row = sqlx::query(
        "SELECT video_id, viewer, country, device, hour, issued_at, watched_ms, retention,
                startup_ms, rebuffers, rebuffer_ms, switches, errors, counted_at, seqs
         FROM playback_views WHERE view_id = $1",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| {
        Ok(View {
            video: r.try_get("video_id")?,
            viewer: r.try_get("viewer")?,
            country: r.try_get("country")?,
            device: r.try_get("device")?,
            hour: r.try_get("hour")?,
            issued_at: r.try_get("issued_at")?,
            watched_ms: r.try_get("watched_ms")?,
            retention: r.try_get("retention")?,
            startup_ms: r.try_get("startup_ms")?,
            rebuffers: r.try_get("rebuffers")?,
            rebuffer_ms: r.try_get("rebuffer_ms")?,
            switches: r.try_get("switches")?,
            errors: r.try_get("errors")?,
            counted_at: r.try_get("counted_at")?,
            // Damaged, the set starts again (a replay of this view may then count twice)
            // rather than stop every rollup after it.
            seqs: Seqs::decode(&r.try_get::<String, _>("seqs")?).unwrap_or_else(|e| {
                tracing::error!(error = %e, "a view's counted sequence numbers unreadable");
                Seqs::default()
            }),
        })
    })
    .transpose()
}

async fn save_view(tx: &mut Transaction<'static, Any>, id: &str, v: &View) -> sqlx::Result<()> {
    sqlx::query(
        // `members`: whether the video was members-only when the view was first rolled up
        // (what creators' earnings split the membership pool by), never changed after.
        "INSERT INTO playback_views (view_id, video_id, viewer, country, device, hour, issued_at,
                                     watched_ms, retention, startup_ms, rebuffers, rebuffer_ms,
                                     switches, errors, counted_at, seqs, members)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                 (SELECT COUNT(*) FROM videos WHERE id = $2 AND visibility = 'members'))
         ON CONFLICT (view_id) DO UPDATE SET watched_ms = excluded.watched_ms,
           retention = excluded.retention, startup_ms = excluded.startup_ms,
           rebuffers = excluded.rebuffers, rebuffer_ms = excluded.rebuffer_ms,
           switches = excluded.switches, errors = excluded.errors,
           counted_at = excluded.counted_at, seqs = excluded.seqs",
    )
    .bind(id)
    .bind(&v.video)
    .bind(&v.viewer)
    .bind(&v.country)
    .bind(&v.device)
    .bind(v.hour)
    .bind(v.issued_at)
    .bind(v.watched_ms)
    .bind(v.retention)
    .bind(v.startup_ms)
    .bind(v.rebuffers)
    .bind(v.rebuffer_ms)
    .bind(v.switches)
    .bind(v.errors)
    .bind(v.counted_at)
    .bind(v.seqs.encode())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Adds `d` to the hourly row `key`, made if missing.
async fn add_to_hour(
    tx: &mut Transaction<'static, Any>,
    key: &RowKey,
    d: &Delta,
) -> sqlx::Result<()> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| {
        let columns = counter_columns();
        let params: Vec<String> = (5..5 + columns.len()).map(|i| format!("${i}")).collect();
        let sums: Vec<String> = columns
            .iter()
            .map(|c| format!("{c} = video_stats_hourly.{c} + excluded.{c}"))
            .collect();
        format!(
            "INSERT INTO video_stats_hourly (video_id, hour, country, device, {})
             VALUES ($1, $2, $3, $4, {})
             ON CONFLICT (video_id, hour, country, device) DO UPDATE SET {}",
            columns.join(", "),
            params.join(", "),
            sums.join(", ")
        )
    });
    let (video, hour, country, device) = key;
    let mut q = sqlx::query(sql)
        .bind(video)
        .bind(hour)
        .bind(country)
        .bind(device);
    for v in d.values() {
        q = q.bind(v);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}
