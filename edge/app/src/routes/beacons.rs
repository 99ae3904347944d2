//! `POST /v1/beacons`: a player's reports on a view, checked and forwarded to the origin's
//! ingest.
//!
//! Trust: the body is anyone's. What it may claim is only what it played; who watched, which
//! video, from where and on what come from the view token the edge signed when it allowed the
//! playback (`shared_wasm::beacon`). Bounded before parsing (size, then the quota per address),
//! checked against the video's duration, and forwarded as the edge's own signed request.
//!
//! Forwarded in batches where the runtime keeps an instance for many requests (Workers): the
//! beacons that arrive within [`GATHER_MS`] of the first go to the origin together
//! (`POST /internal/beacons/batch`, at most [`MAX_GATHERED`]), sent after the first one's
//! response (`Platform::defer`). The player is answered 202 once its beacon is checked and
//! gathered; the origin's verdict on it (a video it no longer has, a duration that changed) is
//! logged, as a count. Gathered beacons live in the instance's memory: if it is evicted before
//! they are sent, they are lost, as an unsent `sendBeacon` would be; if the request whose
//! deferred work was to send them ends first, the next beacon after [`STALE_SECS`] sends them.
//! Where each request has an instance of its own (Spin), each beacon is sent at once, alone,
//! and the player hears the origin's verdict.

use std::cell::RefCell;

use serde_json::{json, Value};
use shared_wasm::beacon::{self, check_events, Batch, Gathered, Ingest, MAX_GATHERED};

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
pub async fn handle<P: Platform + Clone + 'static>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
) -> Result<Response, EdgeError> {
    if req.body.len() > beacon::MAX_BODY_BYTES {
        return Err(EdgeError::PayloadTooLarge);
    }
    let (keys, quota) = (&cfg.playback()?.keys, &cfg.rate_limits()?.beacons);
    let allowed = limits::enforce(p, quota, req, None).await?;
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
    let view = beacon::verify(keys, &batch.token, p.now())
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
    if p.serves_many() {
        gather(p, cfg, req, ingest);
        return Ok(accepted(n));
    }
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

/// How long the first of a batch waits for others (where the instance serves many requests).
pub const GATHER_MS: u32 = 1000;
/// Beacons waiting longer than this (whole seconds: 2 to 3) were left by a send that never ran
/// (its request ended early): the next beacon sends them.
const STALE_SECS: u64 = 2;

/// The beacons this instance has gathered and not yet sent.
#[derive(Default)]
struct Gathering {
    beacons: Vec<Ingest>,
    /// When the first of them came.
    since: u64,
}

thread_local! {
    static GATHERED: RefCell<Gathering> = RefCell::default();
}

/// Adds `ingest` to this instance's batch and sees that the batch is sent: after
/// [`GATHER_MS`] when it is the first, at once when the batch is full or stale.
fn gather<P: Platform + Clone + 'static>(p: &P, cfg: &EdgeConfig, req: &Request, ingest: Ingest) {
    let now = p.now().0;
    let (now_send, first) = GATHERED.with_borrow_mut(|g| {
        let first = g.beacons.is_empty();
        if first {
            g.since = now;
        }
        g.beacons.push(ingest);
        let due = g.beacons.len() >= MAX_GATHERED || now.saturating_sub(g.since) > STALE_SECS;
        (due.then(|| std::mem::take(&mut g.beacons)), first)
    });
    if now_send.is_none() && !first {
        return;
    }
    let (p2, cfg2) = (p.clone(), cfg.clone());
    // Where to send: the region nearest to this request (all of a batch came to this place);
    // only what routing reads is kept.
    let route = Request {
        country: req.country,
        continent: req.continent,
        ..Request::default()
    };
    p.defer(Box::pin(async move {
        let beacons = match now_send {
            Some(b) => b,
            None => {
                p2.sleep(GATHER_MS).await;
                GATHERED.with_borrow_mut(|g| std::mem::take(&mut g.beacons))
            }
        };
        if !beacons.is_empty() {
            send(&p2, &cfg2, &route, beacons).await;
        }
    }));
}

