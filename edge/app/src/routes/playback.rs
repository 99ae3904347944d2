//! `GET /v1/videos/{id}/playback`: decide whether the viewer may play, and mint a playback URL.

use std::cell::RefCell;

use futures_util::future::{join, OptionFuture};
use serde::Serialize;
use shared_wasm::beacon::{self, Device, ViewClaims};
use shared_wasm::media::token_prefix;
use shared_wasm::playback::{self, network_for, Binding, BindingPolicy, Claims, IpBinding};
use shared_wasm::record::{Entitlement, EntitlementStatus, VideoRecord, VideoState, Visibility};
use shared_wasm::{UnixTime, VideoId};

use crate::auth;
use crate::config::EdgeConfig;
use crate::error::{AccessRefusal, EdgeError, LegalReason, PlaybackRefusal};
use crate::limits;
use crate::memo::{self, Memo};
use crate::origin;
use crate::platform::{Platform, Request, Response};
use crate::routes::api::id_segment;

/// How long a read-through video record is kept in KV. Until the origin pushes changes to the
/// edge, this bounds how long a change in visibility can take to be seen.
pub const RECORD_TTL_SECS: u64 = 300;

/// Where a record read through from the origin is kept: beside the record's own key, which only
/// the sync writes. KV has no compare-and-set, so a read-through write under the record's own
/// key could land after a newer synced version (a takedown, an ended membership) and undo it.
/// Reads prefer the synced key, so a read-through copy only serves until the sync has written
/// the record, and for at most its TTL.
pub(crate) fn read_through_key(key: &str) -> String {
    format!("rt:{key}")
}

/// The first readable value of `key`, then of its read-through copy. An unreadable one is
/// logged and skipped (it can only come from a broken write; the origin's copy replaces it).
pub(crate) async fn kv_record<P: Platform, T>(
    p: &P,
    key: &str,
    decode: impl Fn(&[u8]) -> Option<T>,
) -> Result<Option<T>, EdgeError> {
    if let Some(found) = kv_decoded(p, key, &decode).await? {
        return Ok(Some(found));
    }
    kv_decoded(p, &read_through_key(key), &decode).await
}

/// What `decode` makes of KV's value under `key`; an unreadable value is logged and is none.
async fn kv_decoded<P: Platform, T>(
    p: &P,
    key: &str,
    decode: impl Fn(&[u8]) -> Option<T>,
) -> Result<Option<T>, EdgeError> {
    let Some(bytes) = p.kv_get(key).await? else {
        return Ok(None);
    };
    let found = decode(&bytes);
    if found.is_none() {
        p.log_error(&format!("unreadable KV record {key}; refetching"));
    }
    Ok(found)
}

/// The video's record if KV has it (synced, or a read-through copy); never asks the origin.
pub async fn cached_record<P: Platform>(
    p: &P,
    id: &VideoId,
) -> Result<Option<VideoRecord>, EdgeError> {
    let many = p.serves_many();
    let decode = |b: &[u8]| {
        memo::decoded(&RECORDS, many, b, |b| VideoRecord::from_cbor(b).ok()).filter(|r| r.id == *id)
    };
    kv_record(p, &VideoRecord::key(id), decode).await
}

thread_local! {
    /// Records and entitlements decoded from KV, by their bytes (`memo`).
    static RECORDS: RefCell<Memo<VideoRecord>> = RefCell::default();
    static ENTITLEMENTS: RefCell<Memo<Entitlement>> = RefCell::default();
}

/// `key`'s record: from KV (synced, else a read-through copy), else `GET path` from the origin:
/// an answer `decode` takes is kept under the read-through key for [`RECORD_TTL_SECS`]; a 404
/// is `None`. `what` names the record in errors.
pub(crate) async fn read_through<P: Platform, T>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    key: &str,
    path: &str,
    what: &str,
    decode: impl Fn(&[u8]) -> Option<T>,
) -> Result<Option<T>, EdgeError> {
    if let Some(found) = kv_record(p, key, &decode).await? {
        return Ok(Some(found));
    }
    from_origin(p, cfg, req, key, path, what, decode).await
}

