//! Creators' earnings: each month closed once into statements.
//!
//! - **Memberships**: the invoices members paid in the month (`billing_invoices`, recorded by the
//!   billing webhooks, in the configured currency), less the platform's share, make a pool that
//!   is split among creators pro rata by the watch time their members-only videos had that
//!   month (the playback views whose first hour falls in it, of a video that was members-only
//!   when the view was rolled up; a creator's own watching left out). No such watch time: the
//!   pool stays with the platform, said so.
//! - **Ads**: every impression of the month on a creator's video earns its price per thousand
//!   (as it was when the impression came): the month's total is rounded down to a minor unit and
//!   split among creators by what their impressions earned, then each creator's part less the
//!   platform's share.
//!
//! Every amount is an integer of minor units and every split adds up exactly ([`split`]): the
//! month's gross is the platform's part plus the creators'. A close is one transaction that
//! writes the whole month or nothing, and a month closes once: closing it again answers what
//! was written. What arrives after the close (a late beacon, a late invoice) counts nowhere,
//! which is why the job waits `earnings.close_after_secs` past the month's end.

pub mod split;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use sqlx::{AnyConnection, AnyPool};

use crate::clock::now;
use crate::db::begin_write;
use crate::jobs::{self, Finished, Job, Lane, NewJob, OnConflict, Policy};
use crate::settings::EarningsSettings;

/// A calendar month, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    year: i32,
    month: u32,
}

impl Month {
    /// `YYYY-MM`, from 2000-01 to 9999-12.
    pub fn parse(s: &str) -> Option<Self> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 || !(y.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let (year, month) = (y.parse().ok()?, m.parse().ok()?);
        ((2000..=9999).contains(&year) && (1..=12).contains(&month)).then_some(Self { year, month })
    }

    /// The month `t` (Unix seconds) is in.
    pub fn of(t: u64) -> Self {
        let d = chrono::DateTime::from_timestamp(t as i64, 0).expect("a time in range");
        Self {
            year: d.year(),
            month: d.month(),
        }
    }

    /// The month before.
    pub fn previous(self) -> Self {
        match self.month {
            1 => Self {
                year: self.year - 1,
                month: 12,
            },
            m => Self {
                year: self.year,
                month: m - 1,
            },
        }
    }

    /// `YYYYMM`, as ClickHouse names a month's partition.
    pub fn parse_compact(s: &str) -> Option<Self> {
        let (y, m) = (s.get(..4)?, s.get(4..)?);
        Self::parse(&format!("{y}-{m}"))
    }

    /// `YYYYMM` as a number.
    pub fn compact(self) -> u32 {
        self.year as u32 * 100 + self.month
    }

    /// The month after.
    pub fn next(self) -> Self {
        match self.month {
            12 => Self {
                year: self.year + 1,
                month: 1,
            },
            m => Self {
                year: self.year,
                month: m + 1,
            },
        }
    }

    /// Its first second, Unix time.
    pub fn start(self) -> u64 {
        let d = NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("a valid month");
        d.and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
            .timestamp() as u64
    }

    /// The first second after it.
    pub fn end(self) -> u64 {
        self.next().start()
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// A closed month's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct MonthFigures {
    pub month: String,
    pub currency: String,
    pub share_bps: i64,
    pub membership_gross: i64,
    pub membership_platform: i64,
    pub membership_pool: i64,
    pub membership_undistributed: i64,
    pub members_watch_ms: i64,
    pub ad_impressions: i64,
    pub ad_gross_milli: i64,
    pub ad_gross: i64,
    pub ad_platform: i64,
    pub ad_creators: i64,
    pub closed_at: i64,
}

/// One creator's statement for a month.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Statement {
    pub members_watch_ms: i64,
    pub membership: i64,
    pub ad_impressions: i64,
    pub ad_gross_milli: i64,
    pub ad_gross: i64,
    pub ad_platform: i64,
    pub ad_net: i64,
    pub total: i64,
}

