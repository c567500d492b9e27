//! The axum glue: the `POST /webex/telephony` route that Lambda serves with `lambda_http::run`
//! and the local stack with `axum::serve`. It reads the body within the limit, picks the
//! signature header, the request id and Webex's tracking id, hands the bytes to [`Ingest::handle`]
//! (in a span carrying both ids, so every line it logs names the request) and writes the request
//! log line.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::Utc;

use relay_shared::events::EventType;
use relay_shared::ids::EventId;
use relay_shared::telemetry::{self, Start};
use relay_shared::webex::SecretRole;
use relay_shared::webex::{tracking_id, SPARK_SIGNATURE_HEADER, WEBEX_SIGNATURE_HEADER};
use tracing::Instrument;

use crate::ingest::Ingest;
use crate::response::{truncate, IngestOutcome, IngestResponse};

/// The route Webex's `telephony_calls` webhook targets.
pub const ROUTE: &str = "/webex/telephony";

impl IntoResponse for IngestResponse {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body)).into_response();
        if let Some(s) = self.retry_after_seconds {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

/// The router: `POST /webex/telephony`. The body limit is axum's `DefaultBodyLimit` (the same
/// approach as the webhooks API), at the configured maximum.
pub fn router(ingest: Arc<Ingest>) -> Router {
    let limit = DefaultBodyLimit::max(ingest.config().max_body_bytes);
    Router::new()
        .route(ROUTE, post(handle_http))
        .layer(limit)
        .with_state(ingest)
}

async fn handle_http(State(ingest): State<Arc<Ingest>>, req: Request) -> Response {
    let started = Instant::now();
    let request_id = request_id(&req);
    let tracking_id = tracking_id(req.headers()).unwrap_or("").to_owned();
    let signature = signature_header(req.headers()).map(str::to_owned);
    // What the core logs names the request (the span); the request line carries the ids itself.
    // The span starts the request's trace (a new one: the ingest is the relay's public edge, so
    // a caller's `traceparent` is not continued); its context goes with every job it queues
    // (docs/observability.md, "Tracing").
    let span = tracing::info_span!(
        "telephony_webhook",
        %request_id,
        %tracking_id,
        "otel.name" = "POST /webex/telephony",
        "otel.kind" = "server",
    );
    telemetry::start(
        &span,
        Start {
            remote: None,
            request_id: Some(&request_id),
            tracking_id: Some(&tracking_id),
        },
    );
    telemetry::set_attribute(&span, "http.request.method", "POST");
    telemetry::set_attribute(&span, "http.route", ROUTE);
    telemetry::set_attribute(
        &span,
        telemetry::context::TRACKING_ID_KEY,
        tracking_id.clone(),
    );
    let resp = async {
        match read_body(req, ingest.config().max_body_bytes).await {
            Err(resp) => resp,
            Ok(bytes) => ingest.handle(&bytes, signature.as_deref()).await,
        }
    }
    .instrument(span.clone())
    .await;
    let status = i64::from(resp.status.as_u16());
    telemetry::set_attribute(&span, "http.response.status_code", status);
    if resp.status.is_server_error() {
        telemetry::set_error(&span, resp.outcome.as_str());
    }
    if let Some(event_id) = resp.event_id {
        telemetry::set_attribute(&span, "event.id", event_id.to_string());
    }
    // In the span, so the request line carries the trace id too.
    span.in_scope(|| {
        log_request(
            &resp,
            &request_id,
            &tracking_id,
            ingest.config().auth.is_insecure(),
            started,
        )
    });
    resp.into_response()
}

/// The raw body bytes (lambda_http has already decoded a base64 body from API Gateway), read
/// through the router's `DefaultBodyLimit`: axum's rejection says 413 when the body is over it.
async fn read_body(req: Request, max: usize) -> Result<Bytes, IngestResponse> {
    Bytes::from_request(req, &()).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            IngestResponse::too_large(max)
        } else {
            IngestResponse::client_error(
                StatusCode::BAD_REQUEST,
                IngestOutcome::BadRequest,
                "unreadable_body",
                rejection.body_text(),
            )
        }
    })
}

fn signature_header(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(SPARK_SIGNATURE_HEADER)
        .or_else(|| headers.get(WEBEX_SIGNATURE_HEADER))
        .and_then(|v| v.to_str().ok())
}

/// The Lambda request id when running on Lambda, else `x-request-id`, else a fresh one.
fn request_id(req: &Request) -> String {
    if let Some(ctx) = req.extensions().get::<lambda_http::Context>() {
        if !ctx.request_id.is_empty() {
            return ctx.request_id.clone();
        }
    }
    if let Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) =
        req.extensions()
            .get::<lambda_http::request::RequestContext>()
    {
        if let Some(id) = &ctx.request_id {
            return id.clone();
        }
    }
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(|s| truncate(s, 128))
        .unwrap_or_else(|| {
            EventId::new_at(Utc::now().timestamp_millis().max(0) as u64)
                .to_string()
                .replacen("evt_", "req_", 1)
        })
}

fn log_request(
    resp: &IngestResponse,
    request_id: &str,
    tracking_id: &str,
    insecure: bool,
    started: Instant,
) {
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let call_id = resp.call_id.as_deref().unwrap_or("");
    let event_type = resp.event_type.map(EventType::as_str).unwrap_or("");
    let event_id = resp.event_id.map(|e| e.to_string()).unwrap_or_default();
    let detail = resp.detail.as_deref().unwrap_or("");
    let status = resp.status.as_u16();
    let outcome = resp.outcome.as_str();
    let deliveries = resp.deliveries;
    let verified_with = resp.verified_with.map(SecretRole::as_str).unwrap_or("");
    // One set of fields; the level (and the insecure flag) differ.
    macro_rules! request_line {
        ($level:ident $(, $extra:tt)*) => {
            tracing::$level!(
                request_id, tracking_id, call_id, event_type, event_id, outcome, status,
                deliveries, verified_with, duration_ms, detail, $($extra,)* "telephony webhook"
            )
        };
    }
    if resp.status.is_server_error() || insecure {
        let insecure_unsigned = insecure;
        request_line!(warn, insecure_unsigned);
    } else {
        request_line!(info);
    }
}
