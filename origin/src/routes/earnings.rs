//! Creators' earnings: `GET /v1/creator/earnings` (the closed months), `GET
//! /v1/creator/earnings/{month}` (a statement with its inputs) and `…/{month}/csv` (the same as
//! CSV); an admin's `POST /v1/admin/earnings/{month}/close` and `GET /v1/admin/earnings/{month}`.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use shared_wasm::jwt::Role;

use crate::caller::Caller;
use crate::clock::now;
use crate::earnings::{self, CloseError, Line, Month, MonthFigures, Statement};
use crate::error::ApiError;
use crate::state::AppState;

/// Months listed, newest first.
const MONTHS_LISTED: i64 = 36;

fn month(s: &str) -> Result<Month, ApiError> {
    Month::parse(s).ok_or(ApiError::BadRequest {
        code: "invalid_month",
        message: "a month is YYYY-MM".into(),
    })
}

const NOT_CLOSED: ApiError = ApiError::Refused {
    status: StatusCode::NOT_FOUND,
    code: "month_not_closed",
    message: "that month has no statements yet: it closes a few days after it ends",
};

fn no_store(body: serde_json::Value) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// A closed month in a creator's list.
#[derive(serde::Serialize, sqlx::FromRow)]
struct MonthTotal {
    month: String,
    currency: String,
    membership: i64,
    ads: i64,
    total: i64,
}

/// The closed months with the caller's totals (zero where they earned nothing).
pub async fn months(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(Role::Creator)?;
    let items: Vec<MonthTotal> = sqlx::query_as(
        "SELECT m.month, m.currency, COALESCE(s.membership, 0) AS membership,
                COALESCE(s.ad_net, 0) AS ads, COALESCE(s.total, 0) AS total
         FROM earnings_months m
         LEFT JOIN earnings_statements s ON s.month = m.month AND s.creator_id = $1
         ORDER BY m.month DESC LIMIT $2",
    )
    .bind(&caller.0.sub)
    .bind(MONTHS_LISTED)
    .fetch_all(&state.db)
    .await?;
    Ok(no_store(json!({ "items": items })))
}

async fn load(
    state: &AppState,
    month: Month,
    creator: &str,
) -> Result<(MonthFigures, Statement, Vec<Line>), ApiError> {
    let mut db = state.db.acquire().await?;
    let figures = earnings::figures(&mut db, month).await?.ok_or(NOT_CLOSED)?;
    let (statement, lines) = earnings::statement(&mut db, month, creator).await?;
    Ok((figures, statement, lines))
}

/// The caller's statement for a closed month, with what it was computed from.
pub async fn statement(
    State(state): State<AppState>,
    caller: Caller,
    Path(m): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Role::Creator)?;
    let (figures, statement, lines) = load(&state, month(&m)?, &caller.0.sub).await?;
    Ok(no_store(json!({
        "month": figures, "statement": statement, "videos": lines,
    })))
}

/// The same statement as CSV: one row per figure, platform's first, then each video's, then
/// the caller's, so a spreadsheet can redo every sum.
pub async fn statement_csv(
    State(state): State<AppState>,
    caller: Caller,
    Path(m): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Role::Creator)?;
    let month = month(&m)?;
    let (f, s, lines) = load(&state, month, &caller.0.sub).await?;
    let mut rows: Vec<(&str, &str, &str, &str, i64)> = vec![
        ("platform", "membership_gross", "", "", f.membership_gross),
        (
            "platform",
            "membership_platform_share",
            "",
            "",
            f.membership_platform,
        ),
        ("platform", "membership_pool", "", "", f.membership_pool),
        (
            "platform",
            "membership_undistributed",
            "",
            "",
            f.membership_undistributed,
        ),
        ("platform", "members_watch_ms", "", "", f.members_watch_ms),
        ("platform", "ad_impressions", "", "", f.ad_impressions),
        ("platform", "ad_gross_milli", "", "", f.ad_gross_milli),
        ("platform", "ad_gross", "", "", f.ad_gross),
        ("platform", "share_bps", "", "", f.share_bps),
    ];
    for l in &lines {
        let (v, t) = (l.video_id.as_str(), l.title.as_deref().unwrap_or(""));
        rows.push(("video", "members_watch_ms", v, t, l.members_watch_ms));
        rows.push(("video", "ad_impressions", v, t, l.ad_impressions));
        rows.push(("video", "ad_gross_milli", v, t, l.ad_gross_milli));
    }
    rows.extend([
        ("statement", "members_watch_ms", "", "", s.members_watch_ms),
        ("statement", "membership", "", "", s.membership),
        ("statement", "ad_impressions", "", "", s.ad_impressions),
        ("statement", "ad_gross_milli", "", "", s.ad_gross_milli),
        ("statement", "ad_gross", "", "", s.ad_gross),
        ("statement", "ad_platform_share", "", "", s.ad_platform),
        ("statement", "ad_net", "", "", s.ad_net),
        ("statement", "total", "", "", s.total),
    ]);
    let mut w = csv::Writer::from_writer(Vec::new());
    let write = |w: &mut csv::Writer<Vec<u8>>| -> csv::Result<()> {
        w.write_record(["section", "item", "video_id", "title", "value"])?;
        for (section, item, video, title, value) in &rows {
            let title = spreadsheet_safe(title);
            w.write_record([*section, *item, *video, title.as_str(), &value.to_string()])?;
        }
        w.flush()?;
        Ok(())
    };
    write(&mut w).map_err(anyhow::Error::from)?;
    let body = w.into_inner().map_err(|e| anyhow::anyhow!("csv: {e}"))?;
    let name = format!(
        "attachment; filename=\"earnings-{month}-{}.csv\"",
        f.currency
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, name),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response())
}

/// A cell a spreadsheet shows as text: one that would start a formula gets a leading `'`.
fn spreadsheet_safe(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_owned(),
    }
}

/// Closes a month that has ended (again: the same figures); 409 before its end.
pub async fn close(
    State(state): State<AppState>,
    caller: Caller,
    Path(m): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let month = month(&m)?;
    match earnings::close(&state.db, &state.settings.earnings, month, now()).await {
        Ok(figures) => Ok(no_store(json!(figures))),
        Err(CloseError::NotOver(_)) => Err(ApiError::conflict(
            "month_not_over",
            "a month closes after it has ended",
        )),
        Err(CloseError::Db(e)) => Err(e.into()),
    }
}

/// A closed month's figures and every creator's statement.
pub async fn month_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(m): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let month = month(&m)?;
    let mut db = state.db.acquire().await?;
    let figures = earnings::figures(&mut db, month).await?.ok_or(NOT_CLOSED)?;
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT creator_id, membership, ad_net, total FROM earnings_statements
         WHERE month = $1 ORDER BY creator_id",
    )
    .bind(month.to_string())
    .fetch_all(&mut *db)
    .await?;
    let statements: Vec<_> = rows
        .into_iter()
        .map(|(creator, membership, ads, total)| {
            json!({"creator_id": creator, "membership": membership, "ads": ads, "total": total})
        })
        .collect();
    Ok(no_store(
        json!({ "month": figures, "statements": statements }),
    ))
}
