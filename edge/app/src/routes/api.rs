//! JSON API routes the edge forwards to the origin after its own checks: the route's role, the
//! route class's quota, and a body size cap. The origin checks the token again (defence in
//! depth); the edge's check spares it the traffic and applies revocation at the edge.

use shared_wasm::jwt::Role;
use shared_wasm::ratelimit::Quota;

use crate::auth;
use crate::config::EdgeConfig;
use crate::error::EdgeError;
use crate::limits;
use crate::origin::{self, Target};
use crate::platform::{Platform, Request, Response};

/// Largest request body the edge forwards (JSON writes such as login).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Who may call a forwarded route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (login, refresh): no token is read, and none is forwarded.
    Public,
    /// Anyone, and a token when one is presented: it is checked and forwarded, since the answer
    /// depends on who asks (a private video's comments, to its owner).
    Optional,
    /// A valid, unrevoked token of at least this role.
    Role(Role),
}

/// Checks and forwards `req` to `path` at the origin.
pub async fn forward<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    path: &str,
    access: Access,
    quota: &Quota,
) -> Result<Response, EdgeError> {
    if req.body.len() > MAX_BODY_BYTES {
        return Err(EdgeError::PayloadTooLarge);
    }
    // Anonymous calls go to the nearest region; a user's calls go to their home region (data
    // residency), whatever region is nearest.
    let claims = match access {
        Access::Public => None,
        Access::Optional => auth::bearer(p, cfg, req).await?,
        Access::Role(role) => Some(auth::require(p, cfg, req, role).await?),
    };
    let user = claims.as_ref().map(|c| c.sub.as_str());
    // Its destination's settings before the quota: a broken one refuses without spending a slot.
    cfg.origin()?;
    let allowed = limits::enforce(p, quota, req, user).await?;
    let (target, authorization) = match &claims {
        None => (Target::Nearest(req), None),
        Some(c) => (
            Target::Home(c.region.as_deref()),
            req.header("authorization"),
        ),
    };
    let resp = origin::forward_json(p, cfg, target, req, path, authorization).await?;
    Ok(allowed.annotate(resp))
}

/// A path segment the edge will put into an origin path: an id, never `..`, `/` or `%`.
pub fn id_segment(s: &str) -> Result<&str, EdgeError> {
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(s)
    } else {
        Err(EdgeError::BadRequest {
            code: "invalid_id",
            message: "ids are 1 to 64 letters, digits, '-' or '_'".into(),
        })
    }
}

/// Longest `q` of the admin's user search: the longest email address.
const MAX_USER_QUERY: usize = 254;

/// `/v1/admin/users?q=…` with `q` alone, re-encoded: the admin's user search sends the origin
/// nothing else, and nothing unbounded.
fn user_query(req: &Request) -> Result<String, EdgeError> {
    let query = req.url.split_once('?').map_or("", |(_, q)| q);
    let mut q = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "q" if q.is_none() => q = Some(v.trim().to_owned()),
            _ => {
                return Err(EdgeError::BadRequest {
                    code: "invalid_query",
                    message: "the user search takes one q".into(),
                })
            }
        }
    }
    match q {
        Some(q) if !q.is_empty() && q.chars().count() <= MAX_USER_QUERY => {
            let q: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
            Ok(format!("/v1/admin/users?q={q}"))
        }
        _ => Err(EdgeError::BadRequest {
            code: "invalid_query",
            message: format!("q is an id or part of an email, 1 to {MAX_USER_QUERY} characters"),
        }),
    }
}

/// `{path}?before=…` with `before` alone (a position in a list newest first), or nothing: the
/// moderation log and the notification list.
fn before_query(req: &Request, path: &str) -> Result<String, EdgeError> {
    let query = req.url.split_once('?').map_or("", |(_, q)| q);
    let mut before = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let digits = !v.is_empty() && v.len() <= 18 && v.bytes().all(|b| b.is_ascii_digit());
        match &*k {
            "before" if before.is_none() && digits => before = Some(v.into_owned()),
            _ => {
                return Err(EdgeError::BadRequest {
                    code: "invalid_query",
                    message: "this list takes one before, a position in it".into(),
                })
            }
        }
    }
    Ok(match before {
        Some(b) => format!("{path}?before={b}"),
        None => path.into(),
    })
}

