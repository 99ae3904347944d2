//! Ad campaigns, an admin's: `POST`/`GET /v1/ads/campaigns`, `GET`/`PATCH
//! /v1/ads/campaigns/{id}` (each with what its ads' tracking reported), and the edge's
//! read-through of the catalog, `GET /internal/ads/catalog`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use shared_wasm::ads::AdEvent;
use shared_wasm::jwt::Role;
use shared_wasm::record::{VideoState, Visibility, MAX_CAMPAIGNS};
use shared_wasm::{CountryCode, VideoId};
use sqlx::AnyConnection;

use super::fields::{line, slug};
use crate::ads::{self, Campaign, COLUMNS};
use crate::caller::Caller;
use crate::clock::now;
use crate::db::begin_write;
use crate::error::{ApiError, ApiJson};
use crate::keys::random_bytes;
use crate::state::AppState;
use crate::videos;

const MAX_NAME: usize = 100;
const MAX_CREATIVE_MS: u64 = 120_000;
const MAX_URL: usize = 512;
const MAX_COUNTRIES: usize = 30;
const MAX_CATEGORIES: usize = 10;
const MAX_DAILY_CAP: i64 = 100_000_000;
const MAX_FREQUENCY_CAP: i64 = 100;
const DEFAULT_FREQUENCY_CAP: i64 = 3;
/// A thousand impressions at most 10,000.00 in the currency's major unit.
const MAX_CPM_MINOR: i64 = 1_000_000;

/// Body of `POST /v1/ads/campaigns`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCampaign {
    name: String,
    creative: String,
    click_url: String,
    #[serde(default)]
    countries: Vec<String>,
    #[serde(default)]
    categories: Vec<String>,
    starts_at: Option<u64>,
    ends_at: u64,
    daily_cap: i64,
    frequency_cap: Option<i64>,
    cpm_minor: i64,
}

/// Body of `PATCH /v1/ads/campaigns/{id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditCampaign {
    status: Option<Status>,
    name: Option<String>,
    click_url: Option<String>,
    ends_at: Option<u64>,
    daily_cap: Option<i64>,
    frequency_cap: Option<i64>,
    cpm_minor: Option<i64>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Status {
    Active,
    Paused,
}

fn invalid(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidField {
        field,
        message: message.into(),
    }
}

fn in_range(field: &'static str, v: i64, max: i64) -> Result<i64, ApiError> {
    if (1..=max).contains(&v) {
        Ok(v)
    } else {
        Err(invalid(field, format!("1 to {max}")))
    }
}

/// An absolute `https` URL without credentials, at most [`MAX_URL`] bytes: where a viewer's
/// browser goes on a click, so nothing else (no `javascript:`, no `data:`).
fn click_url(s: &str) -> Result<String, ApiError> {
    let err = || {
        invalid(
            "click_url",
            format!("an https URL of at most {MAX_URL} bytes"),
        )
    };
    if s.len() > MAX_URL {
        return Err(err());
    }
    let url = url::Url::parse(s).map_err(|_| err())?;
    if url.scheme() != "https"
        || url.host_str().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(err());
    }
    Ok(url.to_string())
}

