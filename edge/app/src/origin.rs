//! Requests from the edge to the origin regions: signed so an origin can tell them from anyone
//! else's, routed by the region table (`shared_wasm::geo`), with failover for reads and
//! residency for writes.
//!
//! Health: a region that fails (no connection, timeout, 5xx) is marked unhealthy for
//! `REGION_UNHEALTHY_SECS` in one small KV record, so later requests try it last; a success
//! clears the mark. Marks are best effort (KV is eventually consistent and has no
//! compare-and-set), which only means a location may try a bad region once more.

use std::collections::BTreeMap;

use shared_wasm::edge_auth;
use shared_wasm::geo::Region;

use crate::config::{EdgeConfig, OriginSettings};
use crate::error::EdgeError;
use crate::platform::{ErrorSource, Platform, PlatformError, Request, Response, Retry};

/// Response header naming the region that answered.
pub const REGION_HEADER: &str = "x-edge-region";
/// Response header naming the region that failed first, when a read failed over.
pub const FAILOVER_HEADER: &str = "x-edge-failover";
/// KV key of the health marks (`kv-schemas/region_health.cddl`): region name → unhealthy until.
const HEALTH_KEY: &str = "region-health";

/// Where a request goes.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// The region nearest to the viewer of this request; idempotent GETs fail over once.
    Nearest(&'a Request),
    /// The user's home region (the JWT's `region`), or a healthy region of its residency
    /// group; never elsewhere, and never retried (the write may have happened).
    Home(Option<&'a str>),
}

type Health = BTreeMap<String, u64>;

async fn load_health<P: Platform>(p: &P) -> Health {
    match p.kv_get(HEALTH_KEY).await {
        Ok(Some(bytes)) => ciborium::from_reader(bytes.as_slice()).unwrap_or_default(),
        Ok(None) => Health::new(),
        Err(e) => {
            p.log_error(&format!("region health unreadable: {e}"));
            Health::new()
        }
    }
}

async fn set_health<P: Platform>(p: &P, o: &OriginSettings, region: &str, sick: bool) {
    let now = p.now().0;
    let mut health = load_health(p).await;
    health.retain(|_, until| *until > now);
    let changed = if sick {
        health
            .insert(region.to_owned(), now + o.unhealthy_secs)
            .is_none()
    } else {
        health.remove(region).is_some()
    };
    if !changed {
        return;
    }
    let mut bytes = Vec::new();
    ciborium::into_writer(&health, &mut bytes).expect("writing to a Vec cannot fail");
    if let Err(e) = p.kv_put(HEALTH_KEY, &bytes, Some(o.unhealthy_secs)).await {
        p.log_error(&format!("region health not saved: {e}"));
    }
}

/// Why an attempt at a region failed.
enum Failed {
    /// The region itself: no connection, a timeout (an upstream platform error), or
    /// 502/503/504. It is marked, and a read may try another (when `retry` says it may help).
    Region { why: String, retry: Retry },
    /// Not the region: the runtime refused what this code built, or a runtime service failed.
    /// Nothing is marked, and nothing is tried elsewhere.
    Here(PlatformError),
}

/// One attempt at one region. Only what says the region itself is down counts as its failure;
/// a 500 is the answer to that request (a client can cause one with its own input), relayed as
/// it is: it must not steer where others are sent.
async fn attempt<P: Platform>(
    p: &P,
    o: &OriginSettings,
    region: &Region,
    out: &Request,
) -> Result<Response, Failed> {
    let path = &out.url;
    let auth = edge_auth::sign(o.secret.expose(), &out.method, path, p.now());
    let mut req = out.clone();
    req.url = format!("{}{path}", region.origin);
    req.headers.push((edge_auth::HEADER.into(), auth));
    match p.fetch(req, o.timeout_ms).await {
        Ok(resp) if !matches!(resp.status, 502..=504) => Ok(resp),
        Ok(resp) => Err(Failed::Region {
            why: format!("answered {}", resp.status),
            retry: Retry::MayHelp,
        }),
        Err(e) if e.from == ErrorSource::Upstream => Err(Failed::Region {
            why: e.message,
            retry: e.retry,
        }),
        Err(e) => Err(Failed::Here(e)),
    }
}

/// Sends `out` (its `url` the path and query only) to the regions `target` names.
async fn send<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    target: Target<'_>,
    out: Request,
) -> Result<Response, EdgeError> {
    let (method, path) = (out.method.as_str(), out.url.as_str());
    let now = p.now().0;
    let health = load_health(p).await;
    let sick = |name: &str| health.get(name).is_some_and(|until| *until > now);
    let o = cfg.origin()?;
    let regions = &o.regions;
    let (candidates, retry) = match target {
        Target::Nearest(viewer) => (
            regions.for_read(viewer.country, viewer.continent, sick),
            method == "GET",
        ),
        Target::Home(home) => {
            let region = match (home, regions.all()) {
                // One region: it is everyone's home.
                (_, [only]) => only,
                (Some(name), _) => regions
                    .for_write(name, sick)
                    .ok_or(EdgeError::HomeRegionUnavailable)?,
                (None, _) => return Err(EdgeError::HomeRegionUnavailable),
            };
            (vec![region], false)
        }
    };
    let tries = if retry { 2 } else { 1 };
    let mut failed: Option<&Region> = None;
    for region in candidates.into_iter().take(tries) {
        match attempt(p, o, region, &out).await {
            Ok(mut resp) => {
                if sick(&region.name) {
                    set_health(p, o, &region.name, false).await;
                }
                resp.headers
                    .push((REGION_HEADER.into(), region.name.clone()));
                if let Some(f) = failed {
                    resp.headers.push((FAILOVER_HEADER.into(), f.name.clone()));
                }
                return Ok(resp);
            }
            Err(Failed::Here(e)) => return Err(EdgeError::Platform(e)),
            Err(Failed::Region { why, retry }) => {
                p.log_error(&format!("region {}: {method} {path}: {why}", region.name));
                set_health(p, o, &region.name, true).await;
                failed = Some(region);
                if retry == Retry::Pointless {
                    break;
                }
            }
        }
    }
    Err(match target {
        Target::Home(_) => EdgeError::HomeRegionUnavailable,
        Target::Nearest(_) => EdgeError::Upstream(format!("no region answered {method} {path}")),
    })
}

