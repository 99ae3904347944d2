//! The driver's protocol with a scripted shell: each test plays the JS side, answering the
//! commands a step hands out.

use std::cell::RefCell;

use serde_json::Value;

use super::*;

thread_local! {
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn log(message: &str) {
    LOG.with(|l| l.borrow_mut().push(message.to_owned()));
}

static SYS: Sys = Sys {
    now_ms: || 1_700_000_000_000.0,
    random: |buf| {
        buf.fill(7);
        Ok(())
    },
    log,
};

fn config() -> EdgeConfig {
    let key = "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk";
    EdgeConfig::new(move |name| {
        Some(match name {
            "ORIGIN_URL" => "http://127.0.0.1:1".to_owned(),
            "EDGE_ORIGIN_SECRET" => "s".repeat(32),
            "SYNC_SECRET" => "y".repeat(32),
            "PLAYBACK_KEYS" => format!("k1:{key}"),
            "PLAYBACK_ACTIVE_KID" => "k1".to_owned(),
            "JWT_ISSUER" => "iss".to_owned(),
            "JWT_AUDIENCE" => "aud".to_owned(),
            _ => return None,
        })
    })
}

fn head(method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    serde_json::to_string(&(
        method,
        format!("https://edge.example{path}"),
        headers,
        Option::<&str>::None,
        Option::<&str>::None,
    ))
    .unwrap()
}

fn commands(step: &Step) -> Vec<Value> {
    serde_json::from_str(&step.commands).unwrap()
}

fn names(step: &Step) -> Vec<String> {
    commands(step)
        .iter()
        .map(|c| c["c"].as_str().unwrap().to_owned())
        .collect()
}

/// The bytes a command's range names in its step's payload.
fn bytes<'a>(step: &'a Step, range: &Value) -> &'a [u8] {
    bytes_of(&step.payload, range)
}

fn ok() -> Answer {
    Answer {
        ok: true,
        num: -1.0,
        ..Answer::default()
    }
}

/// A platform on its own, and a way to run one of its futures to the end with `shell`
/// answering each command it issues.
fn platform() -> Driven {
    Driven {
        shared: Rc::new(Shared::default()),
        sys: &SYS,
    }
}

fn run<T>(
    p: &Driven,
    future: impl Future<Output = T>,
    mut shell: impl FnMut(&Value, &[u8]) -> Answer,
) -> (T, Vec<Value>) {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    let mut seen = Vec::new();
    loop {
        let polled = future.as_mut().poll(&mut cx);
        let issued = std::mem::take(&mut *p.shared.outbox.borrow_mut());
        let payload = std::mem::take(&mut *p.shared.payload.borrow_mut());
        for command in issued {
            let command = serde_json::to_value(&command).unwrap();
            let answer = shell(&command, &payload);
            let tag = command["t"].as_u64().unwrap() as u32;
            p.shared.answers.borrow_mut().insert(tag, answer);
            seen.push(command);
        }
        if let Poll::Ready(out) = polled {
            return (out, seen);
        }
        assert!(!seen.is_empty(), "the future waits with nothing asked");
    }
}

#[test]
fn a_request_without_io_is_answered_and_ended_in_its_first_step() {
    let mut x = Exchange::begin(&head("GET", "/healthz", &[]), config(), &SYS);
    let step = x.step();
    assert_eq!(names(&step), ["respond", "end"]);
    assert!(step.ended);
    let respond = &commands(&step)[0];
    assert_eq!(respond["status"], 200);
    assert_eq!(
        respond["s"], r#"{"status":"ok"}"#,
        "a small JSON body goes as text"
    );
    assert!(step.payload.is_empty());
    assert_eq!(respond["headers"]["cache-control"], "no-store");
}

