//! The edge's errors and their one mapping to HTTP.
//!
//! 4xx bodies say what the client did wrong, in one JSON shape: `{"error": code, "message": text}`
//! (plus `reason` where a client can act on it). 5xx bodies say nothing about internals; the
//! cause goes to the runtime's log.

use serde_json::json;
use shared_wasm::jwt::{JwtError, Role};
use shared_wasm::playback::TokenError;
use shared_wasm::ratelimit::{Decision, Quota};
use thiserror::Error;

use crate::platform::{PlatformError, Response};

/// Realm named in `WWW-Authenticate`.
pub const REALM: &str = "edge-video";

/// Everything a request can fail with.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EdgeError {
    /// No such route or resource.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The method is not served on this path.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request is malformed; `code` is stable, `message` human.
    #[error("{message}")]
    BadRequest {
        /// Stable machine-readable code.
        code: &'static str,
        /// What was wrong.
        message: String,
    },
    /// A login is required or the presented token is not acceptable (RFC 6750).
    #[error("unauthorized: {0:?}")]
    Unauthorized(AccessRefusal),
    /// A playback token was refused, or could not be issued as the policy wants.
    #[error("forbidden: {0:?}")]
    Forbidden(PlaybackRefusal),
    /// The token is valid but its role does not reach the route's.
    #[error("role {0:?} required")]
    RoleRequired(Role),
    /// A `members` video and no active entitlement.
    #[error("entitlement required")]
    EntitlementRequired,
    /// An origin-to-edge sync request was refused (credentials, replay).
    #[error("sync refused: {0}")]
    SyncRefused(&'static str),
    /// Over a route-class quota.
    #[error("rate limited ({})", quota.name)]
    RateLimited {
        /// The quota that refused.
        quota: Quota,
        /// The refusal, with its retry time.
        decision: Decision,
    },
    /// Not playable here or at all for legal or policy reasons (RFC 7725).
    #[error("unavailable: {0:?}")]
    Unavailable(LegalReason),
    /// A browser-session call (the refresh cookie's) without this site's own `Origin`.
    #[error("cross-origin session call")]
    CrossOrigin,
    /// The request body is larger than the edge forwards.
    #[error("payload too large")]
    PayloadTooLarge,
    /// A byte range that does not overlap the media file; its length when known (416, RFC 9110
    /// §15.5.17).
    #[error("range not satisfiable")]
    RangeNotSatisfiable(Option<u64>),
    /// The video exists but cannot be played yet.
    #[error("video is not ready")]
    NotReady,
    /// The user's home region (and its residency group) cannot take the write; it is not sent
    /// anywhere else.
    #[error("home region unavailable")]
    HomeRegionUnavailable,
    /// The origin failed or answered nonsense.
    #[error("upstream: {0}")]
    Upstream(String),
    /// A runtime facility failed.
    #[error("platform: {0}")]
    Platform(#[from] PlatformError),
    /// A bug or broken configuration.
    #[error("internal: {0}")]
    Internal(String),
}

/// A section of the settings that cannot be read (see [`crate::EdgeConfig`]): the request fails
/// as a broken deployment (500, and the log names the setting, never its value).
impl From<&crate::ConfigError> for EdgeError {
    fn from(e: &crate::ConfigError) -> Self {
        Self::Internal(format!("configuration: {e}"))
    }
}

/// Why a request has no acceptable access token (401).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccessRefusal {
    /// No credentials at all: the route needs a login.
    Missing,
    /// An `Authorization` header that is not `Bearer …`.
    NotBearer,
    /// The token failed the JWT policy (the whole reason stays here; the client is told
    /// [`JwtError::public_reason`]).
    Token(JwtError),
    /// The token's session, or every token of its user before a point in time, was revoked.
    Revoked,
}

impl AccessRefusal {
    /// The `error_description` a client is given; `None` when it presented nothing.
    pub fn description(&self) -> Option<&'static str> {
        match self {
            Self::Missing => None,
            Self::NotBearer => Some("expected a Bearer token"),
            Self::Token(e) => Some(e.public_reason()),
            Self::Revoked => Some("token revoked"),
        }
    }
}

