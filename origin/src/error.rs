//! The origin's API errors and their one mapping to HTTP: 4xx bodies say what the client did
//! wrong as `{"error": code, "message": text}`; 5xx bodies reveal nothing and the cause is logged.

use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed input.
    #[error("{message}")]
    BadRequest {
        /// Stable code.
        code: &'static str,
        /// What was wrong.
        message: String,
    },
    /// One field of the body is not acceptable.
    #[error("{field}: {message}")]
    InvalidField {
        /// The field's name, as in the request.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// Refused with a status that needs nothing but a code and a message: 401, 403, 409, 410,
    /// 415, 451, 502, 503 (made by [`ApiError::unauthorized`] and its siblings).
    #[error("{message}")]
    Refused {
        /// The HTTP status.
        status: StatusCode,
        /// Stable code.
        code: &'static str,
        /// What was wrong.
        message: &'static str,
    },
    /// A webhook whose signature does not hold; the reason is a stable code.
    #[error("invalid signature: {0}")]
    InvalidSignature(&'static str),
    /// The body is larger than the route accepts.
    #[error("request body too large")]
    PayloadTooLarge,
    /// An upload larger than its URL allows.
    #[error("upload larger than {max} bytes")]
    PayloadTooLargeFor {
        /// The most the URL allows.
        max: u64,
    },
    /// A video taken down: 451 `taken_down`, with the reason a moderator gave as its message.
    #[error("taken down: {0}")]
    TakenDown(String),
    /// Another request is writing the same upload.
    #[error("the upload is being written by another request")]
    Locked,
    /// No such thing.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Too many wrong passwords for the account; try again after this many seconds.
    #[error("too many attempts")]
    TooManyAttempts(u64),
    /// The reporter filed as many reports in the last hour as they may; the next after this
    /// many seconds.
    #[error("too many reports")]
    TooManyReports(u64),
    /// The caller has as many uploads open, or as many bytes in them, as it may; finishing or
    /// terminating one makes room.
    #[error("{message}")]
    TooManyUploads {
        /// Stable code.
        code: &'static str,
        /// The bound that was reached.
        message: String,
    },
    /// The disk that uploads are written to has no room for this one (the free space is
    /// logged, never sent).
    #[error("insufficient storage")]
    InsufficientStorage,
    /// A fault on our side; the cause is logged, never sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// Missing or wrong credentials: 401.
    pub const fn unauthorized(code: &'static str, message: &'static str) -> Self {
        Self::Refused {
            status: StatusCode::UNAUTHORIZED,
            code,
            message,
        }
    }

    /// Authenticated, but not allowed: 403.
    pub const fn forbidden(code: &'static str, message: &'static str) -> Self {
        Self::Refused {
            status: StatusCode::FORBIDDEN,
            code,
            message,
        }
    }

    /// The request conflicts with the current state: 409.
    pub const fn conflict(code: &'static str, message: &'static str) -> Self {
        Self::Refused {
            status: StatusCode::CONFLICT,
            code,
            message,
        }
    }

    /// The thing existed and is gone for good (an expired or used upload URL): 410.
    pub const fn gone(code: &'static str, message: &'static str) -> Self {
        Self::Refused {
            status: StatusCode::GONE,
            code,
            message,
        }
    }

    /// A body of a type the route does not take: 415.
    pub const fn unsupported_media_type(code: &'static str, message: &'static str) -> Self {
        Self::Refused {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code,
            message,
        }
    }

    /// Withheld for a legal or policy reason (a taken-down video): 451.
    pub const fn legal(code: &'static str, message: &'static str) -> Self {
        Self::Refused {
            status: StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS,
            code,
            message,
        }
    }

    /// A dependency answered wrongly: 502.
    pub const fn bad_gateway(code: &'static str, message: &'static str) -> Self {
        Self::Refused {
            status: StatusCode::BAD_GATEWAY,
            code,
            message,
        }
    }

    /// A dependency is not configured or not reachable: 503.
    pub const fn unavailable(code: &'static str, message: &'static str) -> Self {
        Self::Refused {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code,
            message,
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::InvalidField { field, message } = &self {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                [(header::CACHE_CONTROL, "no-store")],
                Json(json!({"error": "invalid_field", "field": field, "message": message})),
            )
                .into_response();
        }
        if let Self::InvalidSignature(reason) = &self {
            return (
                StatusCode::BAD_REQUEST,
                [(header::CACHE_CONTROL, "no-store")],
                Json(json!({
                    "error": "invalid_signature",
                    "reason": reason,
                    "message": "the Stripe-Signature header does not hold",
                })),
            )
                .into_response();
        }
        let retry = match &self {
            Self::TooManyAttempts(after) => Some((
                after,
                "too_many_attempts",
                "too many attempts for this account or from this address; try again later",
            )),
            Self::TooManyReports(after) => Some((
                after,
                "too_many_reports",
                "you have filed as many reports as an hour allows; try again later",
            )),
            _ => None,
        };
        if let Some((retry_after, code, message)) = retry {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [
                    (header::CACHE_CONTROL, "no-store".to_owned()),
                    (header::RETRY_AFTER, retry_after.to_string()),
                ],
                Json(json!({"error": code, "message": message})),
            )
                .into_response();
        }
        let (status, code, message) = match &self {
            Self::BadRequest { code, message } => (StatusCode::BAD_REQUEST, *code, message.clone()),
            Self::Refused {
                status,
                code,
                message,
            } => (*status, *code, (*message).to_owned()),
            Self::PayloadTooLargeFor { max } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the upload URL allows at most {max} bytes"),
            ),
            Self::Locked => (
                StatusCode::LOCKED,
                "upload_busy",
                "another request is writing this upload; retry after it".to_owned(),
            ),
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body too large".to_owned(),
            ),
            Self::TooManyUploads { code, message } => {
                (StatusCode::TOO_MANY_REQUESTS, *code, message.clone())
            }
            Self::InsufficientStorage => (
                StatusCode::INSUFFICIENT_STORAGE,
                "insufficient_storage",
                "the origin has no room for this upload now; try again later".to_owned(),
            ),
            Self::TakenDown(reason) => (
                StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS,
                "taken_down",
                reason.clone(),
            ),
            Self::NotFound(what) => (
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what} not found"),
            ),
            Self::InvalidField { .. }
            | Self::InvalidSignature(_)
            | Self::TooManyAttempts(_)
            | Self::TooManyReports(_) => {
                unreachable!("answered above")
            }
            Self::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error".to_owned(),
                )
            }
        };
        (
            status,
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({"error": code, "message": message})),
        )
            .into_response()
    }
}

/// `Json<T>` whose rejections use the API's error shape, and whose text holds no control
/// characters ([`crate::routes::text`]).
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let value = match Json::<serde_json::Value>::from_request(req, state).await {
            Ok(Json(v)) => v,
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::PayloadTooLarge)
            }
            Err(rejection) => return Err(invalid_body(rejection.body_text())),
        };
        crate::routes::text::control_in_body(&value)?;
        serde_json::from_value(value)
            .map(Self)
            .map_err(|e| invalid_body(format!("Failed to deserialize the JSON body: {e}")))
    }
}

fn invalid_body(message: String) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_body",
        message,
    }
}
