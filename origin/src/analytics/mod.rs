//! Playback analytics: the players' beacons, stored as they came and rolled up into views and
//! hourly statistics.
//!
//! - **Ingest** ([`ingest`], `POST /internal/beacons`, the edge only): the edge has checked the
//!   view token and the events' bounds; this checks the events again against the video's
//!   duration as the origin knows it and appends them to `playback_events`, one row per view
//!   and sequence number, so a retried beacon adds nothing.
//! - **Rollup** ([`rollup`], the periodic job `analytics.rollup`): takes pending events in id
//!   order, keeps each view's totals (`playback_views`), decides when a view counts, and adds
//!   what changed to `video_stats_hourly`; the events' `pending` mark is cleared in the same
//!   transaction, so a crash redoes a batch whole or not at all. One rollup at a time (a lock
//!   on PostgreSQL; SQLite has one writer).
//! - **Statistics** ([`stats`]): `GET /v1/creator/stats` reads the hourly rows and the views.
//!
//! What counts:
//! - A **play** is a view that played anything; watch time is what the plays played, capped per
//!   view at twice the wall-clock time since the playback was allowed plus a minute (a player at
//!   double speed) and at four times the video; stalls, switches and errors are capped per view
//!   too ([`rollup`]), so one view token cannot swamp a video's figures.
//! - A **view** counts once per viewer and video per 30 minutes, once it has played
//!   [`VIEW_MS`] (or the whole of a shorter video, [`END_SLACK_MS`] aside).
//! - **Retention**: the share of plays that played each point at k × 5 % of the duration.
//! - **Startup**: plays per bucket of [`STARTUP_BUCKETS_MS`]; percentiles answer a bucket's
//!   upper bound.

pub mod events;
pub mod ingest;
pub mod retention;
pub mod rollup;
pub mod seqs;
pub mod stats;

use shared_wasm::beacon::Event;

/// Played time after which a view counts.
pub const VIEW_MS: u64 = 30_000;
/// How close to the whole of a shorter video a view must come to count.
pub const END_SLACK_MS: u64 = 500;
/// A viewer's views of one video count once per this long.
pub const VIEW_WINDOW_SECS: u64 = 30 * 60;
/// Points of the retention curve: 0 %, 5 % … 95 %.
pub const RETENTION_POINTS: usize = 20;
/// Upper bounds of the startup-time buckets; the last is the most a beacon may report.
pub const STARTUP_BUCKETS_MS: [u32; 10] = [
    250, 500, 1000, 1500, 2000, 3000, 5000, 10_000, 30_000, 120_000,
];

/// Whether a view that played `watched_ms` of a video of `duration_ms` counts.
pub fn counts(watched_ms: u64, duration_ms: Option<u64>) -> bool {
    let whole = duration_ms.map_or(VIEW_MS, |d| d.saturating_sub(END_SLACK_MS));
    watched_ms >= VIEW_MS.min(whole)
}

/// The retention points the ranges played: bit k for the point at k × 5 % of `duration_ms`.
pub fn retention_mask(played: &[[u64; 2]], duration_ms: u64) -> u32 {
    (0..RETENTION_POINTS).fold(0, |mask, k| {
        let point = duration_ms * k as u64 / RETENTION_POINTS as u64;
        if played.iter().any(|&[from, to]| from <= point && point < to) {
            mask | 1 << k
        } else {
            mask
        }
    })
}

/// The bucket of a startup time.
pub fn startup_bucket(ms: u32) -> usize {
    STARTUP_BUCKETS_MS
        .iter()
        .position(|&bound| ms <= bound)
        .unwrap_or(STARTUP_BUCKETS_MS.len() - 1)
}

/// The upper bound of the bucket holding quantile `q` of `counts`; none when empty.
pub fn percentile(counts: &[i64], q: f64) -> Option<u32> {
    let total: i64 = counts.iter().sum();
    if total <= 0 {
        return None;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as i64;
    let mut seen = 0;
    for (i, &c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return Some(STARTUP_BUCKETS_MS[i]);
        }
    }
    None
}

/// The video's duration as stored (`None` inside when unknown); `None` without such a video.
pub async fn duration(
    conn: &mut sqlx::AnyConnection,
    video: &str,
) -> sqlx::Result<Option<Option<u64>>> {
    let d: Option<Option<i64>> = sqlx::query_scalar("SELECT duration_ms FROM videos WHERE id = $1")
        .bind(video)
        .fetch_optional(conn)
        .await?;
    Ok(d.map(|d| d.map(|d| d.max(0) as u64)))
}

/// Total played milliseconds an event reports.
pub fn played_ms(event: &Event) -> u64 {
    event.played().iter().map(|[from, to]| to - from).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_counts_after_30_seconds_or_the_whole_of_a_shorter_video() {
        assert!(!counts(29_999, None));
        assert!(counts(30_000, None));
        assert!(counts(30_000, Some(600_000)));
        assert!(!counts(19_000, Some(20_000)));
        assert!(counts(19_500, Some(20_000)));
    }

    #[test]
    fn retention_marks_the_points_a_range_covers() {
        // 100 s: points every 5 s.
        assert_eq!(retention_mask(&[[0, 5_000]], 100_000), 0b1);
        assert_eq!(retention_mask(&[[0, 5_001]], 100_000), 0b11);
        assert_eq!(retention_mask(&[[50_000, 60_000]], 100_000), 0b11 << 10);
        assert_eq!(retention_mask(&[[0, 100_000]], 100_000), (1 << 20) - 1);
        assert_eq!(retention_mask(&[[96_000, 100_000]], 100_000), 0);
    }

    #[test]
    fn startup_percentiles_are_bucket_bounds() {
        let mut counts = [0i64; 10];
        for ms in [100, 300, 300, 800, 40_000] {
            counts[startup_bucket(ms)] += 1;
        }
        assert_eq!(percentile(&counts, 0.5), Some(500));
        assert_eq!(percentile(&counts, 0.95), Some(120_000));
        assert_eq!(percentile(&[0; 10], 0.5), None);
    }
}