/// `{path}` with at most one each of `from` and `to` (unix seconds) and `video`.
fn stats_query(req: &Request, path: &str) -> Result<String, EdgeError> {
    let query = req.url.split_once('?').map_or("", |(_, q)| q);
    let mut kept: Vec<(&str, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let seconds = !v.is_empty() && v.len() <= 12 && v.bytes().all(|b| b.is_ascii_digit());
        let name = match &*k {
            "from" if seconds => "from",
            "to" if seconds => "to",
            "video" if id_segment(&v).is_ok() => "video",
            _ => "",
        };
        if name.is_empty() || kept.iter().any(|(n, _)| *n == name) {
            return Err(EdgeError::BadRequest {
                code: "invalid_query",
                message: "the statistics take from and to (unix seconds) and a video id, once each"
                    .into(),
            });
        }
        kept.push((name, v.into_owned()));
    }
    let query: Vec<String> = kept.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Ok(match query.is_empty() {
        true => path.into(),
        false => format!("{path}?{}", query.join("&")),
    })
}

/// Longest token of a link in an email: the origin's bound (`notifications::unsubscribe` and
/// `notifications::confirm`, `MAX_TOKEN`).
const MAX_LINK_TOKEN: usize = 200;

/// `{path}?t=…` with one `t` of base64url and a dot, nothing else: the links in emails
/// (unsubscribe, address confirmation).
fn token_query(req: &Request, path: &str) -> Result<String, EdgeError> {
    let query = req.url.split_once('?').map_or("", |(_, q)| q);
    let mut token = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let ok = (1..=MAX_LINK_TOKEN).contains(&v.len())
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        match &*k {
            "t" if token.is_none() && ok => token = Some(v.into_owned()),
            _ => return Err(bad_token()),
        }
    }
    token.map(|t| format!("{path}?t={t}")).ok_or_else(bad_token)
}

fn bad_token() -> EdgeError {
    EdgeError::BadRequest {
        code: "invalid_token",
        message: "this link is not valid; see your account".into(),
    }
}

/// Which quota a forwarded route counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Login, refresh, signup.
    Login,
    /// Everything else.
    Api,
}

/// A forwarded route, resolved: who may call it, its quota, and the origin path.
pub struct Forward {
    /// Access rule.
    pub access: Access,
    /// Quota class.
    pub class: Class,
    /// Origin path (ids checked), with the canonical query where the route pages.
    pub path: String,
}

