//! `GET /api/hooks/openapi.json`: the OpenAPI 3.1 document (the checked-in `openapi.json`).

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

/// The checked-in document, byte for byte (a test keeps `openapi.yaml` and `openapi.json` equal).
pub const OPENAPI_JSON: &str = include_str!("../../../../openapi.json");

pub async fn document() -> Response {
    let mut res = OPENAPI_JSON.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}
