//! How long playback data is kept (the daily job `analytics.retention`, where the rollup runs):
//!
//! - **raw events**, once rolled up, for `analytics.events_days` (90): what they said is in the
//!   views and hourly rows; they are kept a while to look into, or to roll up again after a fix.
//!   On ClickHouse, whole months (its partitions) go once they have ended that long ago and the
//!   rollup has read past them.
//! - **views** for `analytics.views_days` (400): unique viewers over a span, the 30-minute rule
//!   and creators' earnings read them, so a month's views stay until that month's earnings are
//!   closed, whatever the setting.
//! - **hourly rows** are kept: they are what the statistics add up, and few.

use std::time::Duration;

use sqlx::AnyPool;

use super::events::Events;
use crate::clock::now;
use crate::jobs::{self, Finished, Job, Lane, NewJob, OnConflict, Policy};
use crate::settings::AnalyticsSettings;

/// The periodic job's kind (one job, keyed `retention`).
pub const RETENTION: &str = "analytics.retention";
/// Rows deleted per statement: short writes, the others' turn between them.
pub const CHUNK: usize = 5000;
const DAY: u64 = 86_400;

const POLICY: Policy = Policy {
    lease_secs: 600,
    max_attempts: 1_000_000,
    backoff_base_secs: 60,
    backoff_cap_secs: 3600,
};

/// The retention job's lane, its job due now (then daily).
pub async fn lane(
    db: &AnyPool,
    events: &Events,
    settings: &AnalyticsSettings,
) -> sqlx::Result<Lane> {
    let job = NewJob::new(RETENTION, "retention");
    jobs::enqueue(&mut *db.acquire().await?, &job, OnConflict::Sooner, now()).await?;
    let handler = Sweeper {
        db: db.clone(),
        events: events.clone(),
        settings: settings.clone(),
    };
    Ok(Lane::new(&[RETENTION], POLICY, handler).poll(Duration::from_secs(3600)))
}

struct Sweeper {
    db: AnyPool,
    events: Events,
    settings: AnalyticsSettings,
}

#[async_trait::async_trait]
impl jobs::Handler for Sweeper {
    async fn run(&self, _job: &Job) -> anyhow::Result<Finished> {
        let swept = sweep(&self.db, &self.events, &self.settings, now()).await?;
        if swept.events + swept.views > 0 {
            tracing::info!(
                events = swept.events,
                views = swept.views,
                "old playback data removed"
            );
        }
        Ok(Finished::Again { at: now() + DAY })
    }
}

/// What one sweep removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Raw events (ClickHouse: rows of the months dropped).
    pub events: u64,
    pub views: u64,
}

/// Removes what is older than the settings keep, as of `now`.
pub async fn sweep(
    db: &AnyPool,
    events: &Events,
    settings: &AnalyticsSettings,
    now: u64,
) -> anyhow::Result<Swept> {
    let events_before = now.saturating_sub(settings.events_days * DAY);
    let views_before = now
        .saturating_sub(settings.views_days * DAY)
        .min(first_open_month(db).await?);
    Ok(Swept {
        events: events.forget_before(db, events_before).await?,
        views: forget_views_before(db, views_before).await?,
    })
}

/// The start of the first month whose earnings are not closed: its views, and any later, are
/// kept. Months before earnings began need none.
async fn first_open_month(db: &AnyPool) -> sqlx::Result<u64> {
    let mut month = crate::earnings::first_month(db).await?;
    let closed: Vec<String> = sqlx::query_scalar("SELECT month FROM earnings_months")
        .fetch_all(db)
        .await?;
    while closed.contains(&month.to_string()) {
        month = month.next();
    }
    Ok(month.start())
}

/// Deletes the views whose first hour is before `before`, a chunk per statement; how many.
async fn forget_views_before(db: &AnyPool, before: u64) -> sqlx::Result<u64> {
    let mut deleted = 0;
    loop {
        let n = sqlx::query(
            "DELETE FROM playback_views WHERE view_id IN
               (SELECT view_id FROM playback_views WHERE hour < $1 LIMIT $2)",
        )
        .bind(before as i64)
        .bind(CHUNK as i64)
        .execute(db)
        .await?
        .rows_affected();
        deleted += n;
        if n < CHUNK as u64 {
            return Ok(deleted);
        }
    }
}
