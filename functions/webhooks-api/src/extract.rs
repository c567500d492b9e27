//! Extractors whose every rejection is one of our JSON errors (axum's plain-text rejections never
//! reach a client).

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use relay_shared::ids::SubscriptionId;
use relay_shared::webex::ParseError;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Deserializer};

use crate::error::ApiError;
use crate::state::AppState;

/// Is this a JSON content type (`application/json`, `application/*+json`, any parameters)?
pub fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Reads the whole body through the router's `DefaultBodyLimit` (axum's `Bytes` extractor, i.e.
/// `http_body_util::Limited`: the one body-limit approach, as in telephony-ingest): `413` over
/// `max` bytes, recognised by the rejection's status; `400` for a body that cannot be read.
pub async fn read_body(parts: &Parts, body: Body, max: usize) -> Result<Bytes, ApiError> {
    // The limit travels as a request extension that the router's layer set.
    let mut req = Request::new(body);
    *req.extensions_mut() = parts.extensions.clone();
    Bytes::from_request(req, &()).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large(max)
        } else {
            ApiError::bad_request("unreadable_body", rejection.body_text())
        }
    })
}

/// Parses JSON bytes: syntax errors are `400 malformed_json`; well-formed JSON of the wrong shape
/// (unknown fields, wrong types, `null` for a non-nullable field, …) is `422` naming the field.
/// The field path comes from the one JSON-path parser, `relay_shared::webex::parse_json`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Syntax first (400), then the shape (422): a body must be a JSON object. The syntax is
    // checked on its own only when something is wrong, so a good body is parsed once.
    // `IgnoredAny` skips what strings hold, so UTF-8 is checked first: JSON text is UTF-8.
    let malformed = || {
        let detail = match std::str::from_utf8(bytes) {
            Ok(text) => serde_json::from_str::<IgnoredAny>(text).err()?.to_string(),
            Err(e) => format!("invalid UTF-8 at byte {}", e.valid_up_to()),
        };
        Some(ApiError::bad_request(
            "malformed_json",
            format!("The request body is not valid JSON: {detail}."),
        ))
    };
    let is_object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !is_object {
        return Err(malformed().unwrap_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "The request body must be a JSON object.",
            )
        }));
    }
    relay_shared::webex::parse_json(bytes).map_err(|e| {
        malformed().unwrap_or_else(|| match e {
            ParseError::InvalidField { path, message } => {
                let path = path.strip_prefix('$').unwrap_or(&path);
                field_error(path.strip_prefix('.').unwrap_or(path), &message)
            }
            // Not reached (the syntax check above answers first), but a 400 all the same.
            ParseError::InvalidJson {
                message,
                line,
                column,
            } => ApiError::bad_request(
                "malformed_json",
                format!(
                    "The request body is not valid JSON: {message} at line {line} column {column}."
                ),
            ),
        })
    })
}

/// A well-formed body of the wrong shape: `422`, naming the field at `path` (`""`: the body).
fn field_error(path: &str, msg: &str) -> ApiError {
    if let Some(name) = msg
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
    {
        let field = if path.is_empty() {
            name.to_owned()
        } else if path == name || path.ends_with(&format!(".{name}")) {
            path.to_owned()
        } else {
            format!("{path}.{name}")
        };
        let hint = if name == "secret" {
            " Use POST /api/hooks/webhooks/{id}/rotate-secret to change a secret."
        } else {
            ""
        };
        return ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_field",
            format!("{msg}.{hint}"),
        )
        .with_field(field);
    }
    let detail = if path.is_empty() {
        format!("The request body is invalid: {msg}.")
    } else {
        format!("`{path}` is invalid: {msg}.")
    };
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        detail,
    )
    .with_field(path)
}

/// A JSON request body (required).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        if !is_json_content_type(&parts.headers) {
            // Still refuse an oversized body first: the size is the bigger problem.
            read_body(&parts, body, state.config.max_body_bytes).await?;
            return Err(ApiError::unsupported_media_type());
        }
        let bytes = read_body(&parts, body, state.config.max_body_bytes).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A JSON request body that may be left out entirely (then `T::default()`).
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = read_body(&parts, body, state.config.max_body_bytes).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        if !is_json_content_type(&parts.headers) {
            return Err(ApiError::unsupported_media_type());
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

/// A query string, `422` naming the parameter when it does not parse.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(q)| ApiQuery(q))
            .map_err(|rejection| {
                let text = rejection.body_text();
                let text = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text)
                    .to_owned();
                let field = text
                    .split_once(':')
                    .map(|(f, _)| f.trim().to_owned())
                    .filter(|f| !f.contains(' '))
                    .unwrap_or_default();
                ApiError::invalid(&field, format!("Invalid query string: {text}."))
            })
    }
}

/// The `{id}` of a webhook route. An id that cannot be one of ours is simply not found.
pub struct SubscriptionIdPath(pub SubscriptionId);

