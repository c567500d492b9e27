//! # telephony-ingest
//!
//! The endpoint Webex calls for `telephony_calls` webhooks (`POST /webex/telephony`, API Gateway
//! HTTP API payload v2). In order: size limit (413) → signature (401) → parse (400; other
//! resources 202) → dedupe (200 duplicate / 503 in progress) → call lifecycle state → outbound
//! event (event log) → one delivery job per matching subscription → 200. Any storage or queue
//! failure answers 503 with `Retry-After` and releases the dedupe claim, so Webex's retry succeeds:
//! never a 200 for an event that is not durably queued.
//!
//! [`Ingest`] is the core, over the ports; [`router`] is the `axum::Router` that Lambda serves with
//! `lambda_http::run` and the local stack with `axum::serve`.

pub mod config;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use relay_shared::call_state::{ApplyOutcome, CallObservation, CallRecord};
use relay_shared::delivery::DeliveryJob;
use relay_shared::error::StoreError;
use relay_shared::events::{telephony_body, EventType, OutboundEvent};
use relay_shared::ids::EventId;
use relay_shared::ports::{Claim, Clock, DeliveryQueue, QueuedJob, Stores};
use relay_shared::webex::{
    parse_json, verify_webex_signature, EnvelopeHead, ParseError, TelephonyCallData,
    TelephonyEnvelope, SPARK_SIGNATURE_HEADER, TELEPHONY_RESOURCE, WEBEX_SIGNATURE_HEADER,
};

pub use config::{IngestConfig, WebhookAuth, MAX_BODY_BYTES};

/// The route Webex's `telephony_calls` webhook targets.
pub const ROUTE: &str = "/webex/telephony";

/// What happened to one request (the `outcome` log field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Queued,
    Duplicate,
    InProgress,
    Ignored,
    TooLarge,
    Unauthorized,
    BadRequest,
    Unavailable,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Queued => "queued",
            Outcome::Duplicate => "duplicate",
            Outcome::InProgress => "in_progress",
            Outcome::Ignored => "ignored",
            Outcome::TooLarge => "too_large",
            Outcome::Unauthorized => "unauthorized",
            Outcome::BadRequest => "bad_request",
            Outcome::Unavailable => "unavailable",
        }
    }
}

/// The answer to one webhook, with what the request log line needs.
#[derive(Debug, Clone)]
pub struct IngestResponse {
    pub status: StatusCode,
    pub body: Value,
    pub retry_after_seconds: Option<u32>,
    pub outcome: Outcome,
    pub call_id: Option<String>,
    pub event_type: Option<EventType>,
    pub event_id: Option<EventId>,
    pub deliveries: usize,
    /// Why it failed (error descriptions only: never the body or a secret).
    pub detail: Option<String>,
}

impl IngestResponse {
    fn new(status: StatusCode, outcome: Outcome, body: Value) -> Self {
        Self {
            status,
            body,
            retry_after_seconds: None,
            outcome,
            call_id: None,
            event_type: None,
            event_id: None,
            deliveries: 0,
            detail: None,
        }
    }

    fn client_error(status: StatusCode, outcome: Outcome, error: &str, detail: String) -> Self {
        let mut r = Self::new(status, outcome, json!({ "error": error, "detail": detail }));
        r.detail = Some(detail);
        r
    }
}

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

/// A failure after the dedupe claim: the claim is released and the caller answers 503.
#[derive(Debug, thiserror::Error)]
enum Unavailable {
    #[error("call state: {0}")]
    CallState(StoreError),
    #[error("subscriptions: {0}")]
    Subscriptions(StoreError),
    #[error("event log: {0}")]
    EventLog(StoreError),
    #[error("delivery queue: {0}")]
    Queue(relay_shared::error::QueueError),
}

/// The ingest core, over the ports.
pub struct Ingest {
    stores: Stores,
    queue: Arc<dyn DeliveryQueue>,
    clock: Arc<dyn Clock>,
    config: IngestConfig,
}

