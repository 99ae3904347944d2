//! Pre-roll ads: `GET /v1/ads/vast?video=ID` answers a VAST 4.1 document for the viewer of a
//! public video who is not a member (an empty one otherwise), and `GET /v1/ads/track?e=&t=`
//! takes one of its tracking events for the origin.
//!
//! Trust: the campaigns come from the origin (the synced catalog); the viewer, country and video
//! from the request as for playback. A tracking request is anyone's: it may only name an event
//! from the list, and the ad token the edge signed when it served the ad says which campaign,
//! video and viewer it is about. The origin counts each event once per ad view.

use shared_wasm::ads::{self, AdClaims, AdEvent, AdIngest, Tracking};
use shared_wasm::beacon::{self, TokenError};
use shared_wasm::playback::{network_for, IpBinding};
use shared_wasm::ratelimit::Quota;
use shared_wasm::record::{AdCatalog, VideoRecord, VideoState, Visibility};
use shared_wasm::VideoId;

use crate::auth;
use crate::config::EdgeConfig;
use crate::error::EdgeError;
use crate::limits;
use crate::origin::{self, Target};
use crate::platform::{Platform, Request, Response};
use crate::routes::playback::{
    load_entitlement, load_record, manifest_url, playable, read_through,
};

/// Campaigns tried for one request (each try may cost a frequency-cap check).
const MAX_TRIES: usize = 3;
/// The frequency cap's window.
const DAY_SECS: u32 = 86_400;

fn bad_query(message: &str) -> EdgeError {
    EdgeError::BadRequest {
        code: "invalid_query",
        message: message.into(),
    }
}

/// The query's parameters, each of `names` exactly once and nothing else.
fn params<const N: usize>(
    req: &Request,
    names: [&str; N],
    message: &str,
) -> Result<[String; N], EdgeError> {
    let query = req.url.split_once('?').map_or("", |(_, q)| q);
    let mut found: [Option<String>; N] = std::array::from_fn(|_| None);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let i = names
            .iter()
            .position(|n| *n == k)
            .ok_or_else(|| bad_query(message))?;
        if found[i].replace(v.into_owned()).is_some() {
            return Err(bad_query(message));
        }
    }
    let mut out: [String; N] = std::array::from_fn(|_| String::new());
    for (slot, value) in out.iter_mut().zip(found) {
        *slot = value.ok_or_else(|| bad_query(message))?;
    }
    Ok(out)
}

fn vast_response(body: String) -> Response {
    Response::new(200, ads::VAST_CONTENT_TYPE, body.into_bytes())
        .with_header("cache-control", "private, no-store")
}

/// The catalog: synced, else read through from the origin and kept a while.
async fn load_catalog<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
) -> Result<AdCatalog, EdgeError> {
    let decode = |b: &[u8]| AdCatalog::from_cbor(b).ok();
    let path = "/internal/ads/catalog";
    read_through(p, cfg, req, AdCatalog::KEY, path, "ad catalog", decode)
        .await?
        .ok_or_else(|| EdgeError::Upstream("origin has no ad catalog".into()))
}

