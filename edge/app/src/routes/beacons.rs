//! `POST /v1/beacons`: a player's reports on a view, checked and forwarded to the origin's
//! ingest.
//!
//! Trust: the body is anyone's. What it may claim is only what it played; who watched, which
//! video, from where and on what come from the view token the edge signed when it allowed the
//! playback (`shared_wasm::beacon`). Bounded before parsing (size, then the quota per address),
//! checked against the video's duration, and forwarded as the edge's own signed request.

use serde_json::json;
use shared_wasm::beacon::{self, check_events, Batch, Ingest};

use crate::config::EdgeConfig;
use crate::error::EdgeError;
use crate::limits;
use crate::origin::{self, Target};
use crate::platform::{Platform, Request, Response};
use crate::routes::playback::load_record;

fn invalid(code: &'static str, message: String) -> EdgeError {
    EdgeError::BadRequest { code, message }
}

/// Handles one beacon: 202 with how many events were taken.
pub async fn handle<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
) -> Result<Response, EdgeError> {
    if req.body.len() > beacon::MAX_BODY_BYTES {
        return Err(EdgeError::PayloadTooLarge);
    }
    let allowed = limits::enforce(p, &cfg.rate_limits.beacons, req, None).await?;
    let accepted = |n: usize| {
        let body = json!({ "accepted": n }).to_string().into_bytes();
        allowed.annotate(
            Response::new(202, "application/json", body).with_header("cache-control", "no-store"),
        )
    };
    // A program's reports are taken and dropped: it has no need to learn that it was noticed.
    if beacon::is_bot(req.header("user-agent").unwrap_or("")) {
        return Ok(accepted(0));
    }
    let batch: Batch = serde_json::from_slice(&req.body)
        .map_err(|e| invalid("invalid_beacon", format!("beacon body: {e}")))?;
    let view = beacon::verify(&cfg.playback_keys, &batch.token, p.now())
        .map_err(|e| invalid("invalid_view_token", e.to_string()))?;
    let record = load_record(p, cfg, req, &view.video)
        .await?
        .ok_or(EdgeError::NotFound("video"))?;
    check_events(&batch.events, record.duration_ms).map_err(|m| invalid("invalid_beacon", m))?;
    let n = batch.events.len();
    let ingest = Ingest {
        view,
        received_at: p.now().0,
        events: batch.events,
    };
    let body = serde_json::to_vec(&ingest).expect("an ingest serializes");
    let resp = origin::post_json(p, cfg, Target::Nearest(req), "/internal/beacons", body).await?;
    match resp.status {
        200..=299 => Ok(accepted(n)),
        404 => Err(EdgeError::NotFound("video")),
        // The origin's record of the video may differ from this edge's copy (a new duration).
        400 => Err(invalid(
            "invalid_beacon",
            "the events do not fit the video as its origin knows it".into(),
        )),
        s => Err(EdgeError::Upstream(format!(
            "origin answered {s} to a beacon"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use serde_json::Value;
    use shared_wasm::beacon::{self, Device, Ingest, ViewClaims};
    use shared_wasm::record::VideoRecord;
    use shared_wasm::VideoId;

    use crate::platform::{Request, Response};
    use crate::testing::{block_on, config, video_record, MemPlatform};

    const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36";

    /// A platform holding video `v1` (60 s) whose origin takes every ingest and keeps it.
    fn platform() -> (MemPlatform, Rc<RefCell<Vec<Ingest>>>) {
        let got = Rc::new(RefCell::new(Vec::new()));
        let kept = got.clone();
        let p = MemPlatform::new(move |_, req| {
            assert_eq!(
                (req.method.as_str(), req.path()),
                ("POST", "/internal/beacons")
            );
            kept.borrow_mut()
                .push(serde_json::from_slice(&req.body).unwrap());
            Response::new(204, "application/json", Vec::new())
        });
        let rec = VideoRecord {
            duration_ms: Some(60_000),
            ..video_record("v1")
        };
        p.kv.borrow_mut()
            .insert(VideoRecord::key(&rec.id), rec.to_cbor());
        (p, got)
    }

    fn claims() -> ViewClaims {
        ViewClaims {
            view: beacon::view_id([1; 16]),
            video: VideoId::parse("v1").unwrap(),
            viewer: "u:alice".into(),
            country: None,
            device: Device::Desktop,
            issued: 0,
            expires: u64::MAX / 2,
        }
    }

    fn post(p: &MemPlatform, ua: &str, body: String) -> (u16, Value) {
        let req = Request {
            method: "POST".into(),
            url: "https://edge.example/v1/beacons".into(),
            headers: vec![("user-agent".into(), ua.into())],
            body: body.into_bytes(),
            ..Request::default()
        };
        let resp = block_on(crate::handle(p, Ok(&config()), req));
        let json = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        (resp.status, json)
    }

    fn batch(token: &str, events: &str) -> String {
        format!(r#"{{"token":"{token}","events":{events}}}"#)
    }

    const EVENTS: &str = r#"[{"type":"start","seq":0,"startup_ms":500},
        {"type":"heartbeat","seq":1,"played":[[0,10000]]}]"#;

    #[test]
    fn a_beacon_reaches_the_ingest_with_the_tokens_claims() {
        let (p, got) = platform();
        let token = beacon::sign(&config().playback_keys, &claims());
        let (status, body) = post(&p, BROWSER, batch(&token, EVENTS));
        assert_eq!((status, &body["accepted"]), (202, &Value::from(2)));
        let got = got.borrow();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].view, claims());
        assert_eq!(got[0].events.len(), 2);
        assert_eq!(got[0].events[1].played(), &[[0, 10_000]]);
    }

    #[test]
    fn forged_tokens_bad_events_and_big_bodies_are_refused_before_the_origin() {
        let (p, got) = platform();
        let token = beacon::sign(&config().playback_keys, &claims());
        let mut forged = claims();
        forged.viewer = "u:mallory".into();
        let other_keys = {
            let mut c = config();
            c.playback_keys = shared_wasm::playback::PlaybackKeys::new(
                shared_wasm::Kid::parse("k1").unwrap(),
                [(shared_wasm::Kid::parse("k1").unwrap(), vec![7u8; 32])].into(),
            )
            .unwrap();
            c.playback_keys
        };
        let forged = beacon::sign(&other_keys, &forged);
        let (status, body) = post(&p, BROWSER, batch(&forged, EVENTS));
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_view_token"))
        );
        let past_the_end = r#"[{"type":"heartbeat","seq":0,"played":[[0,70000]]}]"#;
        let (status, body) = post(&p, BROWSER, batch(&token, past_the_end));
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_beacon"))
        );
        assert!(
            body["message"].as_str().unwrap().contains("62000"),
            "{body}"
        );
        let (status, _) = post(&p, BROWSER, "{".into());
        assert_eq!(status, 400);
        let big = batch(&token, &format!("[{}]", " ".repeat(16 * 1024)));
        assert_eq!(post(&p, BROWSER, big).0, 413);
        assert!(got.borrow().is_empty());
    }

    #[test]
    fn a_bots_beacon_is_taken_and_dropped() {
        let (p, got) = platform();
        let token = beacon::sign(&config().playback_keys, &claims());
        let (status, body) = post(&p, "Googlebot/2.1", batch(&token, EVENTS));
        assert_eq!((status, &body["accepted"]), (202, &Value::from(0)));
        assert!(got.borrow().is_empty());
    }
}