impl Ingest {
    pub fn new(
        stores: Stores,
        queue: Arc<dyn DeliveryQueue>,
        clock: Arc<dyn Clock>,
        config: IngestConfig,
    ) -> Self {
        Self {
            stores,
            queue,
            clock,
            config,
        }
    }

    pub fn config(&self) -> &IngestConfig {
        &self.config
    }

    /// Handles one webhook: the raw body bytes exactly as received and the signature header.
    pub async fn handle(&self, body: &[u8], signature: Option<&str>) -> IngestResponse {
        // 1. Size.
        if body.len() > self.config.max_body_bytes {
            return too_large(self.config.max_body_bytes);
        }
        // 2. Signature over the raw bytes.
        if let WebhookAuth::Secret(secret) = &self.config.auth {
            if let Err(e) = verify_webex_signature(secret, body, signature) {
                return IngestResponse::client_error(
                    StatusCode::UNAUTHORIZED,
                    Outcome::Unauthorized,
                    "invalid_signature",
                    e.to_string(),
                );
            }
        }
        // 3. Parse: route on resource/event first, then the typed envelope.
        let envelope = match parse_envelope(body) {
            Ok(e) => e,
            Err(Unparsed::OtherResource(resource)) => {
                let resource = truncate(&resource, 64);
                let mut r = IngestResponse::new(
                    StatusCode::ACCEPTED,
                    Outcome::Ignored,
                    json!({ "status": "ignored", "note": format!("resource `{resource}` is not handled here: this endpoint relays `{TELEPHONY_RESOURCE}` only") }),
                );
                r.detail = Some(format!("resource {resource}"));
                return r;
            }
            Err(Unparsed::Invalid(e)) => return bad_request(&e),
        };
        let call_id = envelope.data.call_id.clone();
        let Some(event_type) = EventType::from_telephony_event(&envelope.event) else {
            let mut r = IngestResponse::new(
                StatusCode::ACCEPTED,
                Outcome::Ignored,
                json!({ "status": "ignored", "note": format!("event `{}` is not one of created, updated, deleted", truncate(&envelope.event, 64)) }),
            );
            r.call_id = Some(call_id);
            return r;
        };

        let key = dedupe_key(&envelope.data);
        let event_id = EventId::derived(event_millis(&envelope.data), key.as_bytes());
        let mut resp = self.process(&envelope, event_type, &key, event_id).await;
        resp.call_id = Some(call_id);
        resp.event_type = Some(event_type);
        resp.event_id = Some(event_id);
        resp
    }

    async fn process(
        &self,
        envelope: &TelephonyEnvelope,
        event_type: EventType,
        key: &str,
        event_id: EventId,
    ) -> IngestResponse {
        let now = self.clock.now();
        // 4. Dedupe claim.
        let claim = self
            .stores
            .dedupe
            .claim(
                key,
                now,
                now + self.config.dedupe_lease,
                now + self.config.dedupe_ttl,
            )
            .await;
        match claim {
            Ok(Claim::Claimed) => {}
            Ok(Claim::Done) => {
                return IngestResponse::new(
                    StatusCode::OK,
                    Outcome::Duplicate,
                    json!({ "status": "duplicate", "eventId": event_id }),
                );
            }
            Ok(Claim::InProgress) => {
                let mut r = IngestResponse::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Outcome::InProgress,
                    json!({ "error": "in_progress", "detail": "this event is being processed by another request; retry later" }),
                );
                r.retry_after_seconds = Some(self.config.retry_after_seconds);
                return r;
            }
            Err(e) => return self.unavailable(format!("dedupe: {e}")),
        }

