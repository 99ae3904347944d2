//! `GET /v1/creator/stats?from&to&video`: a creator's statistics, and `GET /v1/admin/stats`
//! the platform's; from the hourly rollups and the views (unique viewers cannot be added up
//! across hours).

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use shared_wasm::jwt::Role;
use shared_wasm::VideoId;
use sqlx::{AnyPool, Row};

use super::rollup::counter_columns;
use super::{percentile, RETENTION_POINTS, STARTUP_BUCKETS_MS};
use crate::caller::Caller;
use crate::clock::now;
use crate::error::ApiError;
use crate::state::AppState;

/// The default span: the last 28 days.
const DEFAULT_SPAN_SECS: u64 = 28 * 86_400;
/// The longest span one request reads.
const MAX_SPAN_SECS: u64 = 92 * 86_400;
/// Spans up to this long are told hour by hour, longer ones day by day.
const HOURLY_UP_TO_SECS: u64 = 3 * 86_400;

/// `GET /v1/creator/stats` parameters: unix seconds, `from` inclusive and `to` exclusive,
/// rounded out to whole hours.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    from: Option<u64>,
    to: Option<u64>,
    video: Option<String>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_query",
        message: message.into(),
    }
}

/// The caller's statistics: all their videos, or one of them.
pub async fn creator(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<StatsQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Creator)?;
    let Query(q) = query.map_err(|e| bad(e.body_text()))?;
    let (from, to) = span(&q)?;
    let video = match q.video.as_deref() {
        Some(v) => {
            let id = VideoId::parse(v).map_err(|e| bad(format!("video id {e}")))?;
            let owner: Option<Option<String>> =
                sqlx::query_scalar("SELECT owner_id FROM videos WHERE id = $1")
                    .bind(id.as_str())
                    .fetch_optional(&state.db)
                    .await?;
            // Someone else's video is as unknown as a missing one.
            if owner.flatten().as_deref() != Some(caller.0.sub.as_str()) {
                return Err(ApiError::NotFound("video"));
            }
            Some(id)
        }
        None => None,
    };
    let stats = read(&state.db, Some(&caller.0.sub), video.as_ref(), from, to).await?;
    Ok(([(header::CACHE_CONTROL, "private, no-store")], Json(stats)))
}

/// `GET /v1/admin/stats?from&to`: the platform's totals (role admin), every video.
pub async fn platform(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<StatsQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Admin)?;
    let Query(q) = query.map_err(|e| bad(e.body_text()))?;
    if q.video.is_some() {
        return Err(bad("the platform's statistics take from and to only"));
    }
    let (from, to) = span(&q)?;
    let stats = read(&state.db, None, None, from, to).await?;
    Ok(([(header::CACHE_CONTROL, "private, no-store")], Json(stats)))
}

/// Latest `to` taken (the edge passes at most 12 digits): keeps the arithmetic in range.
const MAX_TIME: u64 = 999_999_999_999;

/// The query's span, rounded out to whole hours (checked as asked, and as rounded).
fn span(q: &StatsQuery) -> Result<(u64, u64), ApiError> {
    let to = q.to.unwrap_or_else(|| now() + 1).min(MAX_TIME);
    let from = q.from.unwrap_or(to.saturating_sub(DEFAULT_SPAN_SECS));
    let rounded = (from - from % 3600, to.div_ceil(3600) * 3600);
    if from >= to || rounded.1 - rounded.0 > MAX_SPAN_SECS {
        return Err(bad(format!(
            "from must be before to, at most {} days apart",
            MAX_SPAN_SECS / 86_400
        )));
    }
    Ok(rounded)
}

#[derive(Default)]
struct Sums {
    plays: i64,
    views: i64,
    watch_ms: i64,
}

impl Sums {
    fn add(&mut self, plays: i64, views: i64, watch_ms: i64) {
        self.plays += plays;
        self.views += views;
        self.watch_ms += watch_ms;
    }

    fn json(&self) -> Value {
        json!({"plays": self.plays, "views": self.views, "watch_ms": self.watch_ms})
    }
}

