//! The router: one module per resource.

pub mod console;
pub mod deliveries;
pub mod dlq;
pub mod event_types;
pub mod events;
pub mod openapi;
pub mod stats;
pub mod webhooks;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use relay_shared::ports::EventFilter;
use relay_shared::telemetry;
use serde::Deserialize;
use tracing::Instrument;

use crate::error::ApiError;
use crate::idempotency::idempotency;
use crate::state::AppState;
use crate::validate;

pub const DEFAULT_PAGE_LIMIT: u32 = 50;
pub const MAX_PAGE_LIMIT: u32 = 250;

/// `?limit=&cursor=`.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn page_request(&self) -> Result<relay_shared::ports::PageRequest, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE_LIMIT);
        if !(1..=MAX_PAGE_LIMIT).contains(&limit) {
            return Err(ApiError::invalid(
                "limit",
                format!("`limit` must be between 1 and {MAX_PAGE_LIMIT}."),
            ));
        }
        let cursor = self.cursor.clone().filter(|c| !c.is_empty());
        if cursor.as_ref().is_some_and(|c| c.len() > 1024) {
            return Err(ApiError::invalid(
                "cursor",
                "The pagination cursor is not valid; use a `nextCursor` returned by this list.",
            ));
        }
        Ok(relay_shared::ports::PageRequest { limit, cursor })
    }
}

/// `?limit=&cursor=&eventType=&since=&until=`, what the event log and the delivery log are both
/// listed by, checked in that order: the page and the filter.
pub fn log_page(
    limit: Option<u32>,
    cursor: Option<String>,
    event_type: Option<&str>,
    since: Option<&str>,
    until: Option<&str>,
) -> Result<(relay_shared::ports::PageRequest, EventFilter), ApiError> {
    let page = PageQuery { limit, cursor }.page_request()?;
    let event_type = event_type
        .map(|t| validate::event_type_param("eventType", t))
        .transpose()?;
    let (since, until) = validate::time_window(since, until)?;
    Ok((
        page,
        EventFilter {
            event_type,
            since,
            until,
        },
    ))
}

/// The whole API. Served by `lambda_http::run` on Lambda and by `axum::serve` locally.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/api/hooks/webhooks",
            get(webhooks::list).post(webhooks::create),
        )
        .route(
            "/api/hooks/webhooks/{id}",
            get(webhooks::get_one)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route("/api/hooks/webhooks/{id}/deliveries", get(deliveries::list))
        .route(
            "/api/hooks/webhooks/{id}/deliveries/{attempt_id}",
            get(deliveries::get_one),
        )
        .route("/api/hooks/webhooks/{id}/stats", get(stats::get_stats))
        .route(
            "/api/hooks/webhooks/{id}/events/{event_id}/resend",
            post(events::resend),
        )
        .route("/api/hooks/events", get(events::list))
        .route("/api/hooks/dlq", get(dlq::depth))
        .route("/api/hooks/webhooks/{id}/test", post(webhooks::send_test))
        .route(
            "/api/hooks/webhooks/{id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route("/api/hooks/webhooks/{id}/replay", post(webhooks::replay))
        .route("/api/hooks/dlq/redrive", post(dlq::redrive))
        .route("/api/hooks/event-types", get(event_types::list))
        .route("/api/hooks/openapi.json", get(openapi::document))
        .route_layer(middleware::from_fn_with_state(state.clone(), idempotency))
        // The web console's static files (after the idempotency layer: GETs only).
        .merge(console::routes())
        // Every body read (`extract::read_body`) is within this limit.
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .fallback(not_found)
        .layer(middleware::from_fn(json_errors))
        // Outermost: every line of a request, and every job it queues, is in its trace.
        .layer(middleware::from_fn(request_span))
        .with_state(state)
}

/// One root span per request, wherever the router runs (Lambda, the local stack, the tests): its
/// log lines carry the trace id (and on Lambda the request id), and the jobs it queues (test,
/// replay, resend, redrive) carry its trace context (docs/observability.md, "Tracing"). On Lambda
/// `main` flushes the spans after each request; this layer only starts them.
async fn request_span(req: Request, next: Next) -> Response {
    let request_id = req
        .extensions()
        .get::<lambda_http::Context>()
        .map(|c| c.request_id.clone());
    let span = tracing::info_span!(
        "api.request",
        "otel.name" = %req.method(),
        "otel.kind" = "server",
    );
    telemetry::set_attribute(&span, "url.path", req.uri().path().to_owned());
    telemetry::start(
        &span,
        telemetry::Start {
            request_id: request_id.as_deref(),
            ..Default::default()
        },
    );
    next.run(req).instrument(span).await
}

async fn not_found() -> ApiError {
    ApiError::not_found("No such route.")
}

/// The safety net: any error response that is not already one of our JSON errors (a framework
/// rejection, a default 405) is rewritten into one, keeping its status and headers (e.g. `Allow`).
async fn json_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if !status.is_client_error() && !status.is_server_error() {
        return res;
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return res;
    }
    let (mut parts, _) = res.into_parts();
    let replacement = ApiError::for_status(status).into_response();
    let (rparts, body) = replacement.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (name, value) in rparts.headers.iter() {
        if name != header::CONTENT_LENGTH {
            parts.headers.insert(name.clone(), value.clone());
        }
    }
    Response::from_parts(parts, body)
}