/// Copies the routing decision of an origin response onto a response the edge built.
pub fn copy_route_headers(from: &Response, to: &mut Response) {
    for name in [REGION_HEADER, FAILOVER_HEADER] {
        if let Some(v) = from.header(name) {
            to.headers.push((name.into(), v.to_owned()));
        }
    }
}

/// Longest `If-None-Match` or `ETag` passed between a client and the origin.
const MAX_VALIDATOR: usize = 256;

/// Forwards a client's JSON request (method, body, and its bearer token when the route takes
/// one) to `path` at the origin and relays the answer as it is: the origin's 4xx bodies already
/// speak the API's error shape.
pub async fn forward_json<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    target: Target<'_>,
    req: &Request,
    path: &str,
    authorization: Option<&str>,
) -> Result<Response, EdgeError> {
    let mut headers = vec![("content-type".into(), "application/json".into())];
    if let Some(a) = authorization {
        headers.push(("authorization".into(), a.to_owned()));
    }
    // The address the runtime reported (never a client's header): the origin's own login and
    // signup limits count by it.
    if let Some(ip) = &req.client_ip {
        headers.push(("x-edge-client-ip".into(), ip.clone()));
    }
    // A poll's validator (the notification list answers 304 to it); bounded, since it is the
    // client's.
    if let Some(tag) = req
        .header("if-none-match")
        .filter(|t| t.len() <= MAX_VALIDATOR)
    {
        headers.push(("if-none-match".into(), tag.to_owned()));
    }
    let out = Request {
        method: req.method.clone(),
        url: path.to_owned(),
        headers,
        body: req.body.clone(),
        ..Request::default()
    };
    let resp = send(p, cfg, target, out).await?;
    let content_type = resp
        .header("content-type")
        .unwrap_or("application/json")
        .to_owned();
    let mut out = Response::new(resp.status, &content_type, Vec::new())
        .with_header("cache-control", "no-store");
    copy_route_headers(&resp, &mut out);
    if let Some(tag) = resp.header("etag").filter(|t| t.len() <= MAX_VALIDATOR) {
        out.headers.push(("etag".into(), tag.to_owned()));
    }
    // A download (a statement's CSV) keeps its file name.
    if let Some(d) = resp
        .header("content-disposition")
        .filter(|d| d.len() <= MAX_VALIDATOR && d.starts_with("attachment"))
    {
        out.headers
            .push(("content-disposition".into(), d.to_owned()));
    }
    // The origin's few pages (an email's unsubscribe link) load nothing and post only back.
    if content_type.starts_with("text/html") {
        out.headers.push((
            "content-security-policy".into(),
            "default-src 'none'; form-action 'self'; frame-ancestors 'none'".into(),
        ));
    }
    out.body = resp.body;
    Ok(out)
}

