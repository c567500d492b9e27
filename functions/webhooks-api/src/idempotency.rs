//! `Idempotency-Key` on POSTs: the same key, from the same user, on the same route, within the TTL
//! (`IDEMPOTENCY_TTL_HOURS`, 24 h) gets the first response again and changes nothing.
//!
//! - The scope is SHA-256(user, org, method, path, key): keys never collide across users or routes.
//! - A short lock entry stops two concurrent requests with one key from both running; the loser
//!   gets `409 idempotency_key_in_use` (retry shortly to get the stored answer).
//! - Responses below 500 are stored (with a hash of the request body); a 5xx or a `429` (a quota,
//!   `quota.rs`) is not, so a retry after a server failure or after `Retry-After` runs again once
//!   the lock expires (30 s).
//! - Reusing a key with a different body is `422 idempotency_key_reused`.
//! - A response that shows a secret (create, rotate: [`shown_once`]) is stored redacted, without
//!   the secret, so the store never holds one: its replay is the same answer without `secret`.
//!   The secret is shown once; a client that lost the first answer rotates the secret.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use relay_shared::error::StoreError;
use relay_shared::ports::IdempotentResponse;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::authenticate;
use crate::error::ApiError;
use crate::extract::read_body;
use crate::model::WebhookWithSecret;
use crate::state::AppState;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
pub const MAX_KEY_LEN: usize = 255;
const LOCK_SECONDS: i64 = 30;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    request_hash: String,
    body: String,
}

/// The body the store keeps instead of the response's own (a response extension).
#[derive(Clone)]
struct RedactedBody(String);

/// `body` as a JSON response with `status` that shows its secret this once: the `Idempotency-Key`
/// store keeps [`WebhookWithSecret::redacted`] instead.
pub fn shown_once(status: StatusCode, body: WebhookWithSecret) -> Response {
    let redacted =
        serde_json::to_string(&body.redacted()).expect("serialising strings cannot fail");
    let mut res = (status, axum::Json(body)).into_response();
    res.extensions_mut().insert(RedactedBody(redacted));
    res
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

fn replay(stored: &IdempotentResponse, request_hash: &str) -> Response {
    let Ok(inner) = serde_json::from_str::<Stored>(&stored.body) else {
        return ApiError::internal().into_response();
    };
    if inner.request_hash != request_hash {
        return ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request body; use a new key.",
        )
        .with_field("Idempotency-Key")
        .into_response();
    }
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut res = Response::new(Body::from(inner.body.clone()));
    *res.status_mut() = status;
    if !inner.body.is_empty() {
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    res.headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    res
}

pub async fn idempotency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(raw) = req.headers().get(HEADER).cloned() else {
        return next.run(req).await;
    };
    let key = match raw.to_str() {
        Ok(k)
            if !k.trim().is_empty()
                && k.len() <= MAX_KEY_LEN
                && k.bytes().all(|b| b.is_ascii_graphic() || b == b' ') =>
        {
            k.trim().to_owned()
        }
        _ => {
            return ApiError::bad_request(
                "invalid_idempotency_key",
                format!("`Idempotency-Key` must be 1–{MAX_KEY_LEN} printable ASCII characters."),
            )
            .with_field("Idempotency-Key")
            .into_response()
        }
    };
    let (mut parts, body) = req.into_parts();
    let caller = match authenticate(&mut parts, &state).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let bytes = match read_body(&parts, body, state.config.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let path = parts.uri.path().to_owned();
    let scope = sha256_hex(&[
        caller.user_id.as_bytes(),
        caller.org_id.as_bytes(),
        b"POST",
        path.as_bytes(),
        key.as_bytes(),
    ]);
    let request_hash = sha256_hex(&[&bytes]);
    let store = state.stores.idempotency.clone();
    let now = state.clock.now();

    match store.get(&scope, now).await {
        Ok(Some(stored)) => return replay(&stored, &request_hash),
        Ok(None) => {}
        Err(e) => return ApiError::from(e).into_response(),
    }
    // The lock's name carries the TTL window it was taken in, so a key reused after its answer
    // expired takes a fresh lock even when the store compares lock expiry with another clock.
    let ttl_secs = i64::from(state.config.idempotency_ttl_hours) * 3600;
    let lock = format!("{scope}:lock:{}", now.timestamp().div_euclid(ttl_secs));
    let pending = IdempotentResponse {
        status: 0,
        body: String::new(),
    };
    match store
        .put(&lock, &pending, now + Duration::seconds(LOCK_SECONDS))
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return match store.get(&scope, now).await {
                Ok(Some(stored)) => replay(&stored, &request_hash),
                Ok(None) => ApiError::conflict(
                    "idempotency_key_in_use",
                    "A request with this Idempotency-Key is still being processed; retry shortly.",
                )
                .into_response(),
                Err(e) => ApiError::from(e).into_response(),
            };
        }
        Err(e) => return ApiError::from(e).into_response(),
    }

    let res = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if res.status().is_server_error() || res.status() == StatusCode::TOO_MANY_REQUESTS {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return ApiError::internal().into_response();
    };
    let text = match parts.extensions.remove::<RedactedBody>() {
        Some(RedactedBody(redacted)) => redacted,
        None => String::from_utf8_lossy(&body).into_owned(),
    };
    let stored = Stored {
        request_hash,
        body: text,
    };
    let record = IdempotentResponse {
        status: parts.status.as_u16(),
        body: serde_json::to_string(&stored).expect("serialising strings cannot fail"),
    };
    let ttl = Duration::hours(i64::from(state.config.idempotency_ttl_hours));
    if let Err(e) = store.put(&scope, &record, now + ttl).await {
        tracing::warn!(error = %e, "could not store the idempotent response");
    }
    Response::from_parts(parts, Body::from(body))
}