/// The JSON API routes the edge forwards. `None`: not one of them; `Some(Err)`: a known path
/// with a wrong method or a bad id.
pub fn resolve(
    cfg: &EdgeConfig,
    req: &Request,
    segs: &[&str],
) -> Option<Result<Forward, EdgeError>> {
    use Access::{Optional, Public, Role as R};
    let m = req.method.as_str();
    let (user, creator, admin) = (R(Role::User), R(Role::Creator), R(Role::Admin));
    let moderator = R(Role::Moderator);
    let id = |s: &str| id_segment(s).map(str::to_owned);
    let route: (&[&str], Access, Class, Result<String, EdgeError>) = match segs {
        ["v1", "auth", a @ ("login" | "refresh" | "signup")] => {
            (&["POST"], Public, Class::Login, Ok(format!("/v1/auth/{a}")))
        }
        ["v1", "auth", "logout"] => (&["POST"], user, Class::Api, Ok("/v1/auth/logout".into())),
        ["v1", "me"] => (
            &["GET", "PATCH", "DELETE"],
            user,
            Class::Api,
            Ok("/v1/me".into()),
        ),
        ["v1", "me", "subscriptions"] => (
            &["GET"],
            user,
            Class::Api,
            Ok("/v1/me/subscriptions".into()),
        ),
        // Notifications: one's own list, marks and preferences; the emails' unsubscribe link
        // works signed out (its token is the proof, checked by the origin).
        ["v1", "me", "notifications"] => (
            &["GET"],
            user,
            Class::Api,
            before_query(req, "/v1/me/notifications"),
        ),
        ["v1", "me", "notifications", "read"] => (
            &["POST"],
            user,
            Class::Api,
            Ok("/v1/me/notifications/read".into()),
        ),
        ["v1", "me", "notification-preferences"] => (
            &["GET", "PUT"],
            user,
            Class::Api,
            Ok("/v1/me/notification-preferences".into()),
        ),
        ["v1", "notifications", "unsubscribe"] => (
            &["GET", "POST"],
            Public,
            Class::Api,
            token_query(req, "/v1/notifications/unsubscribe"),
        ),
        // Confirming one's address: the link is asked for signed in and followed signed out.
        ["v1", "me", "email", "confirm"] => (
            &["POST"],
            user,
            Class::Api,
            Ok("/v1/me/email/confirm".into()),
        ),
        ["v1", "auth", "confirm-email"] => (
            &["GET", "POST"],
            Public,
            Class::Api,
            token_query(req, "/v1/auth/confirm-email"),
        ),
        ["v1", "creator", "videos"] => (
            &["GET"],
            creator,
            Class::Api,
            Ok("/v1/creator/videos".into()),
        ),
        ["v1", "creator", "stats"] => (
            &["GET"],
            creator,
            Class::Api,
            stats_query(req, "/v1/creator/stats"),
        ),
        ["v1", "admin", "stats"] => (
            &["GET"],
            admin,
            Class::Api,
            stats_query(req, "/v1/admin/stats"),
        ),
        ["v1", "admin", "users"] => (&["GET"], admin, Class::Api, user_query(req)),
        ["v1", "creator", "earnings"] => (
            &["GET"],
            creator,
            Class::Api,
            Ok("/v1/creator/earnings".into()),
        ),
        ["v1", "creator", "earnings", m] => (
            &["GET"],
            creator,
            Class::Api,
            id(m).map(|m| format!("/v1/creator/earnings/{m}")),
        ),
        ["v1", "creator", "earnings", m, "csv"] => (
            &["GET"],
            creator,
            Class::Api,
            id(m).map(|m| format!("/v1/creator/earnings/{m}/csv")),
        ),
        ["v1", "admin", "earnings", m] => (
            &["GET"],
            admin,
            Class::Api,
            id(m).map(|m| format!("/v1/admin/earnings/{m}")),
        ),
        ["v1", "admin", "earnings", m, "close"] => (
            &["POST"],
            admin,
            Class::Api,
            id(m).map(|m| format!("/v1/admin/earnings/{m}/close")),
        ),
        ["v1", "ads", "campaigns"] => (
            &["GET", "POST"],
            admin,
            Class::Api,
            Ok("/v1/ads/campaigns".into()),
        ),
        ["v1", "ads", "campaigns", c] => (
            &["GET", "PATCH"],
            admin,
            Class::Api,
            id(c).map(|c| format!("/v1/ads/campaigns/{c}")),
        ),
        ["v1", "admin", "users", u, a @ ("role" | "revoke")] => (
            &["POST"],
            admin,
            Class::Api,
            id(u).map(|u| format!("/v1/admin/users/{u}/{a}")),
        ),
        ["v1", "videos"] => (&["POST"], creator, Class::Api, Ok("/v1/videos".into())),
        // Anyone reads a video's details (its owner sees it unfinished, hence the token);
        // its creator changes it.
        ["v1", "videos", v] => (
            &["GET", "PATCH", "DELETE"],
            if m == "GET" { Optional } else { creator },
            Class::Api,
            id(v).map(|v| format!("/v1/videos/{v}")),
        ),
        // Anyone may read comments, as the video's rules allow (a members video's need the
        // viewer's token); writing one needs a login.
        ["v1", "videos", v, "comments"] => (
            &["GET", "POST"],
            if m == "GET" { Optional } else { user },
            Class::Api,
            id(v).and_then(|v| {
                let query = if m == "GET" {
                    crate::routes::feeds::canonical_query(cfg, req)?
                } else {
                    String::new()
                };
                Ok(format!("/v1/videos/{v}/comments{query}"))
            }),
        ),
        // The ticket is signed at the creator's home region; the file goes straight there.
        ["v1", "videos", v, "upload"] => (
            &["POST"],
            creator,
            Class::Api,
            id(v).map(|v| format!("/v1/videos/{v}/upload")),
        ),
        ["v1", "videos", v, "transcode"] => (
            &["GET"],
            creator,
            Class::Api,
            id(v).map(|v| format!("/v1/videos/{v}/transcode")),
        ),
        ["v1", "videos", v, "reaction"] => (
            &["PUT"],
            user,
            Class::Api,
            id(v).map(|v| format!("/v1/videos/{v}/reaction")),
        ),
        ["v1", "comments", c] => (
            &["PATCH", "DELETE"],
            user,
            Class::Api,
            id(c).map(|c| format!("/v1/comments/{c}")),
        ),
        ["v1", "comments", c, "reaction"] => (
            &["PUT"],
            user,
            Class::Api,
            id(c).map(|c| format!("/v1/comments/{c}/reaction")),
        ),
        ["v1", "billing", "checkout"] => (
            &["POST"],
            user,
            Class::Api,
            Ok("/v1/billing/checkout".into()),
        ),
        ["v1", "channels"] => (&["POST"], creator, Class::Api, Ok("/v1/channels".into())),
        // Anyone may look at a channel; its owner (or an admin) changes it.
        ["v1", "channels", c] => (
            &["GET", "PATCH", "DELETE"],
            if m == "GET" { Public } else { creator },
            Class::Api,
            id(c).map(|c| format!("/v1/channels/{c}")),
        ),
        ["v1", "users", u] => (
            &["GET"],
            Public,
            Class::Api,
            id(u).map(|u| format!("/v1/users/{u}")),
        ),
        ["v1", "users", u, "channels"] => (
            &["GET"],
            Public,
            Class::Api,
            id(u).map(|u| format!("/v1/users/{u}/channels")),
        ),
        // Moderation: anyone signed in reports; moderators work the queue; admins read the log.
        ["v1", "reports"] => (&["POST"], user, Class::Api, Ok("/v1/reports".into())),
        ["v1", "moderation", "queue"] => (
            &["GET"],
            moderator,
            Class::Api,
            Ok("/v1/moderation/queue".into()),
        ),
        ["v1", "moderation", "actions"] => (
            &["POST"],
            moderator,
            Class::Api,
            Ok("/v1/moderation/actions".into()),
        ),
        ["v1", "moderation", "log"] => (
            &["GET"],
            admin,
            Class::Api,
            before_query(req, "/v1/moderation/log"),
        ),
        // Integrators' webhook endpoints: their owner's alone (the origin answers 404 to
        // anyone else).
        ["v1", "webhooks"] => (
            &["GET", "POST"],
            creator,
            Class::Api,
            Ok("/v1/webhooks".into()),
        ),
        ["v1", "webhooks", w] => (
            &["GET", "PATCH", "DELETE"],
            creator,
            Class::Api,
            id(w).map(|w| format!("/v1/webhooks/{w}")),
        ),
        ["v1", "webhooks", w, "rotate"] => (
            &["POST"],
            creator,
            Class::Api,
            id(w).map(|w| format!("/v1/webhooks/{w}/rotate")),
        ),
        ["v1", "webhooks", w, "deliveries"] => (
            &["GET"],
            creator,
            Class::Api,
            id(w).map(|w| format!("/v1/webhooks/{w}/deliveries")),
        ),
        ["v1", "webhooks", w, "deliveries", e, "retry"] => (
            &["POST"],
            creator,
            Class::Api,
            id(w).and_then(|w| Ok(format!("/v1/webhooks/{w}/deliveries/{}/retry", id(e)?))),
        ),
        ["v1", "channels", c, "subscription"] => (
            &["PUT", "DELETE"],
            user,
            Class::Api,
            id(c).map(|c| format!("/v1/channels/{c}/subscription")),
        ),
        _ => return None,
    };
    let (methods, access, class, path) = route;
    if !methods.contains(&m) {
        return Some(Err(EdgeError::MethodNotAllowed));
    }
    Some(path.map(|path| Forward {
        access,
        class,
        path,
    }))
}

