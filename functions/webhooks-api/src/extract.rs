//! Extractors whose every rejection is one of our JSON errors (axum's plain-text rejections never
//! reach a client).

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use relay_shared::ids::SubscriptionId;
use serde::de::DeserializeOwned;
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

/// Reads the whole body, refusing more than `max` bytes with `413`.
pub async fn read_body(headers: &HeaderMap, body: Body, max: usize) -> Result<Bytes, ApiError> {
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        if len > max as u64 {
            return Err(ApiError::payload_too_large(max));
        }
    }
    axum::body::to_bytes(body, max)
        .await
        .map_err(|_| ApiError::payload_too_large(max))
}

/// Parses JSON bytes: syntax errors are `400 malformed_json`; well-formed JSON of the wrong shape
/// (unknown fields, wrong types, `null` for a non-nullable field, …) is `422` naming the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Syntax first (400), then the shape (422): a body must be a JSON object.
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| json_error(".", &e))?;
    if !value.is_object() {
        return Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "The request body must be a JSON object.",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        json_error(&path, &inner)
    })?;
    de.end().map_err(|e| json_error(".", &e))?;
    Ok(value)
}

fn json_error(path: &str, e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let path = if path == "." { "" } else { path };
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::bad_request(
            "malformed_json",
            format!("The request body is not valid JSON: {e}."),
        ),
        Category::Data => {
            // serde's messages end with " at line L column C"; the field path says more.
            let msg = e.to_string();
            let msg = msg
                .rsplit_once(" at line ")
                .map_or(msg.as_str(), |(m, _)| m)
                .to_owned();
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
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
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
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                detail,
            )
            .with_field(path)
        }
    }
}

/// A JSON request body (required).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        if !is_json_content_type(&parts.headers) {
            // Still refuse an oversized body first: the size is the bigger problem.
            read_body(&parts.headers, body, state.config.max_body_bytes).await?;
            return Err(ApiError::unsupported_media_type());
        }
        let bytes = read_body(&parts.headers, body, state.config.max_body_bytes).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A JSON request body that may be left out entirely (then `T::default()`).
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = read_body(&parts.headers, body, state.config.max_body_bytes).await?;
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
pub struct WebhookIdPath(pub SubscriptionId);

impl<S: Send + Sync> FromRequestParts<S> for WebhookIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::webhook_not_found())?;
        id.parse()
            .map(WebhookIdPath)
            .map_err(|_| ApiError::webhook_not_found())
    }
}

/// For PATCH bodies: a field that may be absent (`None`) but, when present, must not be `null`.
pub fn non_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}
