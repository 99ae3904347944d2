//! The playback slice end to end, once per edge runtime: login → playback URL → master playlist
//! → variant playlist → segment (byte-identical to the origin's file), and the refusals.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use e2e::{
    Edge, Runtime, COUNTRY_HEADER, DEMO_EMAIL, DEMO_PASSWORD, LOGIN_LIMIT, PLAYBACK_KEY,
    PLAYBACK_KID, VIEWER_COUNTRY,
};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use shared_wasm::playback::{self, Binding, Claims, PlaybackKeys, Use, Viewer};
use shared_wasm::{CountryCode, Kid, UnixTime};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn get(c: &Client, url: &str) -> reqwest::Response {
    c.get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

async fn json_of(r: reqwest::Response) -> Value {
    r.json().await.expect("a JSON body")
}

/// `…/hls/{id}/{token}/` of a manifest URL.
fn base_of(manifest: &str) -> &str {
    manifest.strip_suffix("master.m3u8").expect("manifest URL")
}

fn token_of(manifest: &str) -> &str {
    base_of(manifest)
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap()
}

fn first_uri(playlist: &str) -> &str {
    playlist
        .lines()
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .expect("a URI line")
}

async fn playback(c: &Client, edge: &str, video: &str, jwt: Option<&str>) -> reqwest::Response {
    let mut req = c.get(format!("{edge}/v1/videos/{video}/playback"));
    if let Some(t) = jwt {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

async fn assert_forbidden(c: &Client, url: &str, reason: &str) {
    let r = get(c, url).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "{url}");
    let body = json_of(r).await;
    assert_eq!(body["reason"], reason, "{url}: {body}");
    let text = body.to_string();
    assert!(!text.contains(&String::from_utf8_lossy(&PLAYBACK_KEY).to_string()));
}

async fn flow(runtime: Runtime) {
    let (origin, edge) = e2e::stack(runtime).await;
    let e = edge.url.as_str();
    // Spin learns the country from a trusted header; workerd from `request.cf` (see e2e::Edge).
    let c = e2e::client();

    // Login through the edge, which forwards to the origin.
    let r = c
        .post(format!("{e}/v1/auth/login"))
        .json(&json!({"email": DEMO_EMAIL, "password": "wrong-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(r).await["error"], "invalid_credentials");
    let r = c
        .post(format!("{e}/v1/auth/login"))
        .json(&json!({"email": DEMO_EMAIL, "password": DEMO_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", edge.log());
    assert_eq!(
        r.headers()["ratelimit-policy"],
        format!("\"login\";q={LOGIN_LIMIT};w=600").as_str()
    );
    assert!(r.headers()["ratelimit"]
        .to_str()
        .unwrap()
        .starts_with("\"login\";r="));
    // The edge gave the request an id, sent it to the origin, and answers with it.
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(shared_wasm::RequestId::parse(&id).is_ok(), "{id}");
    let jwt = json_of(r).await["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let logged = origin.requests_with_id(&id);
    assert_eq!(logged.len(), 1, "{id}: {logged:?}");
    assert_eq!(
        (
            &logged[0]["method"],
            &logged[0]["route"],
            &logged[0]["status"]
        ),
        (&json!("POST"), &json!("/v1/auth/login"), &json!(200))
    );
    // A client's own id, when valid, is the one that goes through.
    let theirs = format!("e2e-{runtime:?}-me");
    let r = c
        .get(format!("{e}/v1/me"))
        .bearer_auth(&jwt)
        .header("x-request-id", &theirs)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-request-id"], theirs.as_str());
    // Every origin call made for it carries it: the forwarded call, and the key set fetched
    // to check its token (when the edge's copy is not fresh).
    let routes: Vec<_> = origin
        .requests_with_id(&theirs)
        .iter()
        .map(|l| l["route"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        routes.iter().filter(|r| *r == "/v1/me").count(),
        1,
        "{theirs}: {routes:?}"
    );
    assert!(
        routes
            .iter()
            .all(|r| r == "/v1/me" || r == "/.well-known/jwks.json"),
        "{theirs}: {routes:?}"
    );

    // A members video needs a login; a bad token is refused with RFC 6750 details.
    let r = playback(&c, e, "demo-members", None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Bearer realm="), "{challenge}");
    let mut forged = jwt.clone().into_bytes();
    let i = forged.len() - 10;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let r = playback(
        &c,
        e,
        "demo-members",
        Some(std::str::from_utf8(&forged).unwrap()),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));

    refused_access_tokens(&c, e, &jwt).await;

    let r = playback(&c, e, "no-such-video", None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_of(r).await["error"], "not_found");

    let r = playback(&c, e, "demo-members", Some(&jwt)).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", edge.log());
    let body = json_of(r).await;
    let manifest = body["manifest_url"].as_str().unwrap().to_owned();
    assert!(
        manifest.starts_with(&format!("{e}/hls/demo-members/")),
        "{manifest}"
    );
    let exp = body["expires_at"].as_u64().unwrap();
    assert!(exp > now() && exp <= now() + 3600 + 5);

    // Master → variant → segment.
    let r = get(&c, &manifest).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/vnd.apple.mpegurl");
    let master = r.text().await.unwrap();
    assert!(
        master.contains("#EXT-X-STREAM-INF") && master.contains("CODECS="),
        "{master}"
    );
    let variant_uri = first_uri(&master).to_owned();
    let base = base_of(&manifest).to_owned();
    let r = get(&c, &format!("{base}{variant_uri}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let variant = r.text().await.unwrap();
    let segment = first_uri(&variant).to_owned();
    let variant_dir = variant_uri.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let seg_url = format!("{base}{variant_dir}/{segment}");
    let r = get(&c, &seg_url).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "video/mp2t");
    assert_eq!(r.headers()["x-edge-cache"], "MISS");
    let served = r.bytes().await.unwrap();
    let stored = std::fs::read(
        origin
            .media_dir
            .join("demo-members")
            .join(variant_dir)
            .join(&segment),
    )
    .unwrap();
    assert!(!stored.is_empty());
    assert_eq!(served.as_ref(), stored.as_slice(), "segment bytes differ");
    let again = get(&c, &seg_url).await;
    assert_eq!(again.headers()["x-edge-cache"], "HIT");
    assert_eq!(again.bytes().await.unwrap().as_ref(), stored.as_slice());

    // A public video plays without a login.
    let r = playback(&c, e, "demo-free", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let free_manifest = json_of(r).await["manifest_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(get(&c, &free_manifest).await.status(), StatusCode::OK);

    // Refusals: tampered, expired, other video's token, path tricks.
    let token = token_of(&manifest).to_owned();
    let mut tampered = token.clone().into_bytes();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_forbidden(&c, &manifest.replace(&token, &tampered), "invalid").await;

    let mut keys = BTreeMap::new();
    keys.insert(Kid::parse(PLAYBACK_KID).unwrap(), PLAYBACK_KEY.to_vec());
    let keys = PlaybackKeys::new(Kid::parse(PLAYBACK_KID).unwrap(), keys).unwrap();
    let valid = Claims {
        prefix: "/hls/demo-members/".into(),
        not_before: UnixTime(now() - 60),
        expires: UnixTime(now() + 600),
        binding: Binding::default(),
    };
    let expired = playback::sign(
        &keys,
        &Claims {
            not_before: UnixTime(now() - 7200),
            expires: UnixTime(now() - 3600),
            ..valid.clone()
        },
    );
    assert_forbidden(&c, &manifest.replace(&token, &expired), "expired").await;

    // The edge bound the issued token to the viewer's /24 and country...
    let grant = playback::verify(
        &keys,
        &token,
        &Use {
            path: "/hls/demo-members/master.m3u8",
            now: UnixTime(now()),
            leeway_secs: 30,
            viewer: Viewer {
                ip: Some("127.0.0.1"),
                country: CountryCode::parse(VIEWER_COUNTRY).ok(),
            },
        },
    )
    .expect("the issued token verifies for this viewer");
    assert_eq!(
        grant.claims.binding.network.as_deref(),
        Some("127.0.0.0/24")
    );
    assert_eq!(
        grant
            .claims
            .binding
            .country
            .map(|c| c.to_string())
            .as_deref(),
        Some(VIEWER_COUNTRY)
    );
    // A video with its own binding policy (none) overrides the deployment's.
    let r = playback(&c, e, "demo-embed", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let embed = json_of(r).await["manifest_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let embed_grant = playback::verify(
        &keys,
        token_of(&embed),
        &Use {
            path: "/hls/demo-embed/master.m3u8",
            now: UnixTime(now()),
            leeway_secs: 30,
            viewer: Viewer::default(),
        },
    )
    .expect("an unbound token verifies for anyone");
    assert_eq!(embed_grant.claims.binding, Binding::default());

    // ...and refuses tokens bound elsewhere.
    let elsewhere = |network: Option<&str>, country: Option<&str>| {
        playback::sign(
            &keys,
            &Claims {
                binding: Binding {
                    network: network.map(str::to_owned),
                    country: country.map(|c| CountryCode::parse(c).unwrap()),
                },
                ..valid.clone()
            },
        )
    };
    let other_net = elsewhere(Some("198.51.100.0/24"), None);
    assert_forbidden(
        &c,
        &manifest.replace(&token, &other_net),
        "network_mismatch",
    )
    .await;
    let other_country = elsewhere(None, Some("FR"));
    assert_forbidden(
        &c,
        &manifest.replace(&token, &other_country),
        "country_mismatch",
    )
    .await;
    if let Runtime::Spin | Runtime::SpinUp = runtime {
        // The same viewer, now reported in another country, loses the issued token.
        let r = Client::new()
            .get(&manifest)
            .header(COUNTRY_HEADER, "FR")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(json_of(r).await["reason"], "country_mismatch");
    }

    let free_token = token_of(&free_manifest);
    assert_forbidden(&c, &manifest.replace(&token, free_token), "wrong_path").await;

    // HTTP clients resolve `..` and `%2e%2e` before sending (WHATWG URL rules), so the forms that
    // reach the edge are double encoding and empty segments; the parser's unit tests cover the rest.
    for trick in [
        "%252e%252e/demo-free/master.m3u8",
        "480p//index.m3u8",
        "..%2fdemo-free/master.m3u8",
    ] {
        let r = get(&c, &format!("{base}{trick}")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{trick}");
        assert_eq!(json_of(r).await["error"], "bad_media_path", "{trick}");
    }

    // The origin serves media to the edge only.
    let r = get(
        &c,
        &format!("{}/internal/media/demo-members/master.m3u8", origin.url),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // A stock HLS client reads the stream through the edge.
    let probe = tokio::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
        ])
        // On Spin the country comes from this header; ffmpeg sends it on every HLS request.
        .args([
            "-headers",
            &format!("{COUNTRY_HEADER}: {VIEWER_COUNTRY}\r\n"),
        ])
        .arg(&manifest)
        .output()
        .await
        .expect("ffprobe runs");
    let out = String::from_utf8_lossy(&probe.stdout);
    assert!(
        probe.status.success() && out.contains("h264") && out.contains("aac"),
        "{out}"
    );

    // Country rules and takedowns: refused when issuing, and for tokens already out.
    for (video, reason) in [
        ("demo-geo", "country_blocked"),
        ("demo-taken", "taken_down"),
    ] {
        let r = playback(&c, e, video, None).await;
        assert_eq!(r.status().as_u16(), 451, "{video}");
        assert_eq!(json_of(r).await["reason"], reason, "{video}");
        let outstanding = playback::sign(
            &keys,
            &Claims {
                prefix: format!("/hls/{video}/"),
                ..valid.clone()
            },
        );
        let r = get(&c, &format!("{e}/hls/{video}/{outstanding}/master.m3u8")).await;
        assert_eq!(r.status().as_u16(), 451, "{video} media");
        assert_eq!(json_of(r).await["reason"], reason, "{video} media");
    }

    login_rate_limit(&c, &edge).await;
}

/// The two logins above used 2 of the client's LOGIN_LIMIT; a burst of 12 more must admit
/// exactly the rest. Where limits are exact under concurrency (Workers: a Durable Object per
/// key; Spin with Redis: one script per decision) the burst is concurrent; on Spin's plain
/// store, which offers no atomic update, it is sequential.
/// Tokens built from a real one that the edge must refuse, whoever checks the signature (on
/// Workers, WebCrypto): the header's `alg` changed to another allowed algorithm, `none`, the
/// right `kid` signed by another key, and the forgery that small-order keys allow.
async fn refused_access_tokens(c: &Client, e: &str, jwt: &str) {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use ed25519_dalek::Signer;

    let mut parts = jwt.split('.');
    let (header, payload) = (parts.next().unwrap(), parts.next().unwrap());
    let sig = parts.next().unwrap();
    let h: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    assert_eq!(h["alg"], "EdDSA");
    let with_alg = |alg: &str| {
        let mut h = h.clone();
        h["alg"] = alg.into();
        URL_SAFE_NO_PAD.encode(h.to_string())
    };
    let other_key = ed25519_dalek::SigningKey::from_bytes(&[42u8; 32]);
    let input = format!("{header}.{payload}");
    let mut identity_sig = [0u8; 64];
    identity_sig[0] = 1;
    let refused = [
        (
            "alg ES256",
            format!("{}.{payload}.{sig}", with_alg("ES256")),
        ),
        ("alg none", format!("{}.{payload}.", with_alg("none"))),
        (
            "another key",
            format!(
                "{input}.{}",
                URL_SAFE_NO_PAD.encode(other_key.sign(input.as_bytes()).to_bytes())
            ),
        ),
        (
            "(identity, 0)",
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(identity_sig)),
        ),
        ("short signature", format!("{input}.{}", &sig[..40])),
    ];
    for (what, token) in refused {
        let r = playback(c, e, "demo-members", Some(&token)).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token"),
            "{what}"
        );
    }
}

async fn login_rate_limit(c: &Client, edge: &Edge) {
    let url = format!("{}/v1/auth/login", edge.url);
    let body = json!({"email": DEMO_EMAIL, "password": "wrong-password"});
    let mut responses = Vec::new();
    if edge.exact_limits_under_concurrency() {
        let burst: Vec<_> = (0..12)
            .map(|_| tokio::spawn(c.post(&url).json(&body).send()))
            .collect();
        for h in burst {
            responses.push(h.await.unwrap().unwrap());
        }
    } else {
        for _ in 0..12 {
            responses.push(c.post(&url).json(&body).send().await.unwrap());
        }
    }
    let admitted = responses
        .iter()
        .filter(|r| r.status() == StatusCode::UNAUTHORIZED)
        .count();
    let limited: Vec<_> = responses
        .into_iter()
        .filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!(
        admitted,
        LOGIN_LIMIT as usize - 2,
        "admitted after the burst"
    );
    assert_eq!(limited.len(), 12 - admitted, "every other answer is a 429");
    for r in limited {
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=600).contains(&retry), "{retry}");
        assert!(r.headers()["ratelimit"].to_str().unwrap().contains(";r=0;"));
        assert_eq!(
            r.headers()["ratelimit-policy"].to_str().unwrap(),
            format!("\"login\";q={LOGIN_LIMIT};w=600")
        );
        assert_eq!(json_of(r).await["error"], "rate_limited");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn playback_flow_on_workerd_via_wrangler_dev() {
    flow(Runtime::Wrangler).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn playback_flow_on_spin_component_in_wasmtime() {
    flow(Runtime::Spin).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn playback_flow_under_spin_up() {
    flow(Runtime::SpinUp).await;
}