/// The statistics of `owner`'s videos (everyone's without one; `video` alone when given) for
/// the hours in `[from, to)`.
pub async fn read(
    db: &AnyPool,
    owner: Option<&str>,
    video: Option<&VideoId>,
    from: u64,
    to: u64,
) -> anyhow::Result<Value> {
    // '' matches every owner and every video: the filters stay bound parameters.
    let (owner, video_id) = (owner.unwrap_or(""), video.map_or("", |v| v.as_str()));
    let step = if to - from <= HOURLY_UP_TO_SECS {
        3600
    } else {
        86_400
    };
    let columns = counter_columns();
    // Summed by the database per step, country and device (CAST: PostgreSQL sums BIGINT into
    // NUMERIC); the rest is added up here.
    let sums: Vec<String> = columns
        .iter()
        .map(|c| format!("CAST(SUM(s.{c}) AS BIGINT) AS {c}"))
        .collect();
    let rows = sqlx::query(&format!(
        "SELECT s.hour - (s.hour % $5) AS bucket, s.country, s.device, {}
         FROM video_stats_hourly s JOIN videos v ON v.id = s.video_id
         WHERE ($1 = '' OR v.owner_id = $1) AND s.hour >= $2 AND s.hour < $3
           AND ($4 = '' OR s.video_id = $4)
         GROUP BY 1, 2, 3",
        sums.join(", ")
    ))
    .bind(owner)
    .bind(from as i64)
    .bind(to as i64)
    .bind(video_id)
    .bind(step as i64)
    .fetch_all(db)
    .await?;
    let mut total = vec![0i64; columns.len()];
    let mut series: BTreeMap<i64, Sums> = BTreeMap::new();
    let mut countries: BTreeMap<String, Sums> = BTreeMap::new();
    let mut devices: BTreeMap<String, Sums> = BTreeMap::new();
    for r in &rows {
        let values: Vec<i64> = columns
            .iter()
            .map(|c| r.try_get::<i64, _>(c.as_str()))
            .collect::<Result<_, _>>()?;
        total.iter_mut().zip(&values).for_each(|(t, v)| *t += v);
        let (plays, views, watch) = (values[0], values[1], values[2]);
        let bucket: i64 = r.try_get("bucket")?;
        series.entry(bucket).or_default().add(plays, views, watch);
        let country: String = r.try_get("country")?;
        countries
            .entry(country)
            .or_default()
            .add(plays, views, watch);
        let device: String = r.try_get("device")?;
        devices.entry(device).or_default().add(plays, views, watch);
    }
    let [plays, views, watch_ms, rebuffers, rebuffer_ms, switches, errors] =
        <[i64; 7]>::try_from(&total[..7]).expect("seven totals");
    let startup = &total[7..7 + STARTUP_BUCKETS_MS.len()];
    let retention = &total[7 + STARTUP_BUCKETS_MS.len()..];
    debug_assert_eq!(retention.len(), RETENTION_POINTS);
    let unique: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT p.viewer) FROM playback_views p JOIN videos v ON v.id = p.video_id
         WHERE ($1 = '' OR v.owner_id = $1) AND p.hour >= $2 AND p.hour < $3
           AND p.counted_at IS NOT NULL AND ($4 = '' OR p.video_id = $4)",
    )
    .bind(owner)
    .bind(from as i64)
    .bind(to as i64)
    .bind(video_id)
    .fetch_one(db)
    .await?;
    let ratio = |a: i64, b: i64| if b > 0 { a as f64 / b as f64 } else { 0.0 };
    let named = |m: BTreeMap<String, Sums>, field: &str| -> Vec<Value> {
        m.into_iter()
            .map(|(name, s)| {
                let mut v = s.json();
                v[field] = json!(if name.is_empty() { None } else { Some(name) });
                v
            })
            .collect()
    };
    Ok(json!({
        "from": from,
        "to": to,
        "video": video,
        "granularity": if step == 3600 { "hour" } else { "day" },
        "totals": {
            "plays": plays,
            "views": views,
            "unique_viewers": unique,
            "watch_ms": watch_ms,
            "average_view_ms": if plays > 0 { watch_ms / plays } else { 0 },
            "startup_ms": {"p50": percentile(startup, 0.5), "p95": percentile(startup, 0.95)},
            "rebuffers": rebuffers,
            "rebuffer_ratio": ratio(rebuffer_ms, watch_ms + rebuffer_ms),
            "rendition_switches": switches,
            "errors": errors,
        },
        "series": series.into_iter().map(|(t, s)| {
            let mut v = s.json();
            v["start"] = json!(t);
            v
        }).collect::<Vec<_>>(),
        // Plays still watching at 0 %, 5 % … 95 % (one video only: a mix of lengths says nothing).
        "retention": video.map(|_| retention.iter().map(|&n| ratio(n, plays)).collect::<Vec<_>>()),
        "countries": named(countries, "country"),
        "devices": named(devices, "device"),
    }))
}
