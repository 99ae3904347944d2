//! `POST /internal/sync`: the origin's outbox pushes versioned records into the edge's KV.
//!
//! Only the origin holds `SYNC_SECRET`; the batch format, signature and per-record checks live
//! in `shared_wasm::sync`. Each record is written only when it is newer than what KV holds, so
//! a retried or reordered batch changes nothing. KV has no compare-and-set: two pushes racing
//! on one key could still interleave, which is why the origin pushes to one edge sequentially.

use std::collections::BTreeMap;

use serde_json::json;
use shared_wasm::sync::{self, SyncBatch, SyncError};

use crate::config::EdgeConfig;
use crate::error::EdgeError;
use crate::platform::{Platform, Request, Response};

/// Handles one batch.
pub async fn handle<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
) -> Result<Response, EdgeError> {
    if req.body.len() > sync::MAX_BATCH_BYTES {
        return Err(EdgeError::PayloadTooLarge);
    }
    let now = p.now();
    let nonce = sync::verify(
        cfg.sync_secret()?.expose(),
        req.header(sync::HEADER),
        &req.body,
        now,
    )
    .map_err(|e| {
        EdgeError::SyncRefused(match e {
            SyncError::Stale => "stale",
            SyncError::Missing => "missing",
            SyncError::BadSignature => "bad_signature",
            _ => "malformed",
        })
    })?;
    // A nonce is remembered for twice the window: a replay later than that has a stale stamp.
    let nonce_key = format!("nonce:{nonce}");
    if p.kv_get(&nonce_key).await?.is_some() {
        return Err(EdgeError::SyncRefused("replayed"));
    }
    p.kv_put(&nonce_key, b"1", Some(2 * sync::WINDOW_SECS))
        .await?;

    let batch = SyncBatch::from_cbor(&req.body).map_err(|e| EdgeError::BadRequest {
        code: "invalid_batch",
        message: e.to_string(),
    })?;
    // Only the newest version of a key in the batch is written: a burst of writes to one record
    // (`feedver:home` moves with every upload) costs one KV read and one write per batch, not
    // one per version (Workers KV takes about one write per second per key).
    let mut newest: BTreeMap<&str, u64> = BTreeMap::new();
    for item in &batch.items {
        let v = newest.entry(item.key.as_str()).or_default();
        *v = (*v).max(item.version);
    }
    let (mut applied, mut stale, mut expired, mut superseded) = (0u32, 0u32, 0u32, 0u32);
    for item in &batch.items {
        if newest[item.key.as_str()] > item.version {
            superseded += 1;
            continue;
        }
        let ttl = match item.expires_at {
            Some(t) if t <= now.0 => {
                expired += 1;
                continue;
            }
            Some(t) => Some(t - now.0),
            None => None,
        };
        let current = p.kv_get(&item.key).await?;
        if current
            .as_deref()
            .and_then(sync::stored_version)
            .is_some_and(|v| v >= item.version)
        {
            stale += 1;
            continue;
        }
        p.kv_put(&item.key, &item.value, ttl).await?;
        applied += 1;
    }
    let body = json!({
        "applied": applied,
        "stale": stale,
        "expired": expired,
        "superseded": superseded,
    });
    Ok(
        Response::new(200, "application/json", body.to_string().into_bytes())
            .with_header("cache-control", "no-store"),
    )
}