/// Why a playback token was refused, or could not be issued (403).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlaybackRefusal {
    /// The token failed its check (the whole reason stays here; forged, malformed and
    /// unknown-key tokens share one public reason, see [`TokenError::public_reason`]).
    Token(TokenError),
    /// Tokens are bound to the viewer's country here, and the runtime reported none.
    CountryUnknown,
    /// A members or private video's poster asked for without one (`/posters/{id}.jpg`).
    TokenRequired,
}

impl PlaybackRefusal {
    /// The stable `reason` of the answer.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Token(e) => e.public_reason(),
            Self::CountryUnknown => "country_unknown",
            Self::TokenRequired => "playback_token_required",
        }
    }

    fn message(&self) -> &'static str {
        match self {
            Self::Token(TokenError::Expired) => {
                "playback token expired; request a new playback URL"
            }
            Self::Token(TokenError::WrongPath) => "playback token does not cover this path",
            Self::Token(TokenError::NotYetValid) => "playback token is not valid yet",
            Self::Token(TokenError::NetworkMismatch) => {
                "playback token is bound to another network"
            }
            Self::Token(TokenError::CountryMismatch) => {
                "playback token is bound to another country"
            }
            Self::CountryUnknown => {
                "playback tokens here are bound to the viewer's country, which is not known \
                 for this request"
            }
            Self::TokenRequired => {
                "this video's poster is for its viewers: use the playback URL's poster.jpg"
            }
            Self::Token(_) => "playback token invalid",
        }
    }
}

/// Why a video is withheld for a legal or policy reason (451, RFC 7725).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LegalReason {
    /// The video's country rule excludes the viewer's country (or an unknown one).
    CountryBlocked,
    /// The video was taken down.
    TakenDown,
}

impl LegalReason {
    /// The stable `reason` of the answer.
    pub fn code(self) -> &'static str {
        match self {
            Self::CountryBlocked => "country_blocked",
            Self::TakenDown => "taken_down",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::CountryBlocked => "this video is not available in your country",
            Self::TakenDown => "this video has been taken down",
        }
    }
}

fn json_body(status: u16, body: serde_json::Value) -> Response {
    Response::new(status, "application/json", body.to_string().into_bytes())
        .with_header("cache-control", "no-store")
}

impl EdgeError {
    /// Whether the cause must be logged (server-side faults).
    pub fn is_server_fault(&self) -> bool {
        matches!(
            self,
            Self::Upstream(_) | Self::HomeRegionUnavailable | Self::Platform(_) | Self::Internal(_)
        )
    }

