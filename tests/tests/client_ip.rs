//! `CLIENT_IP_HEADER` on Spin: behind a CDN the connection's peer is the CDN, so the viewer's
//! address comes from the header the CDN sets. With the setting, addresses in that header get
//! their own rate-limit buckets and token bindings, and a value that is not exactly one IP
//! address makes the address unknown (never a piece of the value, never the peer). Without it,
//! the header is just another client header and ignored.
//!
//! All requests come from 127.0.0.1 (the test is the "CDN"); the addresses are documentation
//! ranges.

use e2e::{
    free_port, Edge, Origin, Runtime, COUNTRY_HEADER, DEMO_EMAIL, DEMO_PASSWORD, LOGIN_LIMIT,
    VIEWER_COUNTRY,
};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

/// What a CDN such as Cloudflare sets to the viewer's address.
const CLIENT_IP_HEADER: &str = "cf-connecting-ip";
const A: &str = "198.51.100.7";
/// In A's /24, so a token bound to A's network (`PLAYBACK_BIND_IP=subnet`) works here too.
const A_NEIGHBOUR: &str = "198.51.100.99";
const B: &str = "203.0.113.9";

fn client() -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(COUNTRY_HEADER, VIEWER_COUNTRY.parse().unwrap());
    Client::builder().default_headers(headers).build().unwrap()
}

async fn login(c: &Client, edge: &str, ip: Option<&str>) -> StatusCode {
    let mut req = c
        .post(format!("{edge}/v1/auth/login"))
        .json(&json!({"email": DEMO_EMAIL, "password": DEMO_PASSWORD}));
    if let Some(ip) = ip {
        req = req.header(CLIENT_IP_HEADER, ip);
    }
    req.send().await.expect("login request").status()
}

/// Logs in until the limit, then once more: LOGIN_LIMIT × 200, then 429.
async fn exhaust_logins(c: &Client, edge: &str, ip: Option<&str>) {
    for i in 0..LOGIN_LIMIT {
        assert_eq!(
            login(c, edge, ip).await,
            StatusCode::OK,
            "login {i} from {ip:?}"
        );
    }
    assert_eq!(
        login(c, edge, ip).await,
        StatusCode::TOO_MANY_REQUESTS,
        "past the limit from {ip:?}"
    );
}

/// The manifest URL of the public demo video, issued to a viewer at `ip`.
async fn manifest_for(c: &Client, edge: &str, ip: Option<&str>) -> String {
    let mut req = c.get(format!("{edge}/v1/videos/demo-free/playback"));
    if let Some(ip) = ip {
        req = req.header(CLIENT_IP_HEADER, ip);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Value>().await.unwrap()["manifest_url"]
        .as_str()
        .expect("manifest_url")
        .to_owned()
}

/// Fetches `manifest` as a viewer at `ip`: the status, and the refusal's reason if any.
async fn play(c: &Client, manifest: &str, ip: Option<&str>) -> (StatusCode, Option<String>) {
    let mut req = c.get(manifest);
    if let Some(ip) = ip {
        req = req.header(CLIENT_IP_HEADER, ip);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let reason = if status.is_success() {
        None
    } else {
        r.json::<Value>()
            .await
            .ok()
            .and_then(|b| b["reason"].as_str().map(str::to_owned))
    };
    (status, reason)
}

#[tokio::test]
async fn spin_client_ip_header_gives_the_viewer_address_behind_a_cdn() {
    let port = free_port();
    let origin = Origin::start(port).await;
    let edge = Edge::start_with(
        Runtime::Spin,
        &origin,
        port,
        &[("CLIENT_IP_HEADER", CLIENT_IP_HEADER)],
    )
    .await;
    let (c, e) = (client(), edge.url.as_str());

    // Each address its own login bucket, though every request comes from the same peer.
    exhaust_logins(&c, e, Some(A)).await;
    assert_eq!(
        login(&c, e, Some(B)).await,
        StatusCode::OK,
        "{}",
        edge.log()
    );
    // An IPv6 address: its /64's bucket.
    assert_eq!(login(&c, e, Some("2001:db8:1::7")).await, StatusCode::OK);
    assert_eq!(login(&c, e, Some(A)).await, StatusCode::TOO_MANY_REQUESTS);

    // No header: the address is unknown, one bucket for all such requests.
    exhaust_logins(&c, e, None).await;
    // A value that is not exactly one address lands there too: neither entry of a list nor an
    // address with a port is taken (each of these is a fresh address, so taking it would pass).
    for value in [
        "192.0.2.1, 192.0.2.2",
        "192.0.2.3:443",
        "[2001:db8::1]",
        "not-an-ip",
    ] {
        assert_eq!(
            login(&c, e, Some(value)).await,
            StatusCode::TOO_MANY_REQUESTS,
            "{value:?} was taken as an address"
        );
    }
    assert!(
        edge.log().contains("not one IP address"),
        "a refused value is logged:\n{}",
        edge.log()
    );

    // A token is bound to the network of the address in the header...
    let manifest = manifest_for(&c, e, Some(A)).await;
    assert_eq!(play(&c, &manifest, Some(A)).await, (StatusCode::OK, None));
    assert_eq!(
        play(&c, &manifest, Some(A_NEIGHBOUR)).await,
        (StatusCode::OK, None)
    );
    let refused = (StatusCode::FORBIDDEN, Some("network_mismatch".to_owned()));
    assert_eq!(play(&c, &manifest, Some(B)).await, refused);
    // ...and an unknown address does not match it.
    assert_eq!(play(&c, &manifest, None).await, refused);
    assert_eq!(
        play(&c, &manifest, Some("198.51.100.7, 1.2.3.4")).await,
        refused
    );

    // Issued to an unknown address, a token is not bound to the peer's (the CDN's) network,
    // which every viewer behind it shares; as for any unknown address, it is not bound at all.
    let unknown = manifest_for(&c, e, None).await;
    assert_eq!(play(&c, &unknown, Some(B)).await, (StatusCode::OK, None));
}

#[tokio::test]
async fn spin_without_client_ip_header_the_header_is_ignored() {
    let port = free_port();
    let origin = Origin::start(port).await;
    let edge = Edge::start(Runtime::Spin, &origin, port).await;
    let (c, e) = (client(), edge.url.as_str());

    // The peer's bucket, whatever the header says.
    exhaust_logins(&c, e, Some(A)).await;
    assert_eq!(login(&c, e, Some(B)).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(login(&c, e, None).await, StatusCode::TOO_MANY_REQUESTS);

    // The token is bound to the peer's network, so the header changes nothing.
    let manifest = manifest_for(&c, e, Some(A)).await;
    assert_eq!(play(&c, &manifest, Some(B)).await, (StatusCode::OK, None));
    assert_eq!(play(&c, &manifest, None).await, (StatusCode::OK, None));
}
