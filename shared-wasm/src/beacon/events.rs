//! What a beacon reports, and its bounds. The edge checks a batch before it forwards it; the
//! origin checks it again before it stores it (its own record of the video's duration).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::ViewClaims;

/// Longest beacon body the edge reads.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Most events in one beacon.
pub const MAX_EVENTS: usize = 32;
/// Highest sequence number: a view reporting every 10 s for 12 hours needs ~4,400.
const MAX_SEQ: u32 = 100_000;
/// Most played ranges in one event.
const MAX_RANGES: usize = 16;
/// Most playing one event may report: a heartbeat every 10 s, throttled in a background tab.
const MAX_PLAYED_MS: u64 = 300_000;
/// How far past the known duration a range may end (players round positions).
const DURATION_SLACK_MS: u64 = 2_000;
/// Where a range may end when the duration is unknown.
const MAX_POSITION_MS: u64 = 24 * 3600 * 1000;
const MAX_STARTUP_MS: u32 = 120_000;
const MAX_REBUFFER_MS: u32 = 600_000;
const MAX_HEIGHT: u32 = 4320;
const MAX_CODE_LEN: usize = 40;

/// One report. `seq` numbers a view's events from 0: an event sent twice (a retried beacon)
/// is stored once. `played` lists the stretches of the video played since the last report,
/// as `[from_ms, to_ms]` positions, in order and apart (a stretch played again goes in another
/// event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// The first frame showed, `startup_ms` after the viewer asked to play.
    Start {
        /// Sequence number.
        seq: u32,
        /// Time to first frame.
        startup_ms: u32,
    },
    /// Still playing.
    Heartbeat {
        /// Sequence number.
        seq: u32,
        /// Played since the last report.
        played: Vec<[u64; 2]>,
    },
    /// Playback stalled for `ms`.
    Rebuffer {
        /// Sequence number.
        seq: u32,
        /// How long.
        ms: u32,
    },
    /// The player switched to the rendition of this height.
    Rendition {
        /// Sequence number.
        seq: u32,
        /// Its height in pixels.
        height: u32,
    },
    /// Playback failed for good.
    Error {
        /// Sequence number.
        seq: u32,
        /// The player's error code (`[a-z0-9_]`).
        code: String,
    },
    /// The viewer left or the video ended.
    End {
        /// Sequence number.
        seq: u32,
        /// Played since the last report.
        played: Vec<[u64; 2]>,
    },
}

impl Event {
    /// The event's sequence number.
    pub fn seq(&self) -> u32 {
        match self {
            Self::Start { seq, .. }
            | Self::Heartbeat { seq, .. }
            | Self::Rebuffer { seq, .. }
            | Self::Rendition { seq, .. }
            | Self::Error { seq, .. }
            | Self::End { seq, .. } => *seq,
        }
    }

    /// The event's type as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Start { .. } => "start",
            Self::Heartbeat { .. } => "heartbeat",
            Self::Rebuffer { .. } => "rebuffer",
            Self::Rendition { .. } => "rendition",
            Self::Error { .. } => "error",
            Self::End { .. } => "end",
        }
    }

    /// The ranges played that it reports (none for most types).
    pub fn played(&self) -> &[[u64; 2]] {
        match self {
            Self::Heartbeat { played, .. } | Self::End { played, .. } => played,
            _ => &[],
        }
    }

    fn check(&self, duration_ms: Option<u64>) -> Result<(), String> {
        let seq = self.seq();
        if seq >= MAX_SEQ {
            return Err(format!("seq must be below {MAX_SEQ}"));
        }
        let end = duration_ms.map_or(MAX_POSITION_MS, |d| d + DURATION_SLACK_MS);
        let played = self.played();
        if played.len() > MAX_RANGES {
            return Err(format!("event {seq}: at most {MAX_RANGES} played ranges"));
        }
        if played.iter().any(|&[from, to]| from >= to || to > end) {
            return Err(format!(
                "event {seq}: a played range must be [from_ms, to_ms] with from < to <= {end}"
            ));
        }
        // In order and apart: the same stretch played again goes in another event.
        if played.windows(2).any(|w| w[1][0] < w[0][1]) {
            return Err(format!(
                "event {seq}: played ranges must be in order and must not overlap"
            ));
        }
        if played.iter().map(|[from, to]| to - from).sum::<u64>() > MAX_PLAYED_MS {
            return Err(format!(
                "event {seq}: at most {MAX_PLAYED_MS} ms played per event"
            ));
        }
        match self {
            Self::Start { startup_ms, .. } if *startup_ms > MAX_STARTUP_MS => {
                Err(format!("event {seq}: startup_ms at most {MAX_STARTUP_MS}"))
            }
            Self::Rebuffer { ms, .. } if *ms > MAX_REBUFFER_MS => {
                Err(format!("event {seq}: ms at most {MAX_REBUFFER_MS}"))
            }
            Self::Rendition { height, .. } if *height == 0 || *height > MAX_HEIGHT => {
                Err(format!("event {seq}: height from 1 to {MAX_HEIGHT}"))
            }
            Self::Error { code, .. }
                if code.is_empty()
                    || code.len() > MAX_CODE_LEN
                    || !code
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
            {
                Err(format!(
                    "event {seq}: code must be 1 to {MAX_CODE_LEN} of [a-z0-9_]"
                ))
            }
            _ => Ok(()),
        }
    }
}

/// What a player sends to `POST /v1/beacons`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// The view token from the playback answer.
    pub token: String,
    /// The events, in any order.
    pub events: Vec<Event>,
}

/// What the edge forwards to the origin's ingest: the verified claims and the checked events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ingest {
    /// The view token's claims.
    pub view: ViewClaims,
    /// When the edge received the beacon.
    pub received_at: u64,
    /// The events.
    pub events: Vec<Event>,
}

/// Most beacons one request to the ingest carries.
pub const MAX_GATHERED: usize = 64;

/// What an edge sends the origin's ingest (`POST /internal/beacons/batch`): the beacons it took
/// in a moment, from any viewers, each as checked alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gathered {
    /// 1 to [`MAX_GATHERED`].
    pub beacons: Vec<Ingest>,
}

/// Checks a batch's events: 1 to [`MAX_EVENTS`], distinct sequence numbers, every field in
/// bounds, played ranges inside the video (`duration_ms` when known). The message says what
/// was wrong.
pub fn check_events(events: &[Event], duration_ms: Option<u64>) -> Result<(), String> {
    if events.is_empty() || events.len() > MAX_EVENTS {
        return Err(format!("a beacon carries 1 to {MAX_EVENTS} events"));
    }
    let mut seen = BTreeSet::new();
    for e in events {
        e.check(duration_ms)?;
        if !seen.insert(e.seq()) {
            return Err(format!("seq {} appears twice", e.seq()));
        }
    }
    Ok(())
}
