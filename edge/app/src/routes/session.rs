//! Browser sessions: the web app's refresh token lives in an `HttpOnly` cookie the edge sets,
//! never in the page's JavaScript, so a script injected into a page cannot steal a session that
//! outlives its access token. API clients keep the JSON form.
//!
//! A call opts in with `x-session: cookie` (a header a cross-site form cannot send, and that a
//! cross-site script could send only after a CORS preflight the edge never grants) and must
//! carry this site's own `Origin`. The edge then:
//! - login, signup: forwards as is; on success moves `refresh_token` out of the JSON into the
//!   cookie;
//! - refresh: reads the cookie (the body is ignored), forwards it as the JSON form, and sets the
//!   rotated token; a refused refresh clears the cookie;
//! - logout: forwards (bearer token as usual) and clears the cookie whatever the origin says.
//!
//! The cookie is `__Secure-` prefixed, `Secure; HttpOnly; SameSite=Strict`, and scoped to
//! `Path=/v1/auth` so no other request carries it (segments, feeds, other API calls).

use serde_json::Value;
use shared_wasm::jwt::Role;
use shared_wasm::ratelimit::Quota;

use crate::config::EdgeConfig;
use crate::error::{AccessRefusal, EdgeError};
use crate::platform::{Platform, Request, Response};
use crate::routes::api::{forward, Access};

/// The refresh cookie's name.
pub const COOKIE: &str = "__Secure-refresh";

/// The header value that asks for a cookie session.
const OPT_IN: (&str, &str) = ("x-session", "cookie");

/// Longest refresh token the edge reads from a cookie (`{id}.{secret}`, both base64url; the
/// origin refuses anything over 64 + 1 + 128).
const MAX_TOKEN: usize = 193;

/// The session calls that have a cookie form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `POST /v1/auth/login`.
    Login,
    /// `POST /v1/auth/signup`.
    Signup,
    /// `POST /v1/auth/refresh`.
    Refresh,
    /// `POST /v1/auth/logout`.
    Logout,
}

impl Action {
    /// The action of `/v1/auth/{name}`.
    pub fn from_path(name: &str) -> Option<Self> {
        Some(match name {
            "login" => Self::Login,
            "signup" => Self::Signup,
            "refresh" => Self::Refresh,
            "logout" => Self::Logout,
            _ => return None,
        })
    }
}

/// Whether the request asks for the cookie form.
pub fn wants_cookie(req: &Request) -> bool {
    req.header(OPT_IN.0)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(OPT_IN.1))
}

/// Handles a cookie-form session call (see the module's doc).
pub async fn handle<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    action: Action,
    quota: &Quota,
) -> Result<Response, EdgeError> {
    if req.method != "POST" {
        return Err(EdgeError::MethodNotAllowed);
    }
    same_origin(req)?;
    let path = match action {
        Action::Login => "/v1/auth/login",
        Action::Signup => "/v1/auth/signup",
        Action::Refresh => "/v1/auth/refresh",
        Action::Logout => "/v1/auth/logout",
    };
    if action == Action::Logout {
        let resp = forward(p, cfg, req, path, Access::Role(Role::User), quota).await;
        // Signed out in this browser whatever the origin said: the cookie goes either way.
        return Ok(match resp {
            Ok(r) => r,
            Err(e) => e.into_response(),
        }
        .with_header("set-cookie", clear_cookie()));
    }
    let mut fwd = req.clone();
    if action == Action::Refresh {
        let Some(token) = cookie_token(req) else {
            return Ok(EdgeError::Unauthorized(AccessRefusal::Missing)
                .into_response()
                .with_header("set-cookie", clear_cookie()));
        };
        fwd.body = serde_json::json!({ "refresh_token": token })
            .to_string()
            .into_bytes();
    }
    let resp = forward(p, cfg, &fwd, path, Access::Public, quota).await?;
    Ok(into_cookie(resp, action))
}

/// Refuses a call whose `Origin` is not this site's own (a cross-site request, or a client that
/// sends none: every browser sends it on a `POST`). Host and port are compared, not the
/// scheme: behind a TLS-terminating proxy the runtime may see `http` where the browser says
/// `https`; the cookie is `Secure`, so a plain-HTTP page never has it anyway.
fn same_origin(req: &Request) -> Result<(), EdgeError> {
    let authority = |o: &str| {
        o.strip_prefix("https://")
            .or_else(|| o.strip_prefix("http://"))
            .map(str::to_owned)
    };
    match (
        req.header("origin").and_then(authority),
        authority(req.origin()),
    ) {
        (Some(theirs), Some(ours)) if theirs.eq_ignore_ascii_case(&ours) => Ok(()),
        _ => Err(EdgeError::CrossOrigin),
    }
}