#[test]
fn a_body_is_asked_for_only_when_the_method_has_one_and_it_is_not_too_large() {
    let mut x = Exchange::begin(&head("POST", "/healthz", &[]), config(), &SYS);
    let step = x.step();
    assert_eq!(names(&step), ["body"]);
    assert_eq!(commands(&step)[0]["max"], MAX_REQUEST_BODY);
    assert!(!step.ended);
    let tag = commands(&step)[0]["t"].as_u64().unwrap() as u32;
    x.answer(
        tag,
        Answer {
            bytes: Some(b"{}".to_vec()),
            ..ok()
        },
    );
    let step = x.step();
    assert_eq!(names(&step), ["respond", "end"]);

    // A body that turns out larger than it may be while it streams in (no length declared).
    let mut x = Exchange::begin(&head("POST", "/internal/sync", &[]), config(), &SYS);
    let step = x.step();
    let tag = commands(&step)[0]["t"].as_u64().unwrap() as u32;
    x.answer(
        tag,
        Answer {
            num: BODY_TOO_LARGE,
            ..ok()
        },
    );
    let step = x.step();
    assert_eq!(names(&step), ["respond", "end"]);
    assert_eq!(commands(&step)[0]["status"], 413);

    let too_large = (MAX_REQUEST_BODY + 1).to_string();
    let mut x = Exchange::begin(
        &head("POST", "/internal/sync", &[("content-length", &too_large)]),
        config(),
        &SYS,
    );
    let step = x.step();
    assert_eq!(names(&step), ["respond", "end"], "refused unread");
    assert_eq!(commands(&step)[0]["status"], 413);
}

#[test]
fn an_unparsable_head_is_a_500_not_a_panic() {
    let mut x = Exchange::begin("[\"GET\"", config(), &SYS);
    let step = x.step();
    assert_eq!(names(&step), ["respond", "end"]);
    assert_eq!(commands(&step)[0]["status"], 500);
}

#[test]
fn kv_answers_become_values_absences_and_errors() {
    let p = platform();
    let (value, seen) = run(&p, p.kv_get("video:a"), |_, _| Answer {
        bytes: Some(b"v".to_vec()),
        ..ok()
    });
    assert_eq!(value, Ok(Some(b"v".to_vec())));
    assert_eq!(seen[0]["c"], "kv_get");
    assert_eq!(seen[0]["key"], "video:a");
    let (absent, _) = run(&p, p.kv_get("video:b"), |_, _| ok());
    assert_eq!(absent, Ok(None));
    let (failed, _) = run(&p, p.kv_get("video:c"), |_, _| Answer {
        ok: false,
        text: Some("KV is down".into()),
        ..Answer::default()
    });
    let e = failed.unwrap_err();
    assert_eq!(e, PlatformError::kv("KV is down"));

    // A write's value crosses in the payload, and KV's 60 s floor on TTLs applies here.
    let (written, seen) = run(&p, p.kv_put("k", b"value", Some(5)), |c, payload| {
        assert_eq!(bytes_of(payload, &c["b"]), b"value");
        ok()
    });
    assert_eq!(written, Ok(()));
    assert_eq!(seen[0]["ttl"], 60);
}

fn bytes_of<'a>(payload: &'a [u8], range: &Value) -> &'a [u8] {
    let (at, len) = (range[0].as_u64().unwrap(), range[1].as_u64().unwrap());
    &payload[at as usize..(at + len) as usize]
}

