//! One delivery attempt: the signed POST, what its result means (delivered, retryable, permanent,
//! gone), and the attempt-log row it leaves.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use relay_shared::delivery::{
    recorded_body, AttemptRecord, AttemptStatus, AttemptSummary, DeliveryJob, ErrorClass,
};
use relay_shared::ids::AttemptId;
use relay_shared::ports::{HttpSender, OutboundRequest, OutboundResponse, SendError};
use relay_shared::secrets_at_rest::{SealError, SecretOpener};
use relay_shared::signing::{delivery_headers, recorded_headers, SignatureInput, SigningSecret};
use relay_shared::subscription::Subscription;
use relay_shared::telemetry;
use relay_shared::text::truncate_utf8;
use secrecy::ExposeSecret;
use tracing::Instrument;

use crate::config::WorkerConfig;

/// What one attempt came to (or, for a disabled subscription, why none was made).
pub(crate) struct AttemptResult {
    pub status: AttemptStatus,
    pub status_code: Option<u16>,
    pub error_class: Option<ErrorClass>,
    pub error: Option<String>,
    pub snippet: Option<String>,
    pub retry_after: Option<String>,
    /// Retrying cannot help (the target is refused or malformed): straight to the DLQ.
    pub permanent: bool,
    /// The receiver answered 410: the subscription is disabled.
    pub gone: bool,
    pub duration_ms: u64,
    /// The headers sent, signatures redacted (`signing::recorded_headers`); none when skipped.
    pub request_headers: Vec<(String, String)>,
}

impl AttemptResult {
    /// No attempt was made: the subscription is disabled.
    pub fn skipped(reason: String) -> Self {
        Self {
            status: AttemptStatus::Skipped,
            status_code: None,
            error_class: None,
            error: Some(reason),
            snippet: None,
            retry_after: None,
            permanent: false,
            gone: false,
            duration_ms: 0,
            request_headers: Vec::new(),
        }
    }

    pub fn succeeded(&self) -> bool {
        self.status == AttemptStatus::Succeeded
    }

    /// Classifies an HTTP answer: 2xx delivered, 3xx a redirect (never followed), anything else
    /// an HTTP-status failure; 410 also means gone.
    fn from_response(resp: OutboundResponse, snippet_bytes: usize, duration_ms: u64) -> Self {
        let status = resp.status;
        let (attempt_status, class, error) = match status {
            200..=299 => (AttemptStatus::Succeeded, None, None),
            300..=399 => (
                AttemptStatus::Failed,
                Some(ErrorClass::Redirect),
                Some(format!("HTTP {status}: redirects are not followed")),
            ),
            _ => (
                AttemptStatus::Failed,
                Some(ErrorClass::HttpStatus),
                Some(format!("HTTP {status}")),
            ),
        };
        Self {
            status: attempt_status,
            status_code: Some(status),
            error_class: class,
            error,
            snippet: (!resp.body_snippet.is_empty())
                .then(|| truncate_utf8(&resp.body_snippet, snippet_bytes).to_owned()),
            retry_after: resp.retry_after,
            permanent: false,
            gone: status == 410,
            duration_ms,
            request_headers: Vec::new(),
        }
    }

    /// A request that got no HTTP answer: permanent when the sender says so or the target itself
    /// is refused.
    fn from_error(e: SendError, duration_ms: u64) -> Self {
        Self {
            status: AttemptStatus::Failed,
            status_code: None,
            error_class: Some(e.class),
            error: Some(truncate_utf8(&e.message, 1024).to_owned()),
            snippet: None,
            retry_after: None,
            permanent: e.permanent
                || matches!(e.class, ErrorClass::SsrfBlocked | ErrorClass::InvalidUrl),
            gone: false,
            duration_ms,
            request_headers: Vec::new(),
        }
    }

    /// The attempt-log row `id` (the name its claim gave it) for attempt `attempt` of `job`,
    /// made at `at`, with the trace and request ids of the job's span (the worker's handler
    /// starts it from the message's trace context and the invocation's request id).
    pub fn record(
        &self,
        id: AttemptId,
        job: &DeliveryJob,
        attempt: u32,
        at: DateTime<Utc>,
    ) -> AttemptRecord {
        let ids = telemetry::current();
        AttemptRecord {
            id,
            delivery_id: job.delivery_id(),
            event_id: job.event_id,
            subscription_id: job.subscription_id,
            event_type: job.event_type,
            attempt,
            at,
            duration_ms: self.duration_ms,
            status: self.status,
            status_code: self.status_code,
            error_class: self.error_class,
            error: self.error.clone(),
            response_snippet: self.snippet.clone(),
            request_headers: self.request_headers.clone(),
            request_body: (self.status != AttemptStatus::Skipped)
                .then(|| recorded_body(job))
                .flatten(),
            trace_id: ids.as_ref().map(|i| i.trace_id.clone()),
            request_id: ids.and_then(|i| i.request_id),
        }
    }