fn countries(list: &[String]) -> Result<String, ApiError> {
    if list.len() > MAX_COUNTRIES {
        return Err(invalid("countries", format!("at most {MAX_COUNTRIES}")));
    }
    let mut codes: Vec<String> = list
        .iter()
        .map(|c| {
            CountryCode::parse(c)
                .map(|c| c.as_str().to_owned())
                .map_err(|e| invalid("countries", format!("{c:?}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    codes.sort();
    codes.dedup();
    Ok(codes.join(","))
}

fn categories(list: &[String]) -> Result<String, ApiError> {
    if list.len() > MAX_CATEGORIES || !list.iter().all(|c| slug(c)) {
        return Err(invalid(
            "categories",
            format!("at most {MAX_CATEGORIES} of 1 to 32 of a-z, 0-9, '-'"),
        ));
    }
    let mut list = list.to_vec();
    list.sort();
    list.dedup();
    Ok(list.join(","))
}

/// The creative must play for anyone: public, ready, not taken down, with a known duration.
async fn creative(db: &mut AnyConnection, id: &str) -> Result<String, ApiError> {
    let id = VideoId::parse(id).map_err(|e| invalid("creative", format!("video id {e}")))?;
    let rec = videos::record(&mut *db, &id)
        .await?
        .ok_or_else(|| invalid("creative", "no such video"))?;
    if rec.visibility != Visibility::Public
        || rec.state != VideoState::Ready
        || rec.taken_down
        || rec.duration_ms.is_none()
    {
        return Err(invalid(
            "creative",
            "must be a public, transcoded video that is not taken down",
        ));
    }
    // The viewer's playback URL for the video, asked before the ad, must outlast it.
    if rec.duration_ms.is_some_and(|d| d > MAX_CREATIVE_MS) {
        return Err(invalid("creative", "must be at most 2 minutes long"));
    }
    Ok(id.as_str().to_owned())
}

fn too_many() -> ApiError {
    ApiError::Refused {
        status: StatusCode::CONFLICT,
        code: "too_many_campaigns",
        message: "at most 32 campaigns may be active at once: pause or end one first",
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// Starts a campaign; 201 with it.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewCampaign>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let now = now();
    let starts_at = body.starts_at.unwrap_or(now);
    if body.ends_at <= starts_at.max(now) {
        return Err(invalid("ends_at", "after starts_at and in the future"));
    }
    let name = line("name", &body.name, MAX_NAME)?;
    let click_url = click_url(&body.click_url)?;
    let countries = countries(&body.countries)?;
    let categories = categories(&body.categories)?;
    let daily_cap = in_range("daily_cap", body.daily_cap, MAX_DAILY_CAP)?;
    let frequency_cap = in_range(
        "frequency_cap",
        body.frequency_cap.unwrap_or(DEFAULT_FREQUENCY_CAP),
        MAX_FREQUENCY_CAP,
    )?;
    let cpm_minor = in_range("cpm_minor", body.cpm_minor, MAX_CPM_MINOR)?;
    let id = format!(
        "ad_{}",
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            random_bytes::<9>()
        )
    );
    let mut tx = begin_write(&state.db).await?;
    let creative = creative(&mut tx, &body.creative).await?;
    if ads::live_count(&mut tx, now).await? >= MAX_CAMPAIGNS as i64 {
        return Err(too_many());
    }
    sqlx::query(
        "INSERT INTO ad_campaigns (id, owner_id, name, creative_id, click_url, countries,
             categories, starts_at, ends_at, daily_cap, frequency_cap, cpm_minor, status,
             paused_until, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'active', 0, $13, $13)",
    )
    .bind(&id)
    .bind(&caller.0.sub)
    .bind(&name)
    .bind(&creative)
    .bind(&click_url)
    .bind(&countries)
    .bind(&categories)
    .bind(starts_at as i64)
    .bind(body.ends_at as i64)
    .bind(daily_cap)
    .bind(frequency_cap)
    .bind(cpm_minor)
    .bind(now as i64)
    .execute(&mut *tx)
    .await?;
    ads::publish(&mut tx, now).await?;
    let campaign = ads::get(&mut tx, &id).await?.ok_or(NO_CAMPAIGN)?;
    tx.commit().await?;
    tracing::info!(campaign = %id, by = %caller.0.sub, "ad campaign created");
    let shown = with_figures(&state, vec![campaign]).await?;
    Ok(answer(StatusCode::CREATED, shown[0].clone()))
}

const NO_CAMPAIGN: ApiError = ApiError::NotFound("campaign");

/// Every campaign, newest first, with its figures.
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let rows: Vec<Campaign> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM ad_campaigns ORDER BY created_at DESC, id LIMIT 200"
    ))
    .fetch_all(&state.db)
    .await?;
    let items = with_figures(&state, rows).await?;
    let currency = state.settings.earnings.currency.to_ascii_lowercase();
    Ok(answer(
        StatusCode::OK,
        json!({ "items": items, "currency": currency }),
    ))
}

/// One campaign with its figures.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let campaign = ads::get(&mut *state.db.acquire().await?, &id)
        .await?
        .ok_or(NO_CAMPAIGN)?;
    let shown = with_figures(&state, vec![campaign]).await?;
    Ok(answer(StatusCode::OK, shown[0].clone()))
}