#[cfg(test)]
mod tests {
    use super::{before_query, token_query, user_query};
    use crate::error::EdgeError;
    use crate::platform::Request;

    fn query(q: &str) -> Result<String, EdgeError> {
        user_query(&Request {
            url: format!("https://edge.example/v1/admin/users{q}"),
            ..Request::default()
        })
    }

    #[test]
    fn the_user_search_forwards_one_bounded_q_re_encoded() {
        assert_eq!(
            query("?q=+Ada%40Example.com+").unwrap(),
            "/v1/admin/users?q=Ada%40Example.com"
        );
        assert_eq!(
            query("?q=a%26b%3Dc").unwrap(),
            "/v1/admin/users?q=a%26b%3Dc"
        );
        let longest = "é".repeat(254);
        assert!(query(&format!("?q={longest}")).is_ok());
        for bad in [
            "",
            "?q=",
            "?q=+++",
            "?q=a&q=b",
            "?q=a&limit=5000",
            "?cursor=x",
            &format!("?q={}", "é".repeat(255)),
        ] {
            let e = query(bad).unwrap_err();
            assert!(
                matches!(
                    e,
                    EdgeError::BadRequest {
                        code: "invalid_query",
                        ..
                    }
                ),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn the_moderation_log_forwards_one_numeric_before_or_nothing() {
        let log = |q: &str| {
            before_query(
                &Request {
                    url: format!("https://edge.example/v1/moderation/log{q}"),
                    ..Request::default()
                },
                "/v1/moderation/log",
            )
        };
        assert_eq!(log("").unwrap(), "/v1/moderation/log");
        assert_eq!(log("?before=42").unwrap(), "/v1/moderation/log?before=42");
        for bad in [
            "?before=",
            "?before=-1",
            "?before=4%202",
            "?before=1&before=2",
            "?before=1&limit=9",
            "?before=1234567890123456789",
        ] {
            assert!(log(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn links_in_emails_forward_one_token_of_its_alphabet() {
        let link = |q: &str| {
            token_query(
                &Request {
                    url: format!("https://edge.example/v1/notifications/unsubscribe{q}"),
                    ..Request::default()
                },
                "/v1/notifications/unsubscribe",
            )
        };
        assert_eq!(
            link("?t=dV9hZGE6YWxs.q83vEjRWeJ-_").unwrap(),
            "/v1/notifications/unsubscribe?t=dV9hZGE6YWxs.q83vEjRWeJ-_"
        );
        for bad in [
            "",
            "?t=",
            "?t=a&t=b",
            "?t=a&x=1",
            "?t=a%2Fb",
            "?t=a+b",
            "?t=a%26next%3D1",
            &format!("?t={}", "a".repeat(201)),
        ] {
            let e = link(bad).unwrap_err();
            assert!(
                matches!(
                    e,
                    EdgeError::BadRequest {
                        code: "invalid_token",
                        ..
                    }
                ),
                "{bad}: {e:?}"
            );
        }
    }
}