    /// What the job itself carries about this attempt.
    pub fn summary(&self, attempt: u32, at: DateTime<Utc>) -> AttemptSummary {
        AttemptSummary {
            attempt,
            at,
            status_code: self.status_code,
            error_class: self.error_class,
        }
    }

    /// The failure in a few words, for a dead-letter reason: `HTTP 500`, `timeout`, …
    pub fn failure_summary(&self) -> String {
        match (self.status_code, self.error_class) {
            (Some(code), _) => format!("HTTP {code}"),
            (None, Some(class)) => class.as_str().to_owned(),
            (None, None) => "failure".to_owned(),
        }
    }
}

/// The secrets that sign `sub`'s deliveries at `now`, current first, opened under the
/// subscription's context (a legacy plain secret is used as it is). The current secret must open.
/// A retiring one that cannot (sealed under an earlier key, say) is left out with an error log
/// line: its signature cannot be made anyway, and the receivers already on the current secret
/// still verify. The key service unavailable for any of them is an error (retry later).
pub(crate) async fn open_secrets(
    opener: &SecretOpener,
    sub: &Subscription,
    now: DateTime<Utc>,
) -> Result<Vec<SigningSecret>, SealError> {
    let ctx = sub.secret_context();
    let mut secrets = Vec::new();
    for (i, stored) in sub.signing_secrets(now).into_iter().enumerate() {
        match opener.open(stored, &ctx).await {
            Ok(opened) => secrets.push(SigningSecret::new(opened.expose_secret())),
            Err(SealError::Rejected(detail)) if i > 0 => tracing::error!(
                subscription_id = %sub.id, error = %detail,
                "a retiring signing secret cannot be opened: signing without it"
            ),
            Err(e) => return Err(e),
        }
    }
    Ok(secrets)
}

/// The header carrying a telephony or call event's per-call sequence.
pub const SEQUENCE_HEADER: &str = "webhook-sequence";

/// One POST of `job` to `sub`'s URL, signed with `secrets` (from [`open_secrets`]): attempt
/// `attempt`, in a span of its own when trace export is on (docs/observability.md).
pub(crate) async fn post_signed(
    http: &dyn HttpSender,
    config: &WorkerConfig,
    job: &DeliveryJob,
    sub: &Subscription,
    secrets: &[SigningSecret],
    attempt: u32,
    now: DateTime<Utc>,
) -> AttemptResult {
    let delivery_id = job.delivery_id();
    let sub_id = sub.id.to_string();
    let mut headers = delivery_headers(&SignatureInput {
        delivery_id: &delivery_id,
        timestamp: now,
        event_type: job.event_type,
        subscription_id: &sub_id,
        org_id: &job.org_id,
        secrets,
        body: job.body.as_bytes(),
    });
    // The per-call sequence (docs/ordering.md): not signed, the body is (and for a call event
    // holds the same number); it only lets a receiver tell a stale delivery from a newer one.
    if let Some(sequence) = job.sequence {
        headers.push((SEQUENCE_HEADER, sequence.to_string()));
    }
    let request_headers = recorded_headers(&headers);
    let request = OutboundRequest {
        url: sub.url.clone(),
        headers,
        body: Arc::from(job.body.as_str()),
        timeout: config.delivery_timeout,
    };
    let span = attempt_span(job, sub, attempt);
    let started = Instant::now();
    let sent = http.post(request).instrument(span.clone()).await;
    let duration_ms = started.elapsed().as_millis() as u64;
    let result = match sent {
        Ok(resp) => AttemptResult::from_response(resp, config.snippet_bytes, duration_ms),
        Err(e) => AttemptResult::from_error(e, duration_ms),
    };
    if let Some(code) = result.status_code {
        span.record("http.response.status_code", code);
    }
    if !result.succeeded() {
        if let Some(class) = result.error_class {
            span.record("error.type", class.as_str());
        }
        telemetry::set_error(&span, result.failure_summary());
    }
    AttemptResult {
        request_headers,
        ..result
    }
}

/// The span of one delivery attempt (export on only: none, at no cost, otherwise), with the
/// attributes an operator looks a delivery up by. Never the URL: it may hold a token.
fn attempt_span(job: &DeliveryJob, sub: &Subscription, attempt: u32) -> tracing::Span {
    if !telemetry::enabled() {
        return tracing::Span::none();
    }
    let tracking_id = telemetry::current()
        .and_then(|i| i.tracking_id)
        .unwrap_or_default();
    tracing::info_span!(
        "delivery.attempt",
        "otel.name" = "POST webhook",
        "otel.kind" = "client",
        "http.request.method" = "POST",
        "webex.trackingid" = %tracking_id,
        "event.id" = %job.event_id,
        "event.type" = job.event_type.as_str(),
        "webhook.id" = %sub.id,
        "delivery.id" = %job.delivery_id(),
        "delivery.attempt" = attempt,
        "http.response.status_code" = tracing::field::Empty,
        "error.type" = tracing::field::Empty,
    )
}