    /// The response for this error.
    pub fn into_response(self) -> Response {
        match self {
            Self::NotFound(what) => json_body(
                404,
                json!({"error": "not_found", "message": format!("{what} not found")}),
            ),
            Self::MethodNotAllowed => json_body(
                405,
                json!({"error": "method_not_allowed", "message": "method not allowed on this path"}),
            ),
            Self::BadRequest { code, message } => {
                json_body(400, json!({"error": code, "message": message}))
            }
            Self::Unauthorized(refusal) => {
                let reason = refusal.description();
                let challenge = match reason {
                    None => format!("Bearer realm=\"{REALM}\""),
                    Some(r) => format!(
                        "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{r}\""
                    ),
                };
                json_body(
                    401,
                    json!({
                        "error": "unauthorized",
                        "message": reason.unwrap_or("login required"),
                    }),
                )
                .with_header("www-authenticate", challenge)
            }
            Self::Forbidden(refusal) => json_body(
                403,
                json!({
                    "error": "forbidden",
                    "reason": refusal.code(),
                    "message": refusal.message(),
                }),
            ),
            Self::RoleRequired(role) => {
                let name = match role {
                    Role::User => "user",
                    Role::Creator => "creator",
                    Role::Moderator => "moderator",
                    Role::Admin => "admin",
                };
                json_body(
                    403,
                    json!({
                        "error": "forbidden",
                        "reason": "role_required",
                        "message": format!("this route needs the {name} role"),
                    }),
                )
            }
            Self::EntitlementRequired => json_body(
                403,
                json!({
                    "error": "forbidden",
                    "reason": "entitlement_required",
                    "message": "this video needs an active membership",
                }),
            ),
            Self::SyncRefused(reason) => json_body(
                401,
                json!({"error": "sync_refused", "reason": reason, "message": "sync request refused"}),
            ),
            Self::RateLimited { quota, decision } => json_body(
                429,
                json!({
                    "error": "rate_limited",
                    "message": format!("too many {} requests; retry later", quota.name),
                    "retry_after": decision.retry_after_secs,
                }),
            )
            .with_header("retry-after", decision.retry_after_secs.to_string())
            .with_header("ratelimit-policy", quota.policy_header())
            .with_header("ratelimit", decision.header(&quota)),
            Self::Unavailable(reason) => json_body(
                451,
                json!({
                    "error": "unavailable_for_legal_reasons",
                    "reason": reason.code(),
                    "message": reason.message(),
                }),
            ),
            Self::CrossOrigin => json_body(
                403,
                json!({
                    "error": "forbidden",
                    "reason": "cross_origin",
                    "message": "session calls with the browser's cookie must come from this site's own pages (Origin)",
                }),
            ),
            Self::PayloadTooLarge => json_body(
                413,
                json!({"error": "payload_too_large", "message": "request body is too large"}),
            ),
            Self::RangeNotSatisfiable(len) => {
                let resp = json_body(
                    416,
                    json!({
                        "error": "range_not_satisfiable",
                        "message": "the range asked for is outside the file",
                    }),
                );
                match len {
                    Some(len) => {
                        resp.with_header("content-range", shared_wasm::range::unsatisfied(len))
                    }
                    None => resp,
                }
            }
            Self::NotReady => json_body(
                409,
                json!({"error": "not_ready", "message": "video is not ready for playback"}),
            ),
            Self::HomeRegionUnavailable => json_body(
                503,
                json!({
                    "error": "home_region_unavailable",
                    "message": "your data's home region cannot be reached; retry later",
                }),
            )
            .with_header("retry-after", "30"),
            Self::Upstream(_) => json_body(
                502,
                json!({"error": "bad_gateway", "message": "origin unavailable"}),
            ),
            Self::Platform(_) | Self::Internal(_) => json_body(
                500,
                json!({"error": "internal", "message": "internal error"}),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use shared_wasm::jwt::JwtError;
    use shared_wasm::playback::TokenError;

    use super::{AccessRefusal, EdgeError, LegalReason, PlaybackRefusal};

    fn answer(e: EdgeError) -> (u16, Value, Option<String>) {
        let r = e.into_response();
        let challenge = r.header("www-authenticate").map(str::to_owned);
        (
            r.status,
            serde_json::from_slice(&r.body).unwrap(),
            challenge,
        )
    }

    #[test]
    fn refusals_keep_their_detail_and_answer_only_the_public_part() {
        // Forged, malformed and unknown-key tokens look alike to the client.
        for e in [
            TokenError::BadSignature,
            TokenError::UnknownKey,
            TokenError::Malformed,
        ] {
            let (status, body, _) = answer(EdgeError::Forbidden(PlaybackRefusal::Token(e)));
            assert_eq!((status, &body["reason"]), (403, &"invalid".into()));
        }
        let (_, body, _) = answer(EdgeError::Forbidden(PlaybackRefusal::Token(
            TokenError::Expired,
        )));
        assert_eq!(body["reason"], "expired");
        let (_, body, _) = answer(EdgeError::Forbidden(PlaybackRefusal::CountryUnknown));
        assert_eq!(body["reason"], "country_unknown");

        let (status, body, challenge) = answer(EdgeError::Unauthorized(AccessRefusal::Missing));
        assert_eq!((status, &body["message"]), (401, &"login required".into()));
        assert_eq!(challenge.as_deref(), Some("Bearer realm=\"edge-video\""));
        let (_, _, challenge) = answer(EdgeError::Unauthorized(AccessRefusal::Token(
            JwtError::Expired,
        )));
        assert!(challenge
            .unwrap()
            .ends_with("error_description=\"token expired\""));
        let (_, body, _) = answer(EdgeError::Unauthorized(AccessRefusal::Revoked));
        assert_eq!(body["message"], "token revoked");

        for (reason, code) in [
            (LegalReason::TakenDown, "taken_down"),
            (LegalReason::CountryBlocked, "country_blocked"),
        ] {
            let (status, body, _) = answer(EdgeError::Unavailable(reason));
            assert_eq!((status, &body["reason"]), (451, &code.into()));
        }
    }
}
