//! `GET /v1/videos/{id}/playback`: decide whether the viewer may play, and mint a playback URL.

use serde_json::json;
use shared_wasm::media::token_prefix;
use shared_wasm::playback::{self, network_for, Binding, BindingPolicy, Claims};
use shared_wasm::record::{Entitlement, EntitlementStatus, VideoRecord, VideoState, Visibility};
use shared_wasm::VideoId;

use crate::auth;
use crate::config::EdgeConfig;
use crate::error::EdgeError;
use crate::limits;
use crate::origin;
use crate::platform::{Platform, Request, Response};
use crate::routes::api::id_segment;

/// How long a read-through video record is kept in KV. Until the origin pushes changes to the
/// edge, this bounds how long a change in visibility can take to be seen.
pub const RECORD_TTL_SECS: u64 = 300;

/// The video's record: from KV, else read through from the origin and stored.
pub async fn load_record<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    id: &VideoId,
) -> Result<Option<VideoRecord>, EdgeError> {
    let key = VideoRecord::key(id);
    if let Some(bytes) = p.kv_get(&key).await? {
        match VideoRecord::from_cbor(&bytes) {
            Ok(rec) if rec.id == *id => return Ok(Some(rec)),
            // A record we cannot read is treated as a miss and replaced from the origin.
            _ => p.log_error(&format!("unreadable KV record {key}; refetching")),
        }
    }
    let resp = origin::get(p, cfg, req, &format!("/internal/videos/{id}")).await?;
    match resp.status {
        200 => {
            let rec = VideoRecord::from_cbor(&resp.body)
                .map_err(|e| EdgeError::Upstream(format!("origin record for {id}: {e}")))?;
            if rec.id != *id {
                return Err(EdgeError::Upstream(format!(
                    "origin sent record {} for {id}",
                    rec.id
                )));
            }
            p.kv_put(&key, &resp.body, Some(RECORD_TTL_SECS)).await?;
            Ok(Some(rec))
        }
        404 => Ok(None),
        s => Err(EdgeError::Upstream(format!(
            "origin answered {s} for record {id}"
        ))),
    }
}

/// How long "no entitlement" learned from the origin is remembered. A purchase reaches the edge
/// through the sync at once (its version beats this placeholder's 0), so this only bounds how
/// often a non-member's requests reach the origin.
const NO_ENTITLEMENT_TTL_SECS: u64 = 60;

/// The user's entitlement: from KV (pushed by the origin), else read through once and kept.
pub async fn load_entitlement<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    user: &str,
) -> Result<Entitlement, EdgeError> {
    let key = Entitlement::key(user);
    if let Some(bytes) = p.kv_get(&key).await? {
        match Entitlement::from_cbor(&bytes) {
            Ok(e) if e.user == user => return Ok(e),
            _ => p.log_error(&format!("unreadable KV record {key}; refetching")),
        }
    }
    let path = format!("/internal/entitlements/{}", id_segment(user)?);
    let resp = origin::get(p, cfg, req, &path).await?;
    let (ent, ttl) = match resp.status {
        200 => {
            let e = Entitlement::from_cbor(&resp.body)
                .ok()
                .filter(|e| e.user == user)
                .ok_or_else(|| EdgeError::Upstream(format!("origin entitlement for {user}")))?;
            (e, None)
        }
        404 => {
            let none = Entitlement {
                v: 1,
                user: user.to_owned(),
                tier: String::new(),
                status: EntitlementStatus::Inactive,
                period_end: 0,
                version: 0,
            };
            (none, Some(NO_ENTITLEMENT_TTL_SECS))
        }
        s => {
            return Err(EdgeError::Upstream(format!(
                "origin answered {s} for an entitlement"
            )))
        }
    };
    p.kv_put(&key, &ent.to_cbor(), ttl).await?;
    Ok(ent)
}

/// Refuses a taken-down video, or one whose country rule excludes the viewer. Checked when a
/// token is issued and again on every media request, so a takedown or a new rule applies to
/// tokens already out as soon as the edge has the new record.
pub fn check_rules(record: &VideoRecord, req: &Request) -> Result<(), EdgeError> {
    if record.taken_down {
        return Err(EdgeError::Unavailable {
            reason: "taken_down",
        });
    }
    if let Some(rule) = &record.countries {
        if !rule.admits(req.country) {
            return Err(EdgeError::Unavailable {
                reason: "country_blocked",
            });
        }
    }
    Ok(())
}

/// Handles the playback request for video `id`.
pub async fn handle<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    id: &str,
) -> Result<Response, EdgeError> {
    let id = VideoId::parse(id).map_err(|e| EdgeError::BadRequest {
        code: "invalid_video_id",
        message: format!("video id {e}"),
    })?;
    // A presented token is always checked, so a broken client hears about it even on a public
    // video rather than silently playing as anonymous.
    let viewer = auth::bearer(p, cfg, req).await?;
    let allowed = limits::enforce(
        p,
        &cfg.rate_limits.playback,
        req,
        viewer.as_ref().map(|c| c.sub.as_str()),
    )
    .await?;
    let record = load_record(p, cfg, req, &id)
        .await?
        .filter(|r| r.visibility != Visibility::Private)
        .ok_or(EdgeError::NotFound("video"))?;
    check_rules(&record, req)?;
    let now = p.now();
    let mut expires = now.plus(cfg.playback_ttl_secs);
    if record.visibility == Visibility::Members {
        let user = viewer
            .as_ref()
            .ok_or(EdgeError::Unauthorized { reason: None })?;
        let ent = load_entitlement(p, cfg, req, &user.sub).await?;
        if !ent.active_at(now) {
            return Err(EdgeError::EntitlementRequired);
        }
        // A members token never outlives the period the edge knows to be paid for.
        expires = expires.min(shared_wasm::UnixTime(ent.period_end));
    }
    if record.state != VideoState::Ready {
        return Err(EdgeError::NotReady);
    }

    // The video's own binding wins over the deployment's (an embeddable trailer may want none,
    // a premiere the strictest).
    let policy = record.binding.unwrap_or(BindingPolicy {
        ip: cfg.bind_ip,
        country: cfg.bind_country,
    });
    let claims = Claims {
        prefix: token_prefix(&id),
        not_before: now,
        expires,
        // Only what the runtime knows can be bound: a viewer whose country or address the
        // runtime does not report gets a token unbound on that axis.
        binding: Binding {
            network: network_for(req.client_ip.as_deref(), policy.ip),
            country: req.country.filter(|_| policy.country),
        },
    };
    let token = playback::sign(&cfg.playback_keys, &claims);
    let body = json!({
        "video_id": id,
        "title": record.title,
        "manifest_url": format!("{}/hls/{id}/{token}/master.m3u8", req.origin()),
        "expires_at": claims.expires.0,
    });
    Ok(allowed.annotate(
        Response::new(200, "application/json", body.to_string().into_bytes())
            .with_header("cache-control", "no-store"),
    ))
}