/// Sends a batch to the ingest; what goes wrong is logged (counts only: no token, no viewer).
async fn send<P: Platform>(p: &P, cfg: &EdgeConfig, route: &Request, beacons: Vec<Ingest>) {
    let n = beacons.len();
    let body = serde_json::to_vec(&Gathered { beacons }).expect("beacons serialize");
    match origin::post_json(
        p,
        cfg,
        Target::Nearest(route),
        "/internal/beacons/batch",
        body,
    )
    .await
    {
        Ok(resp) if resp.status == 200 => {
            let refused = serde_json::from_slice::<Value>(&resp.body)
                .ok()
                .and_then(|v| v["refused"].as_array().map(Vec::len))
                .unwrap_or(0);
            if refused > 0 {
                p.log_error(&format!(
                    "the ingest refused {refused} of {n} gathered beacons"
                ));
            }
        }
        Ok(resp) => p.log_error(&format!(
            "the ingest answered {} to {n} gathered beacons",
            resp.status
        )),
        Err(e) => p.log_error(&format!("{n} gathered beacons not sent: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use serde_json::Value;
    use shared_wasm::beacon::{self, Device, Gathered, Ingest, ViewClaims, MAX_GATHERED};
    use shared_wasm::record::VideoRecord;
    use shared_wasm::VideoId;

    use crate::platform::{Request, Response};
    use crate::testing::{block_on, config, video_record, MemPlatform};

    const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36";

    /// A platform holding video `v1` (60 s) whose origin keeps every beacon (as sent: alone,
    /// or a batch), refusing a batch's beacons of viewer `u:gone` as if their video had gone.
    fn platform() -> (MemPlatform, Rc<RefCell<Vec<Vec<Ingest>>>>) {
        let got = Rc::new(RefCell::new(Vec::new()));
        let kept = got.clone();
        let p = MemPlatform::new(move |_, req| {
            assert_eq!(req.method, "POST");
            if req.path() == "/internal/beacons" {
                kept.borrow_mut()
                    .push(vec![serde_json::from_slice(&req.body).unwrap()]);
                return Response::new(204, "application/json", Vec::new());
            }
            assert_eq!(req.path(), "/internal/beacons/batch");
            let batch: Gathered = serde_json::from_slice(&req.body).unwrap();
            let refused: Vec<Value> = (0..batch.beacons.len())
                .filter(|&i| batch.beacons[i].view.viewer == "u:gone")
                .map(|i| serde_json::json!({"beacon": i, "error": "not_found"}))
                .collect();
            kept.borrow_mut().push(batch.beacons);
            let body = serde_json::json!({"events": 0, "refused": refused});
            Response::new(200, "application/json", body.to_string().into_bytes())
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
        let resp = block_on(crate::handle(p, &config(), req));
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
        let token = beacon::sign(&crate::testing::playback_keys(), &claims());
        let (status, body) = post(&p, BROWSER, batch(&token, EVENTS));
        assert_eq!((status, &body["accepted"]), (202, &Value::from(2)));
        // An instance per request (as on Spin): sent at once, alone, before the answer.
        let got = got.borrow();
        assert_eq!(got.len(), 1);
        let [sent] = &got[0][..] else {
            panic!("one beacon in the batch")
        };
        assert_eq!(sent.view, claims());
        assert_eq!(sent.events.len(), 2);
        assert_eq!(sent.events[1].played(), &[[0, 10_000]]);
    }

    /// A beacon of viewer `viewer`'s view `n`.
    fn beacon_of(viewer: &str, n: u8) -> String {
        let mut c = claims();
        c.view = beacon::view_id([n; 16]);
        c.viewer = viewer.into();
        batch(&beacon::sign(&crate::testing::playback_keys(), &c), EVENTS)
    }

    #[test]
    fn where_an_instance_serves_many_requests_beacons_go_together_each_once() {
        let (p, got) = platform();
        p.serves_many.set(true);
        // Three viewers: the first schedules the send, the others join it.
        for (n, viewer) in [(1, "u:alice"), (2, "u:gone"), (3, "a:pseudonym")] {
            assert_eq!(post(&p, BROWSER, beacon_of(viewer, n)).0, 202);
        }
        assert_eq!(p.deferred.borrow().len(), 1, "one send scheduled");
        p.run_deferred();
        let views: Vec<Vec<String>> = got
            .borrow()
            .iter()
            .map(|b| b.iter().map(|i| i.view.viewer.clone()).collect())
            .collect();
        assert_eq!(views, [["u:alice", "u:gone", "a:pseudonym"]]);
        // The origin's refusal of one is logged as a count, nothing of the viewer.
        let logs = p.logs.borrow().join("\n");
        assert!(logs.contains("refused 1 of 3 gathered beacons"), "{logs}");
        assert!(!logs.contains("gone"), "{logs}");

        // A full batch goes at once; the one after it starts the next.
        got.borrow_mut().clear();
        for n in 0..=MAX_GATHERED {
            assert_eq!(post(&p, BROWSER, beacon_of("u:bob", n as u8)).0, 202);
        }
        p.run_deferred();
        let mut sizes: Vec<usize> = got.borrow().iter().map(Vec::len).collect();
        sizes.sort();
        assert_eq!(sizes, [1, MAX_GATHERED]);
        let mut seen: Vec<String> = got
            .borrow()
            .iter()
            .flatten()
            .map(|i| i.view.view.clone())
            .collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), MAX_GATHERED + 1, "every beacon once");
    }

    #[test]
    fn forged_tokens_bad_events_and_big_bodies_are_refused_before_the_origin() {
        let (p, got) = platform();
        let token = beacon::sign(&crate::testing::playback_keys(), &claims());
        let mut forged = claims();
        forged.viewer = "u:mallory".into();
        let other_keys = shared_wasm::playback::PlaybackKeys::new(
            shared_wasm::Kid::parse("k1").unwrap(),
            [(shared_wasm::Kid::parse("k1").unwrap(), vec![7u8; 32])].into(),
        )
        .unwrap();
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
        let token = beacon::sign(&crate::testing::playback_keys(), &claims());
        let (status, body) = post(&p, "Googlebot/2.1", batch(&token, EVENTS));
        assert_eq!((status, &body["accepted"]), (202, &Value::from(0)));
        assert!(got.borrow().is_empty());
    }
}