/// [`read_through`]'s second half, for a caller that has already read KV: `GET path` from the
/// origin, kept under the read-through key when `decode` takes it.
async fn from_origin<P: Platform, T>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    key: &str,
    path: &str,
    what: &str,
    decode: impl Fn(&[u8]) -> Option<T>,
) -> Result<Option<T>, EdgeError> {
    let resp = origin::get(p, cfg, req, path).await?;
    match resp.status {
        200 => {
            let found = decode(&resp.body)
                .ok_or_else(|| EdgeError::Upstream(format!("origin sent an unreadable {what}")))?;
            p.kv_put(&read_through_key(key), &resp.body, Some(RECORD_TTL_SECS))
                .await?;
            Ok(Some(found))
        }
        404 => Ok(None),
        s => Err(EdgeError::Upstream(format!(
            "origin answered {s} for {what}"
        ))),
    }
}

/// The video's record: from KV, else read through from the origin and kept.
pub async fn load_record<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    id: &VideoId,
) -> Result<Option<VideoRecord>, EdgeError> {
    match cached_record(p, id).await? {
        Some(record) => Ok(Some(record)),
        None => record_from_origin(p, cfg, req, id).await,
    }
}

/// The video's record from the origin, for a caller that found none in KV ([`cached_record`]).
async fn record_from_origin<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    id: &VideoId,
) -> Result<Option<VideoRecord>, EdgeError> {
    let decode = |b: &[u8]| VideoRecord::from_cbor(b).ok().filter(|r| r.id == *id);
    let (key, path) = (VideoRecord::key(id), format!("/internal/videos/{id}"));
    from_origin(p, cfg, req, &key, &path, &format!("record {id}"), decode).await
}

/// How long "no entitlement" learned from the origin is remembered: it bounds how often a
/// non-member's requests reach the origin (a purchase reaches the edge through the sync at
/// once, and the synced record is read first).
const NO_ENTITLEMENT_TTL_SECS: u64 = 60;

/// The user's entitlement if KV has it (synced, or a read-through copy); never asks the origin.
async fn cached_entitlement<P: Platform>(
    p: &P,
    user: &str,
) -> Result<Option<Entitlement>, EdgeError> {
    let many = p.serves_many();
    let decode = |b: &[u8]| {
        memo::decoded(&ENTITLEMENTS, many, b, |b| Entitlement::from_cbor(b).ok())
            .filter(|e| e.user == user)
    };
    kv_record(p, &Entitlement::key(user), decode).await
}

/// The user's entitlement: from KV (pushed by the origin), else read through and kept a while.
pub async fn load_entitlement<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    user: &str,
) -> Result<Entitlement, EdgeError> {
    if let Some(ent) = cached_entitlement(p, user).await? {
        return Ok(ent);
    }
    entitlement_from_origin(p, cfg, req, user).await
}

/// The user's entitlement from the origin, for a caller that found none in KV, kept a while
/// (a "none" for [`NO_ENTITLEMENT_TTL_SECS`]).
async fn entitlement_from_origin<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    user: &str,
) -> Result<Entitlement, EdgeError> {
    let key = Entitlement::key(user);
    let path = format!("/internal/entitlements/{}", id_segment(user)?);
    let resp = origin::get(p, cfg, req, &path).await?;
    let (ent, ttl) = match resp.status {
        200 => {
            let e = Entitlement::from_cbor(&resp.body)
                .ok()
                .filter(|e| e.user == user)
                .ok_or_else(|| EdgeError::Upstream(format!("origin entitlement for {user}")))?;
            (e, RECORD_TTL_SECS)
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
            (none, NO_ENTITLEMENT_TTL_SECS)
        }
        s => {
            return Err(EdgeError::Upstream(format!(
                "origin answered {s} for an entitlement"
            )))
        }
    };
    p.kv_put(&read_through_key(&key), &ent.to_cbor(), Some(ttl))
        .await?;
    Ok(ent)
}

