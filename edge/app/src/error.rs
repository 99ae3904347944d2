//! The edge's errors and their one mapping to HTTP.
//!
//! 4xx bodies say what the client did wrong, in one JSON shape: `{"error": code, "message": text}`
//! (plus `reason` where a client can act on it). 5xx bodies say nothing about internals; the
//! cause goes to the runtime's log.

use serde_json::json;
use shared_wasm::jwt::Role;
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
    #[error("unauthorized: {reason:?}")]
    Unauthorized {
        /// Public reason, `None` when no credentials were presented at all.
        reason: Option<&'static str>,
    },
    /// A playback token was refused, or could not be issued as the policy wants.
    #[error("forbidden: {reason}")]
    Forbidden {
        /// `TokenError::public_reason` of the refusal, or `country_unknown`.
        reason: &'static str,
    },
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
    #[error("unavailable: {reason}")]
    Unavailable {
        /// `country_blocked` or `taken_down`.
        reason: &'static str,
    },
    /// The request body is larger than the edge forwards.
    #[error("payload too large")]
    PayloadTooLarge,
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
            Self::Unauthorized { reason } => {
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
            Self::Forbidden { reason } => json_body(
                403,
                json!({
                    "error": "forbidden",
                    "reason": reason,
                    "message": match reason {
                        "expired" => "playback token expired; request a new playback URL",
                        "wrong_path" => "playback token does not cover this path",
                        "not_yet_valid" => "playback token is not valid yet",
                        "network_mismatch" => "playback token is bound to another network",
                        "country_mismatch" => "playback token is bound to another country",
                        "country_unknown" => {
                            "playback tokens here are bound to the viewer's country, \
                             which is not known for this request"
                        }
                        _ => "playback token invalid",
                    },
                }),
            ),
            Self::RoleRequired(role) => {
                let name = match role {
                    Role::User => "user",
                    Role::Creator => "creator",
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
            Self::Unavailable { reason } => json_body(
                451,
                json!({
                    "error": "unavailable_for_legal_reasons",
                    "reason": reason,
                    "message": match reason {
                        "country_blocked" => "this video is not available in your country",
                        _ => "this video has been taken down",
                    },
                }),
            ),
            Self::PayloadTooLarge => json_body(
                413,
                json!({"error": "payload_too_large", "message": "request body is too large"}),
            ),
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
