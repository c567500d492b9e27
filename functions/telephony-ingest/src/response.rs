//! The answer to one webhook ([`IngestResponse`]) and what became of it ([`IngestOutcome`], the
//! `outcome` log field), with the client-error answers every path shares.

use axum::http::StatusCode;
use serde_json::{json, Value};

use relay_shared::events::EventType;
use relay_shared::ids::EventId;
use relay_shared::webex::{ParseError, SecretRole};

use crate::envelope::parse_detail;

/// What happened to one request (the `outcome` log field: the snake_case variant name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum IngestOutcome {
    Queued,
    /// A Webex redelivery (the call state already holds the event): queued again under the same
    /// ids (the worker's attempt claims collapse the copies), answered 200 `duplicate`.
    Duplicate,
    Ignored,
    /// Dated outside the accepted window (older than the dedupe TTL, or in the future): 200, not relayed.
    Stale,
    /// Kept in the event log but not queued (its job exceeds the queue's message limit): 200.
    Parked,
    TooLarge,
    Unauthorized,
    BadRequest,
    Unavailable,
}

impl IngestOutcome {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The answer to one webhook, with what the request log line needs.
#[derive(Debug, Clone)]
pub struct IngestResponse {
    pub status: StatusCode,
    pub body: Value,
    pub retry_after_seconds: Option<u32>,
    pub outcome: IngestOutcome,
    pub call_id: Option<String>,
    pub event_type: Option<EventType>,
    pub event_id: Option<EventId>,
    pub deliveries: usize,
    /// Which secret verified the signature (`None`: not verified, or unsigned in insecure mode).
    pub verified_with: Option<SecretRole>,
    /// Why it failed (error descriptions only: never the body or a secret).
    pub detail: Option<String>,
}

impl IngestResponse {
    pub(crate) fn new(status: StatusCode, outcome: IngestOutcome, body: Value) -> Self {
        Self {
            status,
            body,
            retry_after_seconds: None,
            outcome,
            call_id: None,
            event_type: None,
            event_id: None,
            deliveries: 0,
            verified_with: None,
            detail: None,
        }
    }

    /// `{"error": error, "detail": detail}`, the detail also logged.
    pub(crate) fn client_error(
        status: StatusCode,
        outcome: IngestOutcome,
        error: &str,
        detail: String,
    ) -> Self {
        let mut r = Self::new(status, outcome, json!({ "error": error, "detail": detail }));
        r.detail = Some(detail);
        r
    }

    /// 413: the body exceeds `max` bytes.
    pub(crate) fn too_large(max: usize) -> Self {
        Self::client_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            IngestOutcome::TooLarge,
            "payload_too_large",
            format!("the body exceeds {max} bytes"),
        )
    }

    /// 400 naming what is wrong with the body and where.
    pub(crate) fn bad_request(e: &ParseError) -> Self {
        Self::client_error(
            StatusCode::BAD_REQUEST,
            IngestOutcome::BadRequest,
            e.code(),
            parse_detail(e),
        )
    }
}

/// Untrusted text quoted in an answer or a log line, cut to `max_chars`.
pub(crate) fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::IngestOutcome;

    #[test]
    fn outcome_log_names() {
        assert_eq!(IngestOutcome::Queued.as_str(), "queued");
        assert_eq!(IngestOutcome::Duplicate.as_str(), "duplicate");
        assert_eq!(IngestOutcome::TooLarge.as_str(), "too_large");
        assert_eq!(IngestOutcome::BadRequest.as_str(), "bad_request");
    }
}