#[test]
fn fetch_answers_keep_a_passed_through_body_in_the_shell_and_carry_a_read_one() {
    let p = platform();
    let request = Request {
        method: "POST".into(),
        url: "http://origin/internal/x".into(),
        headers: vec![("x-edge-auth".into(), "v1.proof".into())],
        body: b"payload".to_vec(),
        pass_through: true,
        ..Request::default()
    };
    let (held, seen) = run(&p, p.fetch(request, 2500), |c, payload| {
        assert_eq!(bytes_of(payload, &c["b"]), b"payload");
        Answer {
            num: 4.0,
            text: Some(r#"[206,[["content-range","bytes 0-1/9"]]]"#.into()),
            ..ok()
        }
    });
    let held = held.unwrap();
    assert_eq!(
        (held.status, held.native_body, held.body.len()),
        (206, Some(4), 0)
    );
    assert_eq!(held.header("content-range"), Some("bytes 0-1/9"));
    assert_eq!(
        (seen[0]["ms"].as_u64(), seen[0]["pass"].as_bool()),
        (Some(2500), Some(true))
    );

    let request = Request {
        method: "GET".into(),
        url: "http://origin/v1/x".into(),
        ..Request::default()
    };
    let (read, seen) = run(&p, p.fetch(request, 100), |_, _| Answer {
        text: Some("[200,[]]".into()),
        bytes: Some(b"{}".to_vec()),
        ..ok()
    });
    let read = read.unwrap();
    assert_eq!((read.native_body, read.body), (None, b"{}".to_vec()));
    assert!(seen[0]["b"].is_null(), "no body to send");

    let (unreachable, _) = run(&p, p.fetch(Request::default(), 100), |_, _| Answer {
        ok: false,
        text: Some("AbortError".into()),
        ..Answer::default()
    });
    assert_eq!(
        unreachable.unwrap_err(),
        PlatformError::unreachable("AbortError")
    );
    // A request the runtime would not build blames no origin; a timeout says so.
    let (refused, _) = run(&p, p.fetch(Request::default(), 100), |_, _| Answer {
        num: FETCH_NOT_SENT,
        text: Some("TypeError: Invalid URL".into()),
        ..ok()
    });
    assert_eq!(
        refused.unwrap_err(),
        PlatformError::bad_request("TypeError: Invalid URL")
    );
    let (late, _) = run(&p, p.fetch(Request::default(), 100), |_, _| Answer {
        num: FETCH_TIMED_OUT,
        ..ok()
    });
    assert_eq!(
        late.unwrap_err(),
        PlatformError::unreachable("timed out after 100 ms")
    );
}

#[test]
fn an_exchange_is_abandoned_only_past_any_real_lifetime() {
    let x = Exchange::begin(&head("GET", "/healthz", &[]), config(), &SYS);
    let began = (SYS.now_ms)();
    assert!(!x.abandoned(began + 60_000.0));
    assert!(x.abandoned(began + ABANDONED_AFTER_MS + 1.0));
}

#[test]
fn a_cached_copy_of_a_held_body_is_asked_for_before_the_response_that_passes_it_on() {
    let mut x = Exchange::begin(&head("GET", "/healthz", &[]), config(), &SYS);
    let p = Driven {
        shared: x.shared.clone(),
        sys: &SYS,
    };
    let mut held = Response {
        status: 200,
        headers: vec![("cache-control".into(), "private".into())],
        native_body: Some(2),
        ..Response::default()
    };
    let storing = p.cache_put_copy("https://c/k", &mut held, 30).unwrap();
    p.defer(Box::pin(async move {
        let _ = storing.await;
    }));
    let step = x.step();
    assert_eq!(
        names(&step),
        ["cache_put", "respond"],
        "not ended: a put is out"
    );
    let put = &commands(&step)[0];
    assert_eq!(put["h"], 2);
    assert!(put["b"].is_null());
    assert_eq!(
        put["headers"],
        serde_json::json!({"cache-control": "public, max-age=30"}),
        "the entry carries its own TTL, not the response's cache-control"
    );
    x.answer(put["t"].as_u64().unwrap() as u32, ok());
    assert_eq!(names(&x.step()), ["end"]);
}

#[test]
fn webcrypto_keys_are_imported_once_per_kid_and_bytes() {
    let p = platform();
    // RFC 8037's and RFC 8032's (test 2) public keys.
    let key = |x: &str| {
        VerifyingKey::from_jwk(&serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x}))
            .unwrap()
    };
    let (first, rotated) = (
        key("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"),
        key("PUAXw-hDiVqStwqnTRt-vJyYLM8uxJaMwM1V8Sr0Zgw"),
    );
    let mut imports = 0;
    let mut shell = |c: &Value, payload: &[u8]| match c["c"].as_str().unwrap() {
        "import_key" => {
            imports += 1;
            assert_eq!(c["format"], "raw");
            assert_eq!(c["alg"]["name"], "Ed25519");
            assert_eq!(bytes_of(payload, &c["b"]).len(), 32);
            Answer {
                num: f64::from(imports),
                ..ok()
            }
        }
        "verify" => {
            assert_eq!(bytes_of(payload, &c["msg"]), b"message");
            Answer {
                num: if bytes_of(payload, &c["sig"]) == [1; 64] {
                    1.0
                } else {
                    0.0
                },
                ..ok()
            }
        }
        other => panic!("unexpected {other}"),
    };
    assert_eq!(
        run(
            &p,
            p.verify_signature("kid-a", &first, b"message", &[1; 64]),
            &mut shell
        )
        .0,
        Ok(true)
    );
    assert_eq!(
        run(
            &p,
            p.verify_signature("kid-a", &first, b"message", &[2; 64]),
            &mut shell
        )
        .0,
        Ok(false)
    );
    let (_, seen) = run(
        &p,
        p.verify_signature("kid-a", &first, b"message", &[1; 64]),
        &mut shell,
    );
    assert_eq!(seen.len(), 1, "the imported key is reused");
    assert_eq!(seen[0]["k"], 1);
    // A key rotated under the same kid is imported afresh.
    let (_, seen) = run(
        &p,
        p.verify_signature("kid-a", &rotated, b"message", &[1; 64]),
        &mut shell,
    );
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1]["k"], 2);
    // A signature of the wrong length is refused without asking.
    let (refused, seen) = run(
        &p,
        p.verify_signature("kid-a", &rotated, b"message", &[1; 63]),
        &mut shell,
    );
    assert_eq!((refused, seen.len()), (Ok(false), 0));
}