/// POSTs `body` (JSON the edge composed) to `path` at `target`, once.
pub async fn post_json<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    target: Target<'_>,
    path: &str,
    body: Vec<u8>,
) -> Result<Response, EdgeError> {
    let out = Request {
        method: "POST".into(),
        url: path.to_owned(),
        headers: vec![("content-type".into(), "application/json".into())],
        body,
        ..Request::default()
    };
    send(p, cfg, target, out).await
}

/// GETs `path` (absolute path plus query) from the region nearest to `viewer`, failing over
/// once.
pub async fn get<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    viewer: &Request,
    path: &str,
) -> Result<Response, EdgeError> {
    get_with(p, cfg, viewer, path, Vec::new(), false).await
}

/// [`get`] with `headers`, and with the answer's body passed through
/// ([`Request::pass_through`]) when `pass_through`.
pub async fn get_with<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    viewer: &Request,
    path: &str,
    headers: Vec<(String, String)>,
    pass_through: bool,
) -> Result<Response, EdgeError> {
    let out = Request {
        method: "GET".into(),
        url: path.to_owned(),
        headers,
        pass_through,
        ..Request::default()
    };
    send(p, cfg, Target::Nearest(viewer), out).await
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::{get, FAILOVER_HEADER, HEALTH_KEY, REGION_HEADER};
    use crate::error::EdgeError;
    use crate::platform::{ErrorSource, PlatformError, Request, Response};
    use crate::testing::{block_on, config_with, MemPlatform};

    /// Two regions, tried in this order by a viewer whose location is unknown; the hosts the
    /// platform was asked for, in order.
    fn two_regions(
        answer: impl Fn(&str) -> Result<Response, PlatformError> + 'static,
    ) -> (MemPlatform, crate::EdgeConfig, Rc<RefCell<Vec<String>>>) {
        let cfg = config_with(&[(
            "REGIONS",
            r#"[{"name": "one", "origin": "http://one.test", "residency": "x"},
                {"name": "two", "origin": "http://two.test", "residency": "x"}]"#,
        )]);
        let asked = Rc::new(RefCell::new(Vec::new()));
        let noted = asked.clone();
        let p = MemPlatform::fallible(move |_, req| {
            let host = req.origin().trim_start_matches("http://").to_owned();
            noted.borrow_mut().push(host.clone());
            answer(&host)
        });
        (p, cfg, asked)
    }

    #[test]
    fn a_region_the_network_cannot_reach_is_marked_and_a_read_goes_to_the_next() {
        let (p, cfg, asked) = two_regions(|host| match host {
            "one.test" => Err(PlatformError::unreachable("connection refused")),
            _ => Ok(Response::new(200, "application/json", b"{}".to_vec())),
        });
        let resp = block_on(get(&p, &cfg, &Request::default(), "/x")).unwrap();
        assert_eq!(*asked.borrow(), ["one.test", "two.test"]);
        assert_eq!(resp.header(REGION_HEADER), Some("two"));
        assert_eq!(resp.header(FAILOVER_HEADER), Some("one"));
        assert!(p.kv.borrow().contains_key(HEALTH_KEY), "one is marked");
    }

    #[test]
    fn a_request_the_runtime_will_not_send_blames_no_region_and_goes_nowhere_else() {
        let (p, cfg, asked) = two_regions(|_| Err(PlatformError::bad_request("invalid header")));
        let err = block_on(get(&p, &cfg, &Request::default(), "/x")).unwrap_err();
        assert!(
            matches!(&err, EdgeError::Platform(e) if e.from == ErrorSource::Internal),
            "{err:?}"
        );
        assert_eq!(*asked.borrow(), ["one.test"], "not tried elsewhere");
        assert!(!p.kv.borrow().contains_key(HEALTH_KEY), "no region marked");
    }
}
