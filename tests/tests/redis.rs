//! Spin at scale: several `spin up` instances sharing their state in one Redis, as
//! `runtime-config-redis.toml` and `REDIS_URL` set it up. These need a Redis server
//! (`TEST_REDIS_URL`; `scripts/test.sh` starts one and runs them in its PostgreSQL pass) and fail
//! without one, never passing silently; the `spin up` one also needs a Spin CLI.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use e2e::{Edge, Origin, Runtime, DEMO_EMAIL, LOGIN_LIMIT};
use reqwest::{Client, StatusCode};
use serde_json::json;
use shared_wasm::ratelimit::{self, Quota};
use shared_wasm::record::KvEnvelope;
use shared_wasm::UnixTime;

fn connect(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("connecting to the test Redis")
}

/// The script the Spin edge runs, against a real server, answers as `ratelimit::check` would on
/// every call (`redis_decision` is `None` when the two disagree), through bursts, refusals and
/// refills, and its state expires when it no longer matters.
#[test]
fn the_rate_limit_script_agrees_with_check_on_redis() {
    let mut conn = connect(&e2e::redis_db());
    // 4 requests per second: a cell every 250 ms.
    let quota = Quota::new("t", 4, 1).unwrap();
    let [interval, window] = ratelimit::redis_args(&quota);
    let (mut allowed, mut refused) = (0, 0);
    let start = Instant::now();
    let mut last_call = Duration::ZERO;
    for i in 0u64..60 {
        let reply: Vec<i64> = redis::cmd("EVAL")
            .arg(ratelimit::REDIS_GCRA_SCRIPT)
            .arg(1)
            .arg("gcra:t")
            .arg(interval)
            .arg(window)
            .query(&mut conn)
            .expect("the script runs");
        last_call = start.elapsed();
        let decision = ratelimit::redis_decision(&quota, &reply)
            .unwrap_or_else(|| panic!("call {i}: the script and check disagree: {reply:?}"));
        if decision.allowed {
            allowed += 1;
            let ttl: i64 = redis::cmd("PTTL").arg("gcra:t").query(&mut conn).unwrap();
            assert!(
                (1..=window as i64).contains(&ttl),
                "the state expires within the window: {ttl} ms"
            );
        } else {
            refused += 1;
        }
        // Bursts of calls, then pauses of up to a cell or so.
        std::thread::sleep(Duration::from_millis((i * 37) % 11 * (i % 3) * 10));
    }
    assert!(refused > 0, "the calls came faster than the quota");
    // A burst of 4, then one every 250 ms at most.
    let most = 4 + (last_call.as_secs_f64() * 4.0).floor() as i64;
    assert!(
        (4..=most).contains(&allowed),
        "{allowed} allowed in {last_call:?}"
    );
}

/// Two `spin up` instances on one Redis database behave as one edge: a revocation that reaches
/// one is refused by the other, and a login burst spread over both is limited exactly, however
/// the requests race. Entries that expire carry Redis's own expiry, so nothing needs sweeping.
#[tokio::test(flavor = "multi_thread")]
async fn two_instances_share_one_edge_under_spin_up_on_redis() {
    let shared = e2e::redis_db();
    let (port_a, port_b) = (e2e::free_port(), e2e::free_port());
    // The origin pushes its records to A only.
    let origin = Origin::start(port_a).await;
    let settings = [("REDIS_URL", shared.as_str())];
    let a = Edge::start_with(Runtime::SpinUp, &origin, port_a, &settings).await;
    let b = Edge::start_with(Runtime::SpinUp, &origin, port_b, &settings).await;
    let c = e2e::client();

    // One login (the first of LOGIN_LIMIT), a token that plays at both, revoked through A.
    let session = e2e::login(&c, &b.url, DEMO_EMAIL).await;
    let token = session["access_token"].as_str().unwrap();
    for edge in [&a, &b] {
        let r = playback(&c, &edge.url, token).await;
        assert_eq!(r.status(), StatusCode::OK, "{}", edge.log());
    }
    let r = c
        .post(format!("{}/v1/auth/logout", a.url))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = playback(&c, &b.url, token).await;
        if r.status() == StatusCode::UNAUTHORIZED {
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["message"], "token revoked");
            break;
        }
        assert_eq!(r.status(), StatusCode::OK);
        assert!(Instant::now() < deadline, "B never saw A's revocation");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A concurrent burst of wrong passwords, alternating between the instances: exactly the
    // rest of the quota is admitted.
    let burst: Vec<_> = (0..2 * LOGIN_LIMIT)
        .map(|i| {
            let url = format!("{}/v1/auth/login", [&a, &b][i as usize % 2].url);
            let body = json!({"email": DEMO_EMAIL, "password": "wrong-password"});
            tokio::spawn(c.post(url).json(&body).send())
        })
        .collect();
    let mut statuses = BTreeMap::new();
    for h in burst {
        *statuses
            .entry(h.await.unwrap().unwrap().status().as_u16())
            .or_insert(0) += 1;
    }
    let rest = LOGIN_LIMIT - 1;
    assert_eq!(
        statuses,
        BTreeMap::from([(401, rest), (429, 2 * LOGIN_LIMIT - rest)]),
        "admitted (401) and limited (429) across both instances"
    );

    // The state is in Redis: rate limits as the script keeps them, with their expiry; an entry
    // whose envelope expires (sync nonces, sessions, read-through records, cache entries)
    // expires in Redis too, and one whose envelope does not (a synced video) stays.
    let mut conn = connect(&shared);
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    let (mut limits, mut expiring, mut lasting) = (0, 0, 0);
    for k in &keys {
        let ttl: i64 = redis::cmd("PTTL").arg(k).query(&mut conn).unwrap();
        if k.starts_with("gcra:") {
            assert!(ttl > 0, "{k} expires");
            limits += 1;
            continue;
        }
        let bytes: Vec<u8> = redis::cmd("GET").arg(k).query(&mut conn).unwrap();
        assert!(
            KvEnvelope::open(&bytes, UnixTime(0)).is_some(),
            "{k} holds an envelope"
        );
        if KvEnvelope::open(&bytes, UnixTime(u64::MAX)).is_none() {
            assert!(ttl > 0, "{k} expires in Redis as its envelope says");
            expiring += 1;
        } else {
            assert_eq!(ttl, -1, "{k} has no expiry");
            lasting += 1;
        }
    }
    assert!(
        limits > 0 && expiring > 0 && lasting > 0,
        "limits, expiring and lasting entries: {keys:?}"
    );
    assert!(
        !keys
            .iter()
            .any(|k| k.starts_with("rl:") || k == "sweep-cursor"),
        "no store-kept limits, no sweeping: {keys:?}"
    );
}

async fn playback(c: &Client, edge: &str, token: &str) -> reqwest::Response {
    c.get(format!("{edge}/v1/videos/demo-free/playback"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}