/// One video's part of a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Line {
    pub video_id: String,
    pub title: Option<String>,
    pub members_watch_ms: i64,
    pub ad_impressions: i64,
    pub ad_gross_milli: i64,
}

/// Why a month cannot be closed.
#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    /// It has not ended.
    #[error("{0} has not ended")]
    NotOver(Month),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// The month's figures if it is closed.
pub async fn figures(db: &mut AnyConnection, month: Month) -> sqlx::Result<Option<MonthFigures>> {
    sqlx::query_as("SELECT * FROM earnings_months WHERE month = $1")
        .bind(month.to_string())
        .fetch_optional(db)
        .await
}

/// What one video brought in a month.
#[derive(Debug, Clone, Copy, Default)]
struct VideoInputs {
    members_watch_ms: i64,
    ad_impressions: i64,
    /// The impressions' prices per thousand, summed.
    ad_milli: i64,
}

/// Per creator, per video.
type Inputs = BTreeMap<String, BTreeMap<String, VideoInputs>>;

async fn inputs(db: &mut AnyConnection, month: Month) -> sqlx::Result<Inputs> {
    let mut out: Inputs = BTreeMap::new();
    // Views of a members-only video (as it was when they were rolled up), the owner's own
    // watching left out.
    let watched: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT v.owner_id, p.video_id, CAST(SUM(p.watched_ms) AS BIGINT)
         FROM playback_views p JOIN videos v ON v.id = p.video_id
         WHERE p.hour >= $1 AND p.hour < $2 AND p.members = 1
               AND v.owner_id IS NOT NULL AND p.viewer <> 'u:' || v.owner_id
         GROUP BY v.owner_id, p.video_id",
    )
    .bind(month.start() as i64)
    .bind(month.end() as i64)
    .fetch_all(&mut *db)
    .await?;
    for (creator, video, ms) in watched {
        out.entry(creator)
            .or_default()
            .entry(video)
            .or_default()
            .members_watch_ms += ms;
    }
    let ads: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT v.owner_id, e.video_id, COUNT(*), CAST(SUM(e.cpm_minor) AS BIGINT)
         FROM ad_events e JOIN videos v ON v.id = e.video_id
         WHERE e.event = 'impression' AND e.day >= $1 AND e.day < $2 AND v.owner_id IS NOT NULL
         GROUP BY v.owner_id, e.video_id",
    )
    .bind((month.start() / 86_400) as i64)
    .bind((month.end() / 86_400) as i64)
    .fetch_all(&mut *db)
    .await?;
    for (creator, video, n, milli) in ads {
        let line = out.entry(creator).or_default().entry(video).or_default();
        line.ad_impressions += n;
        line.ad_milli += milli;
    }
    Ok(out)
}