/// The video's record if the viewer may play it: a missing or private video is not found, a
/// taken-down one or one whose country rule excludes the viewer is unavailable. Checked when a
/// token is issued and again on every media request, so a takedown, a new rule or a switch to
/// private applies to tokens already out as soon as the edge has the new record.
pub fn playable(record: Option<VideoRecord>, req: &Request) -> Result<VideoRecord, EdgeError> {
    let record = record
        .filter(|r| r.visibility != Visibility::Private)
        .ok_or(EdgeError::NotFound("video"))?;
    if record.taken_down {
        return Err(EdgeError::Unavailable(LegalReason::TakenDown));
    }
    if let Some(rule) = &record.countries {
        if !rule.admits(req.country) {
            return Err(EdgeError::Unavailable(LegalReason::CountryBlocked));
        }
    }
    Ok(record)
}

/// A signed manifest URL for `record` from `now` until `expires`, bound as the video's policy
/// (or the deployment's) says.
pub fn manifest_url(
    cfg: &EdgeConfig,
    req: &Request,
    record: &VideoRecord,
    now: UnixTime,
    expires: UnixTime,
) -> Result<String, EdgeError> {
    // The video's own binding wins over the deployment's (an embeddable trailer may want none,
    // a premiere the strictest).
    let tokens = cfg.playback()?;
    let policy = record.binding.unwrap_or(BindingPolicy {
        ip: tokens.bind_ip,
        country: tokens.bind_country,
    });
    // A country binding fails closed: a token the policy wants bound to a country that the
    // runtime did not report would play anywhere. (The address binding stays best-effort: a
    // runtime that reports no address is a deployment choice, not a viewer's.)
    let country = match (policy.country, req.country) {
        (false, _) => None,
        (true, Some(c)) => Some(c),
        (true, None) => return Err(EdgeError::Forbidden(PlaybackRefusal::CountryUnknown)),
    };
    let claims = Claims {
        prefix: token_prefix(&record.id),
        not_before: now,
        expires,
        binding: Binding {
            network: network_for(req.client_ip.as_deref(), policy.ip),
            country,
        },
    };
    let token = playback::sign(&tokens.keys, &claims);
    Ok(format!(
        "{}/hls/{}/{token}/master.m3u8",
        req.origin(),
        record.id
    ))
}