/// The refresh token from the request's `Cookie` header, if one well-formed is there.
fn cookie_token(req: &Request) -> Option<&str> {
    let header = req.header("cookie")?;
    let token = header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)?
        .1;
    let ok = !token.is_empty()
        && token.len() <= MAX_TOKEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then_some(token)
}

/// An origin's tokens answer, refresh token moved into the cookie; a refused refresh clears it.
fn into_cookie(mut resp: Response, action: Action) -> Response {
    if !(200..300).contains(&resp.status) {
        if action == Action::Refresh && resp.status == 401 {
            return resp.with_header("set-cookie", clear_cookie());
        }
        return resp;
    }
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&resp.body) else {
        return EdgeError::Upstream("tokens answer is not a JSON object".into()).into_response();
    };
    let token = body.remove("refresh_token");
    let max_age = body.get("refresh_expires_in").and_then(Value::as_u64);
    let (Some(Value::String(token)), Some(max_age)) = (token, max_age) else {
        return EdgeError::Upstream("tokens answer lacks the refresh token".into()).into_response();
    };
    resp.body = Value::Object(body).to_string().into_bytes();
    resp.with_header("set-cookie", set_cookie(&token, max_age))
}

fn set_cookie(token: &str, max_age: u64) -> String {
    format!("{COOKIE}={token}; Max-Age={max_age}; Path=/v1/auth; Secure; HttpOnly; SameSite=Strict")
}

fn clear_cookie() -> String {
    format!("{COOKIE}=; Max-Age=0; Path=/v1/auth; Secure; HttpOnly; SameSite=Strict")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Request;

    fn req(headers: &[(&str, &str)]) -> Request {
        Request {
            method: "POST".into(),
            url: "https://video.example/v1/auth/refresh".into(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            ..Request::default()
        }
    }

    #[test]
    fn origin_must_be_this_site() {
        assert!(same_origin(&req(&[("origin", "https://video.example")])).is_ok());
        // TLS ended in front of the runtime: the scheme may differ, the host may not.
        assert!(same_origin(&req(&[("origin", "http://Video.Example")])).is_ok());
        for bad in [
            "https://evil.example",
            "https://video.example:8443",
            "https://video.example.evil.example",
            "https://video.example/",
            "ftp://video.example",
            "null",
        ] {
            assert!(matches!(
                same_origin(&req(&[("origin", bad)])),
                Err(EdgeError::CrossOrigin)
            ));
        }
        assert!(same_origin(&req(&[])).is_err(), "no Origin is refused");
    }

    #[test]
    fn cookie_token_is_read_only_when_well_formed() {
        let ok = req(&[("cookie", "a=b; __Secure-refresh=abc_-.DEF; c=d")]);
        assert_eq!(cookie_token(&ok), Some("abc_-.DEF"));
        let hostile = [
            "__Secure-refresh=",
            "__Secure-refresh=a b",
            "__Secure-refresh=a\"b",
            "refresh=abc",
            "x__Secure-refresh=abc",
        ];
        for c in hostile {
            assert_eq!(cookie_token(&req(&[("cookie", c)])), None, "{c}");
        }
        let long = format!("__Secure-refresh={}", "a".repeat(MAX_TOKEN + 1));
        assert_eq!(cookie_token(&req(&[("cookie", &long)])), None);
        assert_eq!(cookie_token(&req(&[])), None);
    }

    #[test]
    fn tokens_answer_loses_its_refresh_token_to_the_cookie() {
        let body = br#"{"access_token":"A","token_type":"Bearer","expires_in":900,"refresh_token":"s.t","refresh_expires_in":3600}"#;
        let resp = into_cookie(
            Response::new(200, "application/json", body.to_vec()),
            Action::Login,
        );
        let json: Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(json["access_token"], "A");
        assert!(json.get("refresh_token").is_none());
        assert_eq!(
            resp.header("set-cookie"),
            Some("__Secure-refresh=s.t; Max-Age=3600; Path=/v1/auth; Secure; HttpOnly; SameSite=Strict")
        );
    }

    #[test]
    fn refused_refresh_clears_the_cookie_and_other_refusals_pass_through() {
        let refused = Response::new(401, "application/json", b"{}".to_vec());
        let resp = into_cookie(refused.clone(), Action::Refresh);
        assert!(resp.header("set-cookie").unwrap().contains("Max-Age=0"));
        let resp = into_cookie(refused, Action::Login);
        assert_eq!(resp.header("set-cookie"), None);
    }

    #[test]
    fn opt_in_header() {
        assert!(wants_cookie(&req(&[("x-session", "cookie")])));
        assert!(!wants_cookie(&req(&[("x-session", "json")])));
        assert!(!wants_cookie(&req(&[])));
    }
}