/// `GET /v1/ads/vast?video=ID`.
pub async fn vast<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
) -> Result<Response, EdgeError> {
    let [video] = params(req, ["video"], "the ad request takes video=ID, once")?;
    let video = VideoId::parse(&video).map_err(|e| EdgeError::BadRequest {
        code: "invalid_video_id",
        message: format!("video id {e}"),
    })?;
    // Every setting this route needs, before it does any work.
    let (tokens, quota) = (cfg.playback()?, &cfg.rate_limits()?.playback);
    let viewer = auth::bearer(p, cfg, req).await?;
    let user = viewer.as_ref().map(|c| c.sub.as_str());
    let allowed = limits::enforce(p, quota, req, user).await?;
    let none = || Ok(allowed.annotate(vast_response(ads::empty())));
    // What the viewer may not play gets the playback route's answer; what they may, an ad or none.
    let record = playable(load_record(p, cfg, req, &video).await?, req)?;
    if record.visibility != Visibility::Public || record.state != VideoState::Ready {
        return none();
    }
    let now = p.now();
    if let Some(user) = user {
        // Members never see ads.
        if load_entitlement(p, cfg, req, user).await?.active_at(now) {
            return none();
        }
    }
    let catalog = load_catalog(p, cfg, req).await?;
    let mut random = [0u8; 16];
    p.random_bytes(&mut random)?;
    let seed = u64::from_le_bytes(random[..8].try_into().expect("8 bytes"));
    let viewer_key = beacon::viewer_key(
        &tokens.keys,
        user,
        network_for(req.client_ip.as_deref(), IpBinding::Subnet).as_deref(),
        req.header("user-agent").unwrap_or(""),
    );
    let category = record.category.as_deref();
    let candidates = ads::candidates(
        &catalog.campaigns,
        now.0,
        req.country,
        &video,
        category,
        seed,
    );
    for campaign in candidates.into_iter().take(MAX_TRIES) {
        // A creative that cannot play here now (or whose record cannot be had) skips its
        // campaign, not the request: the next one may do.
        let (creative, duration_ms) = match creative(p, cfg, req, &campaign.creative).await {
            Ok(Some(found)) => found,
            Ok(None) => continue,
            Err(e) => {
                p.log_error(&format!("ad creative {}: {e}", campaign.creative));
                continue;
            }
        };
        let end = now.plus(tokens.ttl_secs);
        let Ok(media) = manifest_url(cfg, req, &creative, now, end) else {
            continue;
        };
        if !under_frequency_cap(p, &campaign.id, campaign.frequency_cap, &viewer_key).await {
            continue;
        }
        let claims = AdClaims {
            ad_view: beacon::view_id(random),
            campaign: campaign.id.clone(),
            video: video.clone(),
            viewer: viewer_key,
            country: req.country,
            issued: now.0,
            expires: now.plus(ads::TOKEN_TTL_SECS).0,
        };
        let token = ads::sign(&tokens.keys, &claims);
        let track = format!("{}/v1/ads/track", req.origin());
        let tracking = Tracking {
            url: &track,
            token: &token,
        };
        let doc = ads::document(campaign, &claims.ad_view, duration_ms, &media, &tracking);
        return Ok(allowed.annotate(vast_response(doc)));
    }
    none()
}

/// The creative's record and duration if it plays for this viewer now (a creative taken down,
/// made private or not shown in the viewer's country since the catalog was built is skipped).
async fn creative<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    id: &VideoId,
) -> Result<Option<(VideoRecord, u64)>, EdgeError> {
    let Ok(record) = playable(load_record(p, cfg, req, id).await?, req) else {
        return Ok(None);
    };
    let playable_now = record.visibility == Visibility::Public && record.state == VideoState::Ready;
    Ok(match record.duration_ms {
        Some(d) if playable_now => Some((record, d)),
        _ => None,
    })
}

/// Counts one ad of `campaign` for `viewer` against its cap per rolling day; whether it is
/// within. A limiter that cannot be reached lets the ad through (and logs), as for quotas.
async fn under_frequency_cap<P: Platform>(p: &P, campaign: &str, cap: u32, viewer: &str) -> bool {
    let Ok(quota) = Quota::new("adcap", cap.max(1), DAY_SECS) else {
        return false;
    };
    match p
        .rate_limit(&format!("adcap:{campaign}:{viewer}"), &quota)
        .await
    {
        Ok(d) => d.allowed,
        Err(e) => {
            p.log_error(&format!("frequency cap unavailable, allowing: {e}"));
            true
        }
    }
}

