//! `GET /v1/feeds/subscriptions`: a viewer's feed, composed at the edge from the cached channel
//! feeds of the channels they follow.
//!
//! Why composed rather than cached per user: a channel's page is shared by all its subscribers
//! and invalidated by its feed version, so composing costs a few cache reads and is never staler
//! than the channel feeds themselves; a per-user cache would hold a copy per viewer and go stale
//! on every upload of any followed channel. The subscription list is the user's own data, read
//! from their home region on each request (so a new subscription shows at once).

use serde_json::{json, Value};
use shared_wasm::jwt::Role;

use crate::auth;
use crate::config::EdgeConfig;
use crate::error::EdgeError;
use crate::limits;
use crate::origin::{self, Target};
use crate::platform::{Platform, Request, Response};
use crate::routes::api::id_segment;
use crate::routes::feeds::{lookup, Lookup};

/// Channels composed per request; a viewer following more sees the first ones (by subscription
/// age) — bounding the work one request can cause.
pub const MAX_CHANNELS: usize = 25;
/// Items in the composed page.
pub const PAGE: usize = 20;

/// Handles the request.
pub async fn handle<P: Platform + Clone + 'static>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
) -> Result<Response, EdgeError> {
    let claims = auth::require(p, cfg, req, Role::User).await?;
    // Every section it may read, before it spends a slot of the quota.
    cfg.origin()?;
    cfg.feeds()?;
    cfg.site()?;
    let allowed = limits::enforce(p, &cfg.rate_limits()?.api, req, Some(&claims.sub)).await?;
    let subs = origin::forward_json(
        p,
        cfg,
        Target::Home(claims.region.as_deref()),
        req,
        "/v1/me/subscriptions",
        req.header("authorization"),
    )
    .await?;
    if subs.status != 200 {
        return Ok(subs);
    }
    let list: Value = serde_json::from_slice(&subs.body)
        .map_err(|e| EdgeError::Upstream(format!("subscriptions: {e}")))?;
    let channels: Vec<String> = list["channels"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();

    let query = format!("?limit={PAGE}");
    let mut items: Vec<Value> = Vec::new();
    let mut stale = false;
    for channel in channels.iter().take(MAX_CHANNELS) {
        let id = id_segment(channel)?;
        let (feed, path) = (format!("channel:{id}"), format!("/v1/feeds/channel/{id}"));
        let Lookup::Entry(mut entry, status) = lookup(p, cfg, req, &feed, &path, &query).await?
        else {
            continue; // the channel is gone: nothing to show from it
        };
        stale |= status.starts_with("STALE");
        let page: Value = serde_json::from_slice(&p.body_bytes(&mut entry).await?)
            .map_err(|e| EdgeError::Upstream(format!("channel feed {id}: {e}")))?;
        items.extend(page["items"].as_array().into_iter().flatten().cloned());
    }
    // Newest first, the same order as every feed; ties by id.
    items.sort_by(|a, b| {
        let key = |v: &Value| (v["created_at"].as_i64().unwrap_or(0), v["id"].to_string());
        key(b).cmp(&key(a))
    });
    items.truncate(PAGE);
    let body = json!({"items": items, "channels": channels.len().min(MAX_CHANNELS)});
    Ok(allowed.annotate(
        Response::new(200, "application/json", body.to_string().into_bytes())
            .with_header("cache-control", "private, no-store")
            .with_header(
                "x-edge-cache",
                if stale { "COMPOSED-STALE" } else { "COMPOSED" },
            ),
    ))
}
