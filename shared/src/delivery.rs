//! A delivery job (one event for one subscription, as queued) and the attempt log records.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use strum::{IntoStaticStr, VariantArray};

use crate::events::{EventType, OutboundEvent};
use crate::ids::{delivery_id, AttemptId, EventId, SubscriptionId};

/// Why an attempt failed, when it did not get an HTTP status. The names come from one rule,
/// snake_case, applied by serde and by strum alike (`as_str`; a test checks they agree).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, IntoStaticStr, VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ErrorClass {
    Timeout,
    Connect,
    Dns,
    Tls,
    SsrfBlocked,
    Redirect,
    HttpStatus,
    InvalidUrl,
    Other,
}

impl ErrorClass {
    /// The name as stored in the attempt log and logged (`ssrf_blocked`, …).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptStatus {
    Succeeded,
    Failed,
    Skipped,
}

/// What the job carries about its earlier attempts (the attempt log has the full records).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptSummary {
    pub attempt: u32,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<ErrorClass>,
}

/// One SQS message: deliver `body` for `event_id` to `subscription_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryJob {
    pub event_id: EventId,
    pub subscription_id: SubscriptionId,
    pub event_type: EventType,
    pub org_id: String,
    /// The exact compact JSON bytes to POST.
    pub body: String,
    #[serde(default)]
    pub attempts: Vec<AttemptSummary>,
    /// Not to be attempted before this instant (backoff longer than SQS's 15-minute delay, or a
    /// rate-limit deferral).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
    /// Set when the job was parked in the dead-letter queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_reason: Option<String>,
    /// Which pass through the retry schedule this is: empty for the first (so a fan-out retried
    /// after a queue failure is recognised as the same run), a fresh id for a replay or redrive.
    /// The worker claims each (webhook-id, run, attempt) once, so a duplicate queue message
    /// never POSTs twice.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run: String,
}

impl DeliveryJob {
    pub fn for_event(event: &OutboundEvent, subscription_id: SubscriptionId) -> Self {
        Self {
            event_id: event.id,
            subscription_id,
            event_type: event.event_type,
            org_id: event.org_id.clone(),
            body: event.body.clone(),
            attempts: Vec::new(),
            not_before: None,
            dead_letter_reason: None,
            run: String::new(),
        }
    }

    /// Starts a new pass through the retry schedule (replay, DLQ redrive): no attempts yet, and
    /// a run id of its own so it is not mistaken for a duplicate of the earlier pass.
    pub fn start_new_run(&mut self) {
        self.attempts.clear();
        self.not_before = None;
        self.dead_letter_reason = None;
        self.run = ulid::Ulid::new().to_string();
    }

    /// The key under which the worker claims the next attempt.
    pub fn attempt_claim_key(&self) -> String {
        format!(
            "delivery:{}:{}#{}",
            self.delivery_id(),
            self.run,
            self.next_attempt()
        )
    }

    /// Standard Webhooks `webhook-id`, stable across retries.
    pub fn delivery_id(&self) -> String {
        delivery_id(&self.event_id, &self.subscription_id)
    }

    /// The number the next attempt will have (1-based).
    pub fn next_attempt(&self) -> u32 {
        self.attempts.len() as u32 + 1
    }
}

/// One row of the attempt log (`GET /api/hooks/webhooks/{id}/deliveries`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRecord {
    pub id: AttemptId,
    /// The `webhook-id` header value.
    pub delivery_id: String,
    pub event_id: EventId,
    pub subscription_id: SubscriptionId,
    pub event_type: EventType,
    pub attempt: u32,
    pub at: DateTime<Utc>,
    pub duration_ms: u64,
    pub status: AttemptStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<ErrorClass>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The first KiB of the response body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_snippet: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{EventId, SubscriptionId};

    #[test]
    fn error_class_names_match_serde() {
        for c in ErrorClass::VARIANTS {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }

    #[test]
    fn claim_keys_separate_attempts_and_runs_but_not_copies() {
        let event = OutboundEvent {
            id: EventId::new_at(1),
            event_type: EventType::TelephonyCreated,
            org_id: "o".into(),
            created_at: Utc::now(),
            body: "{}".into(),
        };
        let sub = SubscriptionId::new_at(2);
        let first = DeliveryJob::for_event(&event, sub);
        assert_eq!(
            first.attempt_claim_key(),
            DeliveryJob::for_event(&event, sub).attempt_claim_key(),
            "a re-sent fan-out is the same run"
        );
        let mut second_attempt = first.clone();
        second_attempt.attempts.push(AttemptSummary {
            attempt: 1,
            at: Utc::now(),
            status_code: Some(500),
            error_class: None,
        });
        assert_ne!(
            first.attempt_claim_key(),
            second_attempt.attempt_claim_key()
        );
        let mut redriven = second_attempt.clone();
        redriven.dead_letter_reason = Some("x".into());
        redriven.start_new_run();
        assert!(redriven.attempts.is_empty() && redriven.dead_letter_reason.is_none());
        assert_ne!(
            first.attempt_claim_key(),
            redriven.attempt_claim_key(),
            "a redrive is a new run"
        );
        assert_eq!(
            redriven.delivery_id(),
            first.delivery_id(),
            "receivers still see one webhook-id"
        );
        let json = serde_json::to_string(&first).unwrap();
        assert!(
            !json.contains("\"run\""),
            "the first run adds nothing to the message"
        );
        assert_eq!(serde_json::from_str::<DeliveryJob>(&json).unwrap(), first);
    }
}