/// `GET /v1/ads/track?e=EVENT&t=TOKEN`: 204 once taken (a repeat is taken and counts nothing).
pub async fn track<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
) -> Result<Response, EdgeError> {
    let message = "a tracking request takes e=EVENT and t=TOKEN, once each";
    let [event, token] = params(req, ["e", "t"], message)?;
    let (keys, quota) = (&cfg.playback()?.keys, &cfg.rate_limits()?.beacons);
    let allowed = limits::enforce(p, quota, req, None).await?;
    let done = || {
        let empty = Response {
            status: 204,
            headers: vec![("cache-control".into(), "no-store".into())],
            ..Response::default()
        };
        Ok(allowed.annotate(empty))
    };
    // A program's tracking is taken and dropped, as for beacons.
    if beacon::is_bot(req.header("user-agent").unwrap_or("")) {
        return done();
    }
    let event = AdEvent::parse(&event).ok_or_else(|| EdgeError::BadRequest {
        code: "invalid_ad_event",
        message: "e is one of impression, first_quartile, midpoint, third_quartile, complete, skip, click".into(),
    })?;
    let ad = ads::verify(keys, &token, p.now()).map_err(|e| EdgeError::BadRequest {
        code: "invalid_ad_token",
        message: match e {
            TokenError::Expired => "the ad token has expired",
            _ => "the ad token is invalid",
        }
        .into(),
    })?;
    let ingest = AdIngest {
        ad,
        event,
        received_at: p.now().0,
    };
    let body = serde_json::to_vec(&ingest).expect("an ad event serializes");
    let resp =
        origin::post_json(p, cfg, Target::Nearest(req), "/internal/ads/events", body).await?;
    match resp.status {
        200..=299 => done(),
        404 => Err(EdgeError::NotFound("campaign")),
        s => Err(EdgeError::Upstream(format!(
            "origin answered {s} to an ad event"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use shared_wasm::ads::{self, AdClaims, AdEvent, AdIngest};
    use shared_wasm::record::{AdCampaign, AdCatalog, VideoRecord, Visibility};
    use shared_wasm::VideoId;

    use crate::platform::{Request, Response};
    use crate::testing::{block_on, config, video_record, MemPlatform};

    const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36";

    fn campaign(id: &str, cpm: u64, cap: u32) -> AdCampaign {
        AdCampaign {
            id: id.into(),
            name: format!("Campaign {id}"),
            creative: VideoId::parse("ad1").unwrap(),
            click_url: "https://advertiser.example/".into(),
            countries: vec![],
            categories: vec![],
            starts_at: 0,
            ends_at: u64::MAX / 2,
            paused_until: 0,
            frequency_cap: cap,
            cpm_minor: cpm,
        }
    }

    /// Videos `v1` (public), `m1` (members) and the creative `ad1` (8 s); `campaigns` synced;
    /// the origin keeps every request it gets.
    fn platform(campaigns: Vec<AdCampaign>) -> (MemPlatform, Rc<RefCell<Vec<Request>>>) {
        let got = Rc::new(RefCell::new(Vec::new()));
        let kept = got.clone();
        let p = MemPlatform::new(move |_, req| {
            if req.method == "GET" {
                return Response::new(404, "application/json", b"{}".to_vec());
            }
            kept.borrow_mut().push(req.clone());
            Response::new(204, "application/json", Vec::new())
        })
        .with_limiter();
        let members = VideoRecord {
            visibility: Visibility::Members,
            ..video_record("m1")
        };
        let creative = VideoRecord {
            duration_ms: Some(8_000),
            ..video_record("ad1")
        };
        for rec in [video_record("v1"), members, creative] {
            p.kv.borrow_mut()
                .insert(VideoRecord::key(&rec.id), rec.to_cbor());
        }
        let catalog = AdCatalog {
            v: 1,
            campaigns,
            version: 1,
        };
        p.kv.borrow_mut()
            .insert(AdCatalog::KEY.into(), catalog.to_cbor());
        (p, got)
    }

    fn get(p: &MemPlatform, path_and_query: &str, ua: &str) -> Response {
        let req = Request {
            method: "GET".into(),
            url: format!("https://edge.example{path_and_query}"),
            headers: vec![("user-agent".into(), ua.into())],
            client_ip: Some("192.0.2.7".into()),
            ..Request::default()
        };
        block_on(crate::handle(p, &config(), req))
    }

    fn doc(resp: &Response) -> String {
        assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
        assert_eq!(resp.header("content-type"), Some(ads::VAST_CONTENT_TYPE));
        String::from_utf8(resp.body.clone()).unwrap()
    }

    /// The text of the first `<tag>` in `xml`, entities undone.
    fn text_of(xml: &str, tag: &str) -> Option<String> {
        let start = [format!("<{tag}>"), format!("<{tag} ")]
            .iter()
            .filter_map(|t| xml.find(t.as_str()))
            .min()?;
        let open_end = start + xml[start..].find('>')? + 1;
        let close = open_end + xml[open_end..].find(&format!("</{tag}>"))?;
        Some(xml[open_end..close].replace("&amp;", "&"))
    }

    #[test]
    fn a_viewer_of_a_public_video_gets_the_best_bid_as_vast_with_signed_tracking() {
        let (p, _) = platform(vec![campaign("cheap", 100, 3), campaign("best", 900, 3)]);
        let xml = doc(&get(&p, "/v1/ads/vast?video=v1", BROWSER));
        assert!(xml.contains(r#"<Ad id="best">"#), "{xml}");
        let media = text_of(&xml, "MediaFile").unwrap();
        assert!(
            media.starts_with("https://edge.example/hls/ad1/"),
            "{media}"
        );
        assert!(media.ends_with("/master.m3u8"), "{media}");
        assert_eq!(text_of(&xml, "Duration").as_deref(), Some("00:00:08.000"));
        let impression = text_of(&xml, "Impression").unwrap();
        let token = impression
            .strip_prefix("https://edge.example/v1/ads/track?e=impression&t=")
            .unwrap();
        let claims = ads::verify(&crate::testing::playback_keys(), token, p_now(&p)).unwrap();
        assert_eq!(
            (claims.campaign.as_str(), claims.video.as_str()),
            ("best", "v1")
        );
        assert!(claims.viewer.starts_with("a:"), "{}", claims.viewer);
    }

    fn p_now(p: &MemPlatform) -> shared_wasm::UnixTime {
        use crate::platform::Platform;
        p.now()
    }

    #[test]
    fn members_videos_and_capped_viewers_get_no_ad() {
        let (p, _) = platform(vec![campaign("only", 500, 2)]);
        let empty = ads::empty();
        assert_eq!(doc(&get(&p, "/v1/ads/vast?video=m1", BROWSER)), empty);
        // The creative itself never runs before itself.
        assert_eq!(doc(&get(&p, "/v1/ads/vast?video=ad1", BROWSER)), empty);
        // Two ads a day for this viewer, then none.
        for _ in 0..2 {
            assert!(doc(&get(&p, "/v1/ads/vast?video=v1", BROWSER)).contains("<Ad "));
        }
        assert_eq!(doc(&get(&p, "/v1/ads/vast?video=v1", BROWSER)), empty);
        // Another browser is another viewer.
        let other = get(
            &p,
            "/v1/ads/vast?video=v1",
            "Mozilla/5.0 (Macintosh) Safari/605",
        );
        assert!(doc(&other).contains("<Ad "));
        // Bad requests say what was wrong.
        for bad in [
            "/v1/ads/vast",
            "/v1/ads/vast?video=v1&video=v1",
            "/v1/ads/vast?v=v1",
        ] {
            assert_eq!(get(&p, bad, BROWSER).status, 400, "{bad}");
        }
        assert_eq!(get(&p, "/v1/ads/vast?video=nope", BROWSER).status, 404);
    }

    #[test]
    fn a_signed_in_member_gets_no_ad_and_a_signed_in_non_member_does() {
        use shared_wasm::record::{Entitlement, EntitlementStatus};
        let (p, _) = platform(vec![campaign("only", 500, 3)]);
        let member = Entitlement {
            v: 1,
            user: "u_member".into(),
            tier: "member".into(),
            status: EntitlementStatus::Active,
            period_end: 1_900_000_000,
            version: 1,
        };
        let ended = Entitlement {
            user: "u_lapsed".into(),
            period_end: 1_700_000_000,
            ..member.clone()
        };
        for e in [&member, &ended] {
            p.kv.borrow_mut()
                .insert(Entitlement::key(&e.user), e.to_cbor());
        }
        p.kv.borrow_mut().insert(
            "jwks".into(),
            shared_wasm::record::JwksRecord::new(
                shared_wasm::UnixTime(1_800_000_000),
                String::from_utf8(crate::testing::jwks_response().body).unwrap(),
            )
            .to_cbor(),
        );
        let as_user = |sub: &str| {
            let token = crate::testing::access_token(r#"{"alg":"EdDSA","kid":"ed-1"}"#, sub);
            let req = Request {
                method: "GET".into(),
                url: "https://edge.example/v1/ads/vast?video=v1".into(),
                headers: vec![
                    ("user-agent".into(), BROWSER.into()),
                    ("authorization".into(), format!("Bearer {token}")),
                ],
                ..Request::default()
            };
            doc(&block_on(crate::handle(&p, &config(), req)))
        };
        assert_eq!(as_user("u_member"), ads::empty());
        assert!(as_user("u_lapsed").contains(r#"<Ad id="only">"#));
    }

    #[test]
    fn the_catalog_is_read_through_when_kv_has_none() {
        let catalog = AdCatalog {
            v: 1,
            campaigns: vec![campaign("rt", 1, 3)],
            version: 4,
        };
        let bytes = catalog.to_cbor();
        let p = MemPlatform::new(move |_, req| {
            assert_eq!(req.path(), "/internal/ads/catalog");
            Response::new(200, "application/cbor", bytes.clone())
        })
        .with_limiter();
        let creative = VideoRecord {
            duration_ms: Some(5_000),
            ..video_record("ad1")
        };
        for rec in [video_record("v1"), creative] {
            p.kv.borrow_mut()
                .insert(VideoRecord::key(&rec.id), rec.to_cbor());
        }
        assert!(doc(&get(&p, "/v1/ads/vast?video=v1", BROWSER)).contains(r#"<Ad id="rt">"#));
        assert!(p.kv.borrow().contains_key("rt:ads:catalog"));
    }

    fn claims() -> AdClaims {
        AdClaims {
            ad_view: shared_wasm::beacon::view_id([3; 16]),
            campaign: "c1".into(),
            video: VideoId::parse("v1").unwrap(),
            viewer: "a:someone".into(),
            country: None,
            issued: 0,
            expires: u64::MAX / 2,
        }
    }

    #[test]
    fn tracking_reaches_the_origin_with_the_tokens_claims_and_nothing_else() {
        let (p, got) = platform(vec![]);
        let token = ads::sign(&crate::testing::playback_keys(), &claims());
        let resp = get(&p, &format!("/v1/ads/track?e=midpoint&t={token}"), BROWSER);
        assert_eq!(resp.status, 204);
        {
            let got = got.borrow();
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].path(), "/internal/ads/events");
            let ingest: AdIngest = serde_json::from_slice(&got[0].body).unwrap();
            assert_eq!((ingest.ad, ingest.event), (claims(), AdEvent::Midpoint));
        }
        let mut forged = claims();
        forged.campaign = "c2".into();
        let kid = shared_wasm::Kid::parse("k1").unwrap();
        let other_keys =
            shared_wasm::playback::PlaybackKeys::new(kid.clone(), [(kid, vec![7u8; 32])].into())
                .unwrap();
        let forged = ads::sign(&other_keys, &forged);
        let refused = [
            (
                format!("/v1/ads/track?e=midpoint&t={forged}"),
                "invalid_ad_token",
            ),
            (
                format!("/v1/ads/track?e=Midpoint&t={token}"),
                "invalid_ad_event",
            ),
            (
                format!("/v1/ads/track?e=midpoint&t={token}&x=1"),
                "invalid_query",
            ),
            ("/v1/ads/track?e=midpoint".to_owned(), "invalid_query"),
        ];
        for (path, code) in refused {
            let resp = get(&p, &path, BROWSER);
            let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
            assert_eq!(
                (resp.status, body["error"].as_str()),
                (400, Some(code)),
                "{path}"
            );
        }
        // A crawler's tracking is taken and dropped.
        let bot = get(
            &p,
            &format!("/v1/ads/track?e=click&t={token}"),
            "Googlebot/2.1",
        );
        assert_eq!(bot.status, 204);
        assert_eq!(got.borrow().len(), 1);
    }
}
