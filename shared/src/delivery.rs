//! A delivery job (one event for one subscription, as queued) and the attempt log records.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::events::{EventType, OutboundEvent};
use crate::ids::{delivery_id, AttemptId, EventId, SubscriptionId};

/// Why an attempt failed, when it did not get an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
        }
    }

    /// Standard Webhooks `webhook-id`, stable across retries.
    pub fn webhook_id(&self) -> String {
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
