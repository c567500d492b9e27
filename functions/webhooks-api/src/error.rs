//! Every failure the API returns: `{"error": "<code>", "detail": "<sentence>", "field"?: "<path>"}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use relay_shared::error::{QueueError, StoreError};
use relay_shared::secrets_at_rest::SealError;
use serde::Serialize;

/// An API error: an HTTP status, a stable machine-readable code, a human sentence, and the
/// offending field's JSON path when one is to blame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    pub error: &'static str,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Whole seconds for a `Retry-After` header (quotas: `429`).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            error,
            detail: detail.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        let field = field.into();
        self.field = if field.is_empty() { None } else { Some(field) };
        self
    }

    pub fn bad_request(error: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, detail)
    }

    /// `422 validation_failed` naming the field.
    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            detail,
        )
        .with_field(field)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn webhook_not_found() -> Self {
        Self::not_found("No webhook with this id exists for this API key.")
    }

    pub fn conflict(error: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, error, detail)
    }

    pub fn payload_too_large(max: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("The request body exceeds the limit of {max} bytes."),
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "The request body must be JSON, sent with `Content-Type: application/json`.",
        )
    }

    /// `429` with `Retry-After: <retry_after_secs>` (at least 1): a quota is used up (`error` names
    /// which, e.g. `rate_limited`, `replay_in_progress`).
    pub fn too_many(error: &'static str, detail: impl Into<String>, retry_after_secs: u64) -> Self {
        Self {
            retry_after: Some(retry_after_secs.max(1)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, error, detail)
        }
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "An unexpected error occurred; it has been logged.",
        )
    }

    /// The generic error for a status that reached the client without one of ours (a safety net
    /// for framework rejections).
    pub fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::not_found("No such route."),
            StatusCode::METHOD_NOT_ALLOWED => Self::method_not_allowed(),
            StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                status,
                "payload_too_large",
                "The request body is too large.",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::unsupported_media_type(),
            StatusCode::UNAUTHORIZED => {
                Self::unauthorized("A valid `Authorization: Bearer <key>` header is required.")
            }
            StatusCode::UNPROCESSABLE_ENTITY => {
                Self::new(status, "validation_failed", "The request is invalid.")
            }
            s if s.is_client_error() => Self::new(s, "bad_request", "The request is invalid."),
            StatusCode::SERVICE_UNAVAILABLE => {
                Self::unavailable("The service is temporarily unavailable; retry later.")
            }
            _ => Self::internal(),
        }
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "This route does not support this HTTP method.",
        )
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("serialising an error cannot fail")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.error,
            self.detail
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), error = self.error, detail = %self.detail, "request failed");
        }
        let mut res = (self.status, self.to_json()).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::BadCursor => Self::invalid("cursor", "The pagination cursor is not valid; use a `nextCursor` returned by this list."),
            StoreError::NotFound => Self::webhook_not_found(),
            StoreError::LimitReached { limit } => Self::conflict(
                "limit_reached",
                format!("You already have the maximum of {limit} webhooks; delete one before creating another."),
            ),
            StoreError::Conflict(_) => Self::conflict("conflict", "The resource was changed concurrently; retry the request."),
            StoreError::Unavailable(m) => {
                tracing::warn!(error = %m, "store unavailable");
                Self::unavailable("Storage is temporarily unavailable; retry later.")
            }
            StoreError::Corrupt(m) => {
                tracing::error!(error = %m, "corrupt stored item");
                Self::internal()
            }
            e @ StoreError::TooLarge { .. } => {
                tracing::error!(error = %e, "item over the store's size limit");
                Self::internal()
            }
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        tracing::warn!(error = %e, "queue unavailable");
        Self::unavailable("The delivery queue is temporarily unavailable; retry later.")
    }
}

/// A secret could not be sealed (nothing was stored): the key service's detail goes to the log only.
impl From<SealError> for ApiError {
    fn from(e: SealError) -> Self {
        match e {
            SealError::Unavailable(m) => {
                tracing::warn!(error = %m, "secrets key unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "secrets_key_unavailable",
                    "The key service that protects signing secrets is temporarily unavailable; nothing was changed, retry later.",
                )
            }
            SealError::Rejected(m) => {
                tracing::error!(error = %m, "the secrets key refused to seal");
                Self::internal()
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