/// Pauses or resumes a campaign, or changes its name, URL, end, caps or price (a new price
/// applies to impressions from now on).
pub async fn edit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EditCampaign>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let now = now();
    let mut tx = begin_write(&state.db).await?;
    let mut c = ads::get(&mut tx, &id).await?.ok_or(NO_CAMPAIGN)?;
    let was_live = c.status == "active" && c.ends_at > now as i64;
    if let Some(s) = body.status {
        c.status = if s == Status::Active {
            "active"
        } else {
            "paused"
        }
        .into();
    }
    if let Some(n) = &body.name {
        c.name = line("name", n, MAX_NAME)?;
    }
    if let Some(u) = &body.click_url {
        c.click_url = click_url(u)?;
    }
    if let Some(e) = body.ends_at {
        if e <= (c.starts_at as u64).max(now) {
            return Err(invalid("ends_at", "after starts_at and in the future"));
        }
        c.ends_at = e as i64;
    }
    if let Some(v) = body.daily_cap {
        c.daily_cap = in_range("daily_cap", v, MAX_DAILY_CAP)?;
    }
    if let Some(v) = body.frequency_cap {
        c.frequency_cap = in_range("frequency_cap", v, MAX_FREQUENCY_CAP)?;
    }
    if let Some(v) = body.cpm_minor {
        c.cpm_minor = in_range("cpm_minor", v, MAX_CPM_MINOR)?;
    }
    // A resumed campaign, or one given a higher cap, runs again today if it is under its cap.
    if body.status.is_some() || body.daily_cap.is_some() {
        let today = ads::impressions_on(&mut tx, &c.id, (now / 86_400) as i64).await?;
        if today < c.daily_cap {
            c.paused_until = 0;
        }
    }
    let live = c.status == "active" && c.ends_at > now as i64;
    if live && !was_live && ads::live_count(&mut tx, now).await? >= MAX_CAMPAIGNS as i64 {
        return Err(too_many());
    }
    sqlx::query(
        "UPDATE ad_campaigns SET status = $1, name = $2, click_url = $3, ends_at = $4,
             daily_cap = $5, frequency_cap = $6, cpm_minor = $7, updated_at = $8,
             paused_until = $9
         WHERE id = $10",
    )
    .bind(&c.status)
    .bind(&c.name)
    .bind(&c.click_url)
    .bind(c.ends_at)
    .bind(c.daily_cap)
    .bind(c.frequency_cap)
    .bind(c.cpm_minor)
    .bind(now as i64)
    .bind(c.paused_until)
    .bind(&c.id)
    .execute(&mut *tx)
    .await?;
    ads::publish(&mut tx, now).await?;
    let campaign = ads::get(&mut tx, &id).await?.ok_or(NO_CAMPAIGN)?;
    tx.commit().await?;
    tracing::info!(campaign = %id, by = %caller.0.sub, "ad campaign changed");
    let shown = with_figures(&state, vec![campaign]).await?;
    Ok(answer(StatusCode::OK, shown[0].clone()))
}

/// The campaigns as JSON, each with `figures`: its ads' events counted (each once per ad view),
/// today's impressions (UTC) and what its impressions cost so far (the sum of their prices per
/// thousand, divided by a thousand and rounded down, in minor units).
async fn with_figures(state: &AppState, campaigns: Vec<Campaign>) -> Result<Vec<Value>, ApiError> {
    let today = (now() / 86_400) as i64;
    let mut out = Vec::with_capacity(campaigns.len());
    let mut db = state.db.acquire().await?;
    for c in campaigns {
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            // Sums cast: PostgreSQL sums BIGINTs as NUMERIC.
            "SELECT event, COUNT(*), CAST(COALESCE(SUM(cpm_minor), 0) AS BIGINT),
                    CAST(COALESCE(SUM(CASE WHEN day = $2 THEN 1 ELSE 0 END), 0) AS BIGINT)
             FROM ad_events WHERE campaign_id = $1 GROUP BY event",
        )
        .bind(&c.id)
        .bind(today)
        .fetch_all(&mut *db)
        .await?;
        let mut figures: BTreeMap<&str, i64> = AdEvent::ALL.map(|e| (e.as_str(), 0)).into();
        let (mut spend_milli, mut today_impressions) = (0, 0);
        for (event, n, price, on_day) in rows {
            if let Some(e) = AdEvent::parse(&event) {
                figures.insert(e.as_str(), n);
                if e == AdEvent::Impression {
                    spend_milli = price;
                    today_impressions = on_day;
                }
            }
        }
        let mut v = serde_json::to_value(&c).map_err(anyhow::Error::from)?;
        v["currency"] = state.settings.earnings.currency.to_ascii_lowercase().into();
        v["figures"] = json!({
            "events": figures,
            "impressions_today": today_impressions,
            "spend_minor": spend_milli / 1000,
        });
        out.push(v);
    }
    Ok(out)
}

/// `GET /internal/ads/catalog`: the catalog as the edge would have it from the sync, for an
/// edge whose KV has none yet.
pub async fn catalog(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut db = state.db.acquire().await?;
    let version = ads::version(&mut db).await?;
    let record = ads::catalog(&mut db, now(), version).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/cbor")],
        record.to_cbor(),
    )
        .into_response())
}