        match self.deliver(envelope, event_type, event_id, now).await {
            Ok(deliveries) => {
                if let Err(e) = self
                    .stores
                    .dedupe
                    .complete(key, now + self.config.dedupe_ttl)
                    .await
                {
                    // The jobs are queued: answering 503 would only make Webex send it again. The
                    // claim's lease runs out and a later duplicate would be re-queued with the same
                    // event id (receivers dedupe on `webhook-id`).
                    tracing::warn!(error = %e, "could not mark the dedupe record done; the event is queued");
                }
                let mut r = IngestResponse::new(
                    StatusCode::OK,
                    Outcome::Queued,
                    json!({ "status": "queued", "deliveries": deliveries, "eventId": event_id }),
                );
                r.deliveries = deliveries;
                r
            }
            Err(e) => {
                if let Err(re) = self.stores.dedupe.release(key).await {
                    tracing::warn!(error = %re, "could not release the dedupe claim; it expires with its lease");
                }
                self.unavailable(e.to_string())
            }
        }
    }

    /// Steps 5–7: call state, event log, fan-out. Returns the number of delivery jobs queued.
    async fn deliver(
        &self,
        envelope: &TelephonyEnvelope,
        event_type: EventType,
        event_id: EventId,
        now: DateTime<Utc>,
    ) -> Result<usize, Unavailable> {
        self.record_call_state(envelope, now)
            .await
            .map_err(Unavailable::CallState)?;

        let event = OutboundEvent {
            id: event_id,
            event_type,
            org_id: envelope.org_id.clone(),
            created_at: now,
            body: telephony_body(envelope, now),
        };
        match self
            .stores
            .events
            .append(&event, now + self.config.event_retention)
            .await
        {
            // A retry of an event already logged (same derived id).
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(Unavailable::EventLog(e)),
        }

        let subs = self
            .stores
            .subscriptions
            .list_by_org(&envelope.org_id)
            .await
            .map_err(Unavailable::Subscriptions)?;
        let jobs: Vec<QueuedJob> = subs
            .iter()
            .filter(|s| s.org_id == envelope.org_id && s.wants(event_type))
            .map(|s| QueuedJob {
                job: DeliveryJob::for_event(&event, s.id),
                delay_seconds: 0,
            })
            .collect();
        if !jobs.is_empty() {
            self.queue.send(&jobs).await.map_err(Unavailable::Queue)?;
        }
        Ok(jobs.len())
    }

    /// Step 5: the call's lifecycle record, with bounded optimistic-concurrency retries.
    async fn record_call_state(
        &self,
        envelope: &TelephonyEnvelope,
        now: DateTime<Utc>,
    ) -> Result<ApplyOutcome, StoreError> {
        let data = &envelope.data;
        let obs = CallObservation {
            stage: envelope.event.clone(),
            event_type: data.event_type.as_str().to_owned(),
            state: data.state.as_ref().map(|s| s.as_str().to_owned()),
            event_timestamp: data.event_timestamp.as_str().to_owned(),
            event_time: data.event_timestamp.at(),
        };
        let expires_at = (now + self.config.call_state_ttl).timestamp();
        let attempts = self.config.max_call_state_attempts.max(1);
        for attempt in 1..=attempts {
            let (mut record, outcome) = match self.stores.calls.get(&data.call_id).await? {
                None => (
                    CallRecord::new(
                        data.call_id.clone(),
                        data.call_session_id.clone(),
                        envelope.org_id.clone(),
                        obs.clone(),
                        expires_at,
                    ),
                    ApplyOutcome::Advanced,
                ),
                Some(mut r) => {
                    let o = r.apply(obs.clone(), expires_at);
                    if r.call_session_id.is_none() {
                        r.call_session_id = data.call_session_id.clone();
                    }
                    (r, o)
                }
            };
            if outcome == ApplyOutcome::AlreadySeen {
                return Ok(outcome);
            }
            record.version += 1;
            match self.stores.calls.put(&record).await {
                Ok(()) => return Ok(outcome),
                Err(StoreError::Conflict(msg)) if attempt < attempts => {
                    tracing::debug!(attempt, conflict = %msg, "call state write raced; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(5 * u64::from(attempt)))
                        .await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict(format!(
            "call state still contended after {attempts} attempts"
        )))
    }

    fn unavailable(&self, detail: String) -> IngestResponse {
        let mut r = IngestResponse::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Outcome::Unavailable,
            json!({ "error": "unavailable", "detail": "the event could not be stored or queued; retry later" }),
        );
        r.retry_after_seconds = Some(self.config.retry_after_seconds);
        r.detail = Some(detail);
        r
    }
}

/// Why a body is not a telephony envelope.
#[derive(Debug)]
pub enum Unparsed {
    /// A well-formed envelope of another resource (acknowledged, not relayed).
    OtherResource(String),
    /// Not JSON, or missing/mistyped fields: what and where.
    Invalid(ParseError),
}

/// Parses a webhook body: the `EnvelopeHead` (`resource`, `event`) decides the route, then the typed
/// `TelephonyEnvelope`. The common case takes one plain `serde_json` pass; only a body that fails it
/// is re-parsed with `parse_json` for an error naming the field (same outcome, less work).
pub fn parse_envelope(body: &[u8]) -> Result<TelephonyEnvelope, Unparsed> {
    if let Ok(env) = serde_json::from_slice::<TelephonyEnvelope>(body) {
        if env.resource == TELEPHONY_RESOURCE {
            return Ok(env);
        }
        return Err(Unparsed::OtherResource(env.resource));
    }
    let head = parse_json::<EnvelopeHead>(body).map_err(Unparsed::Invalid)?;
    if head.resource != TELEPHONY_RESOURCE {
        return Err(Unparsed::OtherResource(head.resource));
    }
    parse_json::<TelephonyEnvelope>(body).map_err(Unparsed::Invalid)
}

/// The dedupe key of a telephony event: `(callSessionId, callId, data.eventType, eventTimestamp)`,
/// hashed so that a key has a bounded length whatever Webex sends. (Webex's top-level `id` is the
/// webhook registration, the same for every event.)
pub fn dedupe_key(data: &TelephonyCallData) -> String {
    let mut h = Sha256::new();
    for part in [
        data.call_session_id.as_deref().unwrap_or(""),
        data.call_id.as_str(),
        data.event_type.as_str(),
        data.event_timestamp.as_str(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    format!("tel:{}", hex::encode(h.finalize()))
}

/// `data.eventTimestamp` in ms since the epoch (clamped to the ULID range): the time part of the
/// derived event id.
pub fn event_millis(data: &TelephonyCallData) -> u64 {
    u64::try_from(data.event_timestamp.at().timestamp_millis())
        .unwrap_or(0)
        .min((1 << 48) - 1)
}

fn too_large(max: usize) -> IngestResponse {
    IngestResponse::client_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        Outcome::TooLarge,
        "payload_too_large",
        format!("the body exceeds {max} bytes"),
    )
}

fn bad_request(e: &ParseError) -> IngestResponse {
    IngestResponse::client_error(
        StatusCode::BAD_REQUEST,
        Outcome::BadRequest,
        e.code(),
        parse_detail(e),
    )
}

/// What and where: `missing field `$.data.callId``, `invalid type: … at `$.data.eventTimestamp``,
/// `expected value (line 1, column 1)`.
pub fn parse_detail(e: &ParseError) -> String {
    match e {
        ParseError::InvalidField { path, message } => {
            if let Some(field) = message
                .strip_prefix("missing field `")
                .and_then(|m| m.strip_suffix('`'))
            {
                format!("missing field `{path}.{field}`")
            } else {
                format!("{message} at `{path}`")
            }
        }
        ParseError::InvalidJson { .. } => e.to_string(),
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// The router: `POST /webex/telephony`.
pub fn router(ingest: Arc<Ingest>) -> Router {
    Router::new()
        .route(ROUTE, post(handle_http))
        .with_state(ingest)
}

async fn handle_http(State(ingest): State<Arc<Ingest>>, req: Request) -> Response {
    let started = Instant::now();
    let request_id = request_id(&req);
    let (parts, body) = req.into_parts();
    let max = ingest.config.max_body_bytes;
    let resp = match read_body(&parts.headers, body, max).await {
        Err(resp) => resp,
        Ok(bytes) => {
            ingest
                .handle(&bytes, signature_header(&parts.headers))
                .await
        }
    };
    log_request(
        &resp,
        &request_id,
        ingest.config.auth.is_insecure(),
        started,
    );
    resp.into_response()
}

/// The raw body bytes (lambda_http has already decoded a base64 body from API Gateway), refused
/// early when `Content-Length` or the stream exceeds `max`.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    max: usize,
) -> Result<bytes::Bytes, IngestResponse> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large(max));
    }
    match axum::body::to_bytes(body, max).await {
        Ok(b) => Ok(b),
        Err(e) => {
            let too_long = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.to_string().to_ascii_lowercase().contains("length limit");
            if too_long {
                Err(too_large(max))
            } else {
                Err(IngestResponse::client_error(
                    StatusCode::BAD_REQUEST,
                    Outcome::BadRequest,
                    "unreadable_body",
                    e.to_string(),
                ))
            }
        }
    }
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

fn log_request(resp: &IngestResponse, request_id: &str, insecure: bool, started: Instant) {
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let call_id = resp.call_id.as_deref().unwrap_or("");
    let event_type = resp.event_type.map(EventType::as_str).unwrap_or("");
    let event_id = resp.event_id.map(|e| e.to_string()).unwrap_or_default();
    let detail = resp.detail.as_deref().unwrap_or("");
    let status = resp.status.as_u16();
    let outcome = resp.outcome.as_str();
    let deliveries = resp.deliveries;
    if resp.status.is_server_error() || insecure {
        tracing::warn!(
            request_id,
            call_id,
            event_type,
            event_id,
            outcome,
            status,
            deliveries,
            duration_ms,
            detail,
            insecure_unsigned = insecure,
            "telephony webhook"
        );
    } else {
        tracing::info!(
            request_id,
            call_id,
            event_type,
            event_id,
            outcome,
            status,
            deliveries,
            duration_ms,
            detail,
            "telephony webhook"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_detail_names_the_field() {
        let e = parse_json::<TelephonyEnvelope>(br#"{"resource":"telephony_calls","event":"created","orgId":"o","data":{"eventType":"received","eventTimestamp":"2025-08-14T18:52:41.729Z"}}"#).unwrap_err();
        assert_eq!(parse_detail(&e), "missing field `$.data.callId`");
        let e = parse_json::<TelephonyEnvelope>(
            br#"{"resource":"telephony_calls","event":"created","data":{}}"#,
        )
        .unwrap_err();
        assert!(
            parse_detail(&e).contains("orgId") || parse_detail(&e).contains("$.data"),
            "{}",
            parse_detail(&e)
        );
        let e = parse_json::<TelephonyEnvelope>(b"{").unwrap_err();
        assert!(parse_detail(&e).contains("line 1"), "{}", parse_detail(&e));
    }

    #[test]
    fn dedupe_key_is_stable_and_discriminating() {
        let d: TelephonyCallData = serde_json::from_str(r#"{"eventType":"received","eventTimestamp":"2025-08-14T18:52:41.729Z","callId":"c","callSessionId":"s"}"#).unwrap();
        let mut d2 = d.clone();
        assert_eq!(dedupe_key(&d), dedupe_key(&d2));
        d2.event_type = "connected".into();
        assert_ne!(dedupe_key(&d), dedupe_key(&d2));
        assert_eq!(event_millis(&d), 1_755_197_561_729);
    }
}