impl<S: Send + Sync> FromRequestParts<S> for SubscriptionIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::webhook_not_found())?;
        id.parse()
            .map(SubscriptionIdPath)
            .map_err(|_| ApiError::webhook_not_found())
    }
}

/// A webhook route with a second id (`/webhooks/{id}/deliveries/{attemptId}`,
/// `/webhooks/{id}/events/{eventId}/…`): the webhook's id and the other, parsed as `T`. Either
/// one that cannot be one of ours is not found (`404`, the webhook's when it is the webhook's id).
pub struct WebhookAnd<T>(pub SubscriptionId, pub T);

/// What a [`WebhookAnd`] answers when its second id cannot be one of ours.
pub trait NotFoundAs {
    fn not_found() -> ApiError;
}

impl NotFoundAs for relay_shared::ids::AttemptId {
    fn not_found() -> ApiError {
        ApiError::not_found("No delivery attempt with this id exists for this webhook.")
    }
}

impl NotFoundAs for relay_shared::ids::EventId {
    fn not_found() -> ApiError {
        ApiError::not_found("No event with this id is in your organisation's event log.")
    }
}

impl<S: Send + Sync, T: std::str::FromStr + NotFoundAs> FromRequestParts<S> for WebhookAnd<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path((id, other)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::webhook_not_found())?;
        let id = id.parse().map_err(|_| ApiError::webhook_not_found())?;
        let other = other.parse().map_err(|_| T::not_found())?;
        Ok(WebhookAnd(id, other))
    }
}

/// For PATCH bodies: a field that may be absent (`None`) but, when present, must not be `null`.
pub fn non_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// For PATCH bodies: a field that may be absent (`None`, unchanged), `null` (`Some(None)`,
/// removed) or a value (`Some(Some(v))`, replaced).
pub fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[allow(dead_code)]
        inner: Inner,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[allow(dead_code)]
        n: u32,
    }

    fn err(body: &str) -> (u16, &'static str, Option<String>, String) {
        let e = parse_json::<Body>(body.as_bytes()).unwrap_err();
        (e.status.as_u16(), e.error, e.field, e.detail)
    }

    #[test]
    fn syntax_before_shape() {
        assert_eq!(err("{").0, 400);
        assert_eq!(err(r#"{"nope": 1, garbage"#).1, "malformed_json");
        assert_eq!(err(r#"{"inner": {"n": 1}} x"#).1, "malformed_json");
        assert_eq!(err("[1,").1, "malformed_json");
        let (status, code, _, detail) = err("[1]");
        assert_eq!((status, code), (422, "validation_failed"));
        assert_eq!(detail, "The request body must be a JSON object.");
    }

    /// The syntax check skips what strings hold, so invalid UTF-8 inside one is found by the typed
    /// parse: still a 400, said once (found by fuzz/api_bodies, docs/reliability.md).
    #[test]
    fn invalid_utf8_in_a_string_is_a_400_said_once() {
        #[derive(Debug, Deserialize)]
        struct Named {
            #[allow(dead_code)]
            name: String,
        }
        let e = parse_json::<Named>(b"{\"name\": \"a\xffb\"}").unwrap_err();
        assert_eq!((e.status.as_u16(), e.error), (400, "malformed_json"));
        assert_eq!(
            e.detail.matches("not valid JSON").count(),
            1,
            "{}",
            e.detail
        );
        assert!(
            e.detail.ends_with("invalid UTF-8 at byte 11."),
            "{}",
            e.detail
        );
        // Not JSON whatever comes first: an unknown field before the bad byte is no 422.
        let e = parse_json::<Named>(b"{\"nope\": 1, \"name\": \"a\xffb\"}").unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.error),
            (400, "malformed_json"),
            "{e:?}"
        );
        assert!(
            e.detail.contains("invalid UTF-8 at byte 22"),
            "{}",
            e.detail
        );
    }

    #[test]
    fn shape_errors_name_the_field() {
        let (status, code, field, _) = err(r#"{"inner": {"n": "x"}}"#);
        assert_eq!((status, code), (422, "validation_failed"));
        assert_eq!(field.as_deref(), Some("inner.n"));
        let (_, code, field, detail) = err(r#"{"inner": {"n": 1, "m": 2}}"#);
        assert_eq!(code, "unknown_field");
        assert_eq!(field.as_deref(), Some("inner.m"));
        assert!(!detail.contains(" at line "), "{detail}");
        let (_, code, field, _) = err(r#"{"secret": "s"}"#);
        assert_eq!((code, field.as_deref()), ("unknown_field", Some("secret")));
        let (_, code, field, detail) = err("{}");
        assert_eq!((code, field), ("validation_failed", None));
        assert!(detail.starts_with("The request body is invalid: missing field `inner`"));
        assert!(parse_json::<Body>(br#" {"inner": {"n": 1}} "#).is_ok());
    }
}