#[test]
fn futures_waiting_on_nothing_end_the_exchange_with_a_500_and_a_log_line() {
    let mut x = Exchange::begin(&head("GET", "/healthz", &[]), config(), &SYS);
    x.main = Some(Box::pin(std::future::pending()));
    let step = x.step();
    assert_eq!(names(&step), ["respond", "end"]);
    assert_eq!(commands(&step)[0]["status"], 500);
    assert!(LOG.with(|l| l
        .borrow()
        .iter()
        .any(|m| m.contains("no command outstanding"))));
}

#[test]
fn a_failure_answers_500_with_the_apps_json_body() {
    let step = failure();
    assert_eq!(names(&step), ["respond", "end"]);
    let respond = &commands(&step)[0];
    assert_eq!(respond["status"], 500);
    let body: Value = serde_json::from_str(respond["s"].as_str().unwrap()).unwrap();
    assert!(body["error"].is_string());
}

#[test]
fn headers_go_as_an_object_unless_a_name_repeats() {
    let respond = |headers: &[(&str, &str)]| {
        let headers = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        serde_json::to_value(Command::Respond {
            status: 200,
            headers,
            h: None,
            s: None,
            b: None,
        })
        .unwrap()["headers"]
            .clone()
    };
    assert_eq!(
        respond(&[("content-type", "text/plain"), ("x-request-id", "r1")]),
        serde_json::json!({"content-type": "text/plain", "x-request-id": "r1"})
    );
    assert_eq!(
        respond(&[("set-cookie", "a=1"), ("Set-Cookie", "b=2")]),
        serde_json::json!([["set-cookie", "a=1"], ["Set-Cookie", "b=2"]]),
        "both cookies kept, in order"
    );
}

#[test]
fn answers_reach_their_commands_in_whatever_order_they_come() {
    let mut x = Exchange::begin(&head("GET", "/healthz", &[]), config(), &SYS);
    let p = Driven {
        shared: x.shared.clone(),
        sys: &SYS,
    };
    x.main = Some(Box::pin(async move {
        let (a, b) = futures_util::future::join(p.kv_get("a"), p.kv_get("b")).await;
        let body = [a.unwrap().unwrap(), b.unwrap().unwrap()].concat();
        Response::new(200, "text/plain", body)
    }));
    let step = x.step();
    assert_eq!(names(&step), ["kv_get", "kv_get"], "both asked at once");
    let tag = |i: usize| commands(&step)[i]["t"].as_u64().unwrap() as u32;
    let value = |v: &[u8]| Answer {
        bytes: Some(v.to_vec()),
        ..ok()
    };
    x.answer(tag(1), value(b"B"));
    assert_eq!(
        names(&x.step()),
        Vec::<String>::new(),
        "still waiting for a"
    );
    x.answer(tag(0), value(b"A"));
    let step = x.step();
    assert_eq!(names(&step), ["respond", "end"]);
    assert_eq!(commands(&step)[0]["s"], "AB");
}