/// The playback answer (typed: written straight out, no JSON value built first).
#[derive(Serialize)]
struct PlaybackAnswer<'a> {
    video_id: &'a VideoId,
    title: &'a str,
    manifest_url: &'a str,
    expires_at: u64,
    /// What the player reports its playback with (`routes::beacons`).
    view_token: &'a str,
    beacon_url: &'a str,
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
    // Every setting this route needs, before it does any work.
    let (tokens, quota) = (cfg.playback()?, &cfg.rate_limits()?.playback);
    // A presented token is always checked, so a broken client hears about it even on a public
    // video rather than silently playing as anonymous. KV reads go together with the steps
    // before them, so the viewer waits for fewer rounds: the record's with the token's checks,
    // a member's entitlement with the rate limiter. Only KV is read early, and not at all for
    // a header refused unread; asking the origin (a record or entitlement KV does not have)
    // still waits for the limiter's answer.
    let token = auth::presented(cfg, req)?;
    let (viewer, kept) = join(auth::verified(p, cfg, req, token), cached_record(p, &id)).await;
    let viewer = viewer?;
    let user = viewer.as_ref().map(|c| c.sub.as_str());
    let members = matches!(&kept, Ok(Some(r)) if r.visibility == Visibility::Members);
    let (allowed, kept_ent) = join(
        limits::enforce(p, quota, req, user),
        OptionFuture::from(user.filter(|_| members).map(|u| cached_entitlement(p, u))),
    )
    .await;
    let allowed = allowed?;
    let record = match kept? {
        Some(record) => Some(record),
        None => record_from_origin(p, cfg, req, &id).await?,
    };
    let record = playable(record, req)?;
    let now = p.now();
    let mut expires = now.plus(tokens.ttl_secs);
    if record.visibility == Visibility::Members {
        let user = viewer
            .as_ref()
            .ok_or(EdgeError::Unauthorized(AccessRefusal::Missing))?;
        let ent = match kept_ent.transpose()?.flatten() {
            Some(ent) => ent,
            None if members => entitlement_from_origin(p, cfg, req, &user.sub).await?,
            // The record came from the origin just now: KV was not read for the entitlement.
            None => load_entitlement(p, cfg, req, &user.sub).await?,
        };
        if !ent.active_at(now) {
            return Err(EdgeError::EntitlementRequired);
        }
        // A members token never outlives the period the edge knows to be paid for.
        expires = expires.min(UnixTime(ent.period_end));
    }
    if record.state != VideoState::Ready {
        return Err(EdgeError::NotReady);
    }

    let manifest_url = manifest_url(cfg, req, &record, now, expires)?;
    let user_agent = req.header("user-agent").unwrap_or("");
    let mut random = [0u8; 16];
    p.random_bytes(&mut random)?;
    let view = ViewClaims {
        view: beacon::view_id(random),
        video: id.clone(),
        viewer: beacon::viewer_key(
            &tokens.keys,
            viewer.as_ref().map(|c| c.sub.as_str()),
            network_for(req.client_ip.as_deref(), IpBinding::Subnet).as_deref(),
            user_agent,
        ),
        country: req.country,
        device: Device::of(user_agent),
        issued: now.0,
        expires: now.plus(beacon::TOKEN_TTL_SECS).0,
    };
    let body = PlaybackAnswer {
        video_id: &id,
        title: &record.title,
        manifest_url: &manifest_url,
        expires_at: expires.0,
        view_token: &beacon::sign(&tokens.keys, &view),
        beacon_url: &format!("{}/v1/beacons", req.origin()),
    };
    let body = serde_json::to_vec(&body).expect("the playback answer serializes");
    Ok(allowed.annotate(
        Response::new(200, "application/json", body).with_header("cache-control", "no-store"),
    ))
}

#[cfg(test)]
mod tests {
    use shared_wasm::record::{Entitlement, EntitlementStatus, VideoRecord};
    use shared_wasm::VideoId;

    use super::{load_entitlement, load_record};
    use crate::error::EdgeError;
    use crate::platform::{Request, Response};
    use crate::testing::{block_on, config, config_with, MemPlatform};

    fn video(version: u64, taken_down: bool) -> VideoRecord {
        VideoRecord {
            taken_down,
            version,
            ..crate::testing::video_record("v1")
        }
    }

    fn entitlement(version: u64, status: EntitlementStatus) -> Entitlement {
        Entitlement {
            v: 1,
            user: "u1".into(),
            tier: "member".into(),
            status,
            period_end: 1_900_000_000,
            version,
        }
    }

    /// The origin answers `answer`, and while its answer is on the way the sync writes
    /// `synced` under `key`: the read-through raced the sync and lost.
    fn racing(answer: Vec<u8>, key: String, synced: Vec<u8>) -> MemPlatform {
        MemPlatform::new(move |p, _req| {
            p.kv.borrow_mut().insert(key.clone(), synced.clone());
            Response::new(200, "application/cbor", answer.clone())
        })
    }