/// Closes `month` at `now` unless it is closed already; its figures either way.
pub async fn close(
    db: &AnyPool,
    settings: &EarningsSettings,
    month: Month,
    now: u64,
) -> Result<MonthFigures, CloseError> {
    if now < month.end() {
        return Err(CloseError::NotOver(month));
    }
    // The outbox's serial transaction: one close at a time, and on SQLite the writer from the
    // start, so the month's inputs cannot change between its reads and its writes.
    let mut tx = begin_write(db).await?;
    if let Some(done) = figures(&mut tx, month).await? {
        return Ok(done);
    }
    let m = month.to_string();
    let currency = settings.currency.to_ascii_lowercase();
    let bps = settings.platform_share_bps;
    let gross: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM billing_invoices
         WHERE paid_at >= $1 AND paid_at < $2 AND currency = $3",
    )
    .bind(month.start() as i64)
    .bind(month.end() as i64)
    .bind(&currency)
    .fetch_one(&mut *tx)
    .await?;
    let (membership_platform, pool) = split::cut(gross, bps);
    let inputs = inputs(&mut tx, month).await?;
    let creators: Vec<&String> = inputs.keys().collect();
    // Each creator's total of one input, in the creators' order.
    let per_creator = |input: fn(&VideoInputs) -> i64| -> Vec<i64> {
        inputs
            .values()
            .map(|videos| videos.values().map(input).sum())
            .collect()
    };
    let watch = per_creator(|v| v.members_watch_ms);
    let impressions = per_creator(|v| v.ad_impressions);
    let milli = per_creator(|v| v.ad_milli);
    let members_watch_ms: i64 = watch.iter().sum();
    let memberships = split::pro_rata(pool, &watch);
    let undistributed = pool - memberships.iter().sum::<i64>();
    let ad_gross_milli: i64 = milli.iter().sum();
    let ad_gross = ad_gross_milli / 1000;
    let ads = split::pro_rata(ad_gross, &milli);
    let mut ad_platform = 0;
    for (i, creator) in creators.iter().enumerate() {
        let (platform, net) = split::cut(ads[i], bps);
        ad_platform += platform;
        sqlx::query(
            "INSERT INTO earnings_statements (month, creator_id, members_watch_ms, membership,
                 ad_impressions, ad_gross_milli, ad_gross, ad_platform, ad_net, total)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&m)
        .bind(creator.as_str())
        .bind(watch[i])
        .bind(memberships[i])
        .bind(impressions[i])
        .bind(milli[i])
        .bind(ads[i])
        .bind(platform)
        .bind(net)
        .bind(memberships[i] + net)
        .execute(&mut *tx)
        .await?;
        for (video, v) in &inputs[*creator] {
            sqlx::query(
                "INSERT INTO earnings_lines (month, creator_id, video_id, members_watch_ms,
                     ad_impressions, ad_gross_milli)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&m)
            .bind(creator.as_str())
            .bind(video)
            .bind(v.members_watch_ms)
            .bind(v.ad_impressions)
            .bind(v.ad_milli)
            .execute(&mut *tx)
            .await?;
        }
    }
    let done = MonthFigures {
        month: m,
        currency,
        share_bps: i64::from(bps),
        membership_gross: gross,
        membership_platform,
        membership_pool: pool,
        membership_undistributed: undistributed,
        members_watch_ms,
        ad_impressions: impressions.iter().sum(),
        ad_gross_milli,
        ad_gross,
        ad_platform,
        ad_creators: ad_gross - ad_platform,
        closed_at: now as i64,
    };
    sqlx::query(
        "INSERT INTO earnings_months (month, currency, share_bps, membership_gross,
             membership_platform, membership_pool, membership_undistributed, members_watch_ms,
             ad_impressions, ad_gross_milli, ad_gross, ad_platform, ad_creators, closed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&done.month)
    .bind(&done.currency)
    .bind(done.share_bps)
    .bind(done.membership_gross)
    .bind(done.membership_platform)
    .bind(done.membership_pool)
    .bind(done.membership_undistributed)
    .bind(done.members_watch_ms)
    .bind(done.ad_impressions)
    .bind(done.ad_gross_milli)
    .bind(done.ad_gross)
    .bind(done.ad_platform)
    .bind(done.ad_creators)
    .bind(done.closed_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(month = %done.month, creators = creators.len(), "earnings month closed");
    Ok(done)
}

/// A creator's statement for a closed month and its lines (zero when they earned nothing).
pub async fn statement(
    db: &mut AnyConnection,
    month: Month,
    creator: &str,
) -> sqlx::Result<(Statement, Vec<Line>)> {
    let m = month.to_string();
    let s: Option<Statement> = sqlx::query_as(
        "SELECT members_watch_ms, membership, ad_impressions, ad_gross_milli, ad_gross,
                ad_platform, ad_net, total
         FROM earnings_statements WHERE month = $1 AND creator_id = $2",
    )
    .bind(&m)
    .bind(creator)
    .fetch_optional(&mut *db)
    .await?;
    let lines = sqlx::query_as(
        "SELECT l.video_id, v.title, l.members_watch_ms, l.ad_impressions, l.ad_gross_milli
         FROM earnings_lines l LEFT JOIN videos v ON v.id = l.video_id
         WHERE l.month = $1 AND l.creator_id = $2 ORDER BY l.video_id",
    )
    .bind(&m)
    .bind(creator)
    .fetch_all(&mut *db)
    .await?;
    Ok((s.unwrap_or_default(), lines))
}