#[test]
fn random_bytes_come_from_a_pool_each_once_refilled_when_short() {
    let calls = Cell::new(0u16);
    // Each pair of bytes a source gives is a number of its own: the call's number times 1024,
    // plus the pair's position; so no two 16-byte draws may be equal.
    let fill = |b: &mut [u8]| {
        calls.set(calls.get() + 1);
        for (i, pair) in b.chunks_mut(2).enumerate() {
            let n = (calls.get() * 1024 + i as u16).to_be_bytes();
            pair.copy_from_slice(&n[..pair.len()]);
        }
        Ok(())
    };
    let call_of = |bytes: &[u8]| u16::from_be_bytes([bytes[0], bytes[1]]) / 1024;
    let mut pool = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for _ in 0..RANDOM_POOL / 16 {
        let mut id = [0u8; 16];
        draw(&mut pool, &mut id, fill).unwrap();
        assert!(ids.insert(id), "no bytes handed out twice");
    }
    assert_eq!(calls.get(), 1, "one call serves a pool's worth");
    assert!(pool.is_empty());
    let mut more = [0u8; 32];
    draw(&mut pool, &mut more, fill).unwrap();
    assert_eq!((calls.get(), call_of(&more)), (2, 2), "refilled when short");
    assert_eq!(pool.len(), RANDOM_POOL - 32);
    // Too large for the pool: straight from the source, the pool untouched.
    let mut big = vec![0u8; RANDOM_POOL + 2];
    draw(&mut pool, &mut big, fill).unwrap();
    assert_eq!(
        (calls.get(), call_of(&big), pool.len()),
        (3, 3, RANDOM_POOL - 32)
    );
    // A failing source is an error, and nothing is handed out.
    let mut empty = Vec::new();
    let mut id = [9u8; 16];
    assert!(draw(&mut empty, &mut id, |_| Err("no entropy".into())).is_err());
    assert_eq!(id, [9; 16]);
}

#[test]
fn a_body_goes_as_text_only_when_small_typed_and_utf8() {
    let sent = |response: Response| {
        let mut x = Exchange::begin(&head("GET", "/healthz", &[]), config(), &SYS);
        x.main = Some(Box::pin(async move { response }));
        let step = x.step();
        let c = commands(&step).remove(0);
        let b = (!c["b"].is_null()).then(|| bytes(&step, &c["b"]).to_vec());
        (c["s"].as_str().map(str::to_owned), b)
    };
    let text = "é".repeat(INLINE_BODY / 2);
    assert_eq!(
        sent(Response::new(200, "text/plain", text.clone().into_bytes())),
        (Some(text), None)
    );
    let large = "a".repeat(INLINE_BODY + 1);
    assert_eq!(
        sent(Response::new(200, "text/plain", large.clone().into_bytes())),
        (None, Some(large.into_bytes()))
    );
    let binary = vec![0xff, 0xfe, 0];
    assert_eq!(
        sent(Response::new(200, "video/mp2t", binary.clone())),
        (None, Some(binary))
    );
    let untyped = Response {
        status: 200,
        headers: Vec::new(),
        body: b"x".to_vec(),
        native_body: None,
    };
    assert_eq!(sent(untyped), (None, Some(b"x".to_vec())));
}