    #[test]
    fn the_origin_is_asked_for_a_record_kv_lacks_only_within_the_quota() {
        use std::cell::Cell;
        use std::rc::Rc;

        let asked = Rc::new(Cell::new(0));
        let counted = asked.clone();
        let p = MemPlatform::new(move |_, req| {
            assert!(req.url.ends_with("/internal/videos/nope"), "{}", req.url);
            counted.set(counted.get() + 1);
            Response::new(404, "application/json", b"{}".to_vec())
        })
        .with_limiter();
        let cfg = config_with(&[("RATE_LIMITS", "playback=1/60")]);
        let req = Request {
            method: "GET".into(),
            url: "http://edge.test/v1/videos/nope/playback".into(),
            client_ip: Some("192.0.2.1".into()),
            ..Request::default()
        };
        let first = block_on(super::handle(&p, &cfg, &req, "nope")).unwrap_err();
        assert!(matches!(first, EdgeError::NotFound(_)), "{first:?}");
        assert_eq!(asked.get(), 1, "one read through, after KV had none");
        let second = block_on(super::handle(&p, &cfg, &req, "nope")).unwrap_err();
        assert!(
            matches!(second, EdgeError::RateLimited { .. }),
            "{second:?}"
        );
        assert_eq!(asked.get(), 1, "a limited request never reaches the origin");
    }

    #[test]
    fn where_decoded_records_are_kept_a_change_in_kv_is_seen_by_the_next_read() {
        let id = VideoId::parse("v1").unwrap();
        let p = MemPlatform::new(|_, _| Response::new(500, "text/plain", Vec::new()));
        p.serves_many.set(true);
        let put = |r: VideoRecord| p.kv.borrow_mut().insert(VideoRecord::key(&id), r.to_cbor());
        let (cfg, req) = (config(), Request::default());
        let read = || block_on(load_record(&p, &cfg, &req, &id)).unwrap().unwrap();
        put(video(1, false));
        assert_eq!(read(), video(1, false));
        assert_eq!(read(), video(1, false), "the kept decode");
        put(video(2, true));
        assert_eq!((read().version, read().taken_down), (2, true));
        let ent = entitlement(1, EntitlementStatus::Active);
        p.kv.borrow_mut()
            .insert(Entitlement::key("u1"), ent.to_cbor());
        assert_eq!(
            block_on(load_entitlement(&p, &cfg, &req, "u1")).unwrap(),
            ent
        );
        let ended = entitlement(2, EntitlementStatus::Inactive);
        p.kv.borrow_mut()
            .insert(Entitlement::key("u1"), ended.to_cbor());
        assert_eq!(
            block_on(load_entitlement(&p, &cfg, &req, "u1")).unwrap(),
            ended
        );
    }

    #[test]
    fn a_read_through_that_raced_the_sync_never_undoes_a_takedown() {
        let id = VideoId::parse("v1").unwrap();
        let key = VideoRecord::key(&id);
        let p = racing(video(1, false).to_cbor(), key, video(2, true).to_cbor());
        let (cfg, req) = (config(), Request::default());
        let first = block_on(load_record(&p, &cfg, &req, &id)).unwrap().unwrap();
        assert!(!first.taken_down, "this request saw the origin's answer");
        let next = block_on(load_record(&p, &cfg, &req, &id)).unwrap().unwrap();
        assert_eq!((next.version, next.taken_down), (2, true));
    }

    #[test]
    fn a_read_through_that_raced_the_sync_never_undoes_an_ended_membership() {
        let key = Entitlement::key("u1");
        let active = entitlement(1, EntitlementStatus::Active).to_cbor();
        let ended = entitlement(2, EntitlementStatus::Inactive).to_cbor();
        let p = racing(active, key, ended);
        let (cfg, req) = (config(), Request::default());
        block_on(load_entitlement(&p, &cfg, &req, "u1")).unwrap();
        let next = block_on(load_entitlement(&p, &cfg, &req, "u1")).unwrap();
        assert_eq!(
            (next.version, next.status),
            (2, EntitlementStatus::Inactive)
        );
    }
}