/// The periodic job's kind (one job, keyed `close`).
pub const CLOSE: &str = "earnings.close";

const POLICY: Policy = Policy {
    lease_secs: 300,
    max_attempts: 1_000_000,
    backoff_base_secs: 60,
    backoff_cap_secs: 3600,
};

/// The closing job's lane: it closes each month once `close_after_secs` have passed since its
/// end, then sleeps until the next one may close.
pub async fn lane(db: &AnyPool, settings: &EarningsSettings) -> sqlx::Result<Lane> {
    let job = NewJob::new(CLOSE, "close");
    jobs::enqueue(&mut *db.acquire().await?, &job, OnConflict::Sooner, now()).await?;
    let handler = Closer {
        db: db.clone(),
        settings: settings.clone(),
    };
    Ok(Lane::new(&[CLOSE], POLICY, handler).poll(Duration::from_secs(3600)))
}

struct Closer {
    db: AnyPool,
    settings: EarningsSettings,
}

/// The first month wholly after creators' earnings began (`earnings_start`, written by the
/// migration that began keeping invoices): no month before it is closed by the job.
pub(crate) async fn first_month(db: &AnyPool) -> sqlx::Result<Month> {
    let started: i64 = sqlx::query_scalar("SELECT started_at FROM earnings_start WHERE id = 1")
        .fetch_one(db)
        .await?;
    let m = Month::of(started.max(0) as u64);
    Ok(if m.start() == started as u64 {
        m
    } else {
        m.next()
    })
}

#[async_trait::async_trait]
impl jobs::Handler for Closer {
    async fn run(&self, _job: &Job) -> anyhow::Result<Finished> {
        let now = now();
        let grace = self.settings.close_after_secs;
        // Every month due and not closed, in order: a process that was down for months catches
        // up (closing a closed month is a read).
        let mut month = first_month(&self.db).await?;
        while month.end() + grace <= now {
            close(&self.db, &self.settings, month, now).await?;
            month = month.next();
        }
        Ok(Finished::Again {
            at: month.end() + grace,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Month;

    #[test]
    fn months_parse_and_know_their_bounds() {
        let m = Month::parse("2026-02").unwrap();
        assert_eq!(m.to_string(), "2026-02");
        assert_eq!(m.start(), 1_769_904_000);
        assert_eq!(m.end(), 1_772_323_200, "28 days later");
        assert_eq!(
            Month::parse("2026-12").unwrap().end(),
            Month::parse("2027-01").unwrap().start()
        );
        assert_eq!(Month::of(1_772_323_199), m);
        assert_eq!(Month::parse_compact("202602"), Some(m));
        assert_eq!(m.compact(), 202_602);
        for bad in ["2026-02", "20262", "2026022", "20261a"] {
            assert_eq!(Month::parse_compact(bad), None, "{bad}");
        }
        assert_eq!(Month::of(1_772_323_200), Month::parse("2026-03").unwrap());
        assert_eq!(
            Month::parse("2026-01").unwrap().previous().to_string(),
            "2025-12"
        );
        for bad in [
            "2026-13",
            "2026-00",
            "26-01",
            "2026-1",
            "2026/01",
            "1999-12",
            "2026-01-01",
            "",
            "２０２６-01",
        ] {
            assert_eq!(Month::parse(bad), None, "{bad}");
        }
    }
}