#[test]
fn a_media_request_with_a_genuine_token_reads_the_record_and_the_cache_at_once() {
    use shared_wasm::playback::{self, Binding, Claims};
    let config = config();
    let keys = &config.playback().unwrap().keys;
    let now = UnixTime((SYS.now_ms)() as u64 / 1000);
    let token = playback::sign(
        keys,
        &Claims {
            prefix: "/hls/v1/".into(),
            not_before: now,
            expires: now.plus(600),
            binding: Binding::default(),
        },
    );
    let path = format!("/hls/v1/{token}/480p/seg_001.ts");
    let mut x = Exchange::begin(&head("GET", &path, &[]), config.clone(), &SYS);
    let step = x.step();
    assert_eq!(
        names(&step),
        ["kv_get", "cache_match"],
        "one round of reads"
    );
    let c = commands(&step);
    assert_eq!(c[0]["key"], "video:v1");
    assert!(c[1]["key"]
        .as_str()
        .unwrap()
        .ends_with("/hls/v1/480p/seg_001.ts"));

    // A token whose tag does not match reads nothing (one character inside the tag changed).
    let at = token.len() - 10;
    let other = if &token[at..=at] == "A" { "B" } else { "A" };
    let forged = path.replacen(
        &token,
        &format!("{}{other}{}", &token[..at], &token[at + 1..]),
        1,
    );
    let mut x = Exchange::begin(&head("GET", &forged, &[]), config, &SYS);
    let step = x.step();
    assert_eq!(names(&step), ["respond", "end"]);
    assert_eq!(commands(&step)[0]["status"], 403);
}

#[test]
fn a_playback_request_reads_the_record_with_the_key_set() {
    let auth = [("authorization", "Bearer a.b.c")];
    let mut x = Exchange::begin(
        &head("GET", "/v1/videos/v1/playback", &auth),
        config(),
        &SYS,
    );
    let step = x.step();
    assert_eq!(names(&step), ["kv_get", "kv_get"], "one round of reads");
    let keys: Vec<Value> = commands(&step).iter().map(|c| c["key"].clone()).collect();
    assert_eq!(keys, ["jwks", "video:v1"]);
}

#[test]
fn a_header_that_is_no_bearer_token_is_refused_before_any_read() {
    let auth = [("authorization", "Basic dTpw")];
    let mut x = Exchange::begin(
        &head("GET", "/v1/videos/v1/playback", &auth),
        config(),
        &SYS,
    );
    let step = x.step();
    assert_eq!(names(&step), ["respond", "end"]);
    assert_eq!(commands(&step)[0]["status"], 401);
}

fn as_bytes(numbers: &[f64]) -> Vec<u8> {
    numbers.iter().flat_map(|n| n.to_le_bytes()).collect()
}

#[test]
fn the_limiters_numbers_read_back_as_its_decision() {
    let allowed = Decision {
        allowed: true,
        remaining: 41,
        reset_secs: 3,
        retry_after_secs: 0,
    };
    let answer = limiter_answer(&allowed, Some(1_700_000_000_123));
    assert_eq!(answer[0], 1_700_000_000_123.0, "the arrival time to store");
    assert_eq!(decision_of(&as_bytes(&answer)), Ok(allowed));
    let refused = Decision {
        allowed: false,
        remaining: 0,
        reset_secs: 60,
        retry_after_secs: 2,
    };
    let answer = limiter_answer(&refused, None);
    assert!(answer[0].is_nan(), "a refusal stores nothing");
    assert_eq!(decision_of(&as_bytes(&answer)), Ok(refused));
}

#[test]
fn a_limiter_answer_that_is_not_five_whole_numbers_is_an_error() {
    let good = [f64::NAN, 1.0, 2.0, 3.0, 0.0];
    assert!(decision_of(&as_bytes(&good)).is_ok());
    assert!(decision_of(&as_bytes(&good[..4])).is_err());
    assert!(decision_of(&as_bytes(&good)[..39]).is_err());
    assert!(decision_of(&[as_bytes(&good), vec![0]].concat()).is_err());
    assert!(decision_of(&[]).is_err());
    for (i, bad) in [
        (1, 0.5),
        (1, 2.0),
        (2, -1.0),
        (2, 5e9),
        (3, f64::NAN),
        (4, f64::INFINITY),
    ] {
        let mut numbers = good;
        numbers[i] = bad;
        assert!(decision_of(&as_bytes(&numbers)).is_err(), "{numbers:?}");
    }
}
