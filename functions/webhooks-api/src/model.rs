//! The API's JSON shapes (camelCase, as in the OpenWork webhook API the subscription API
//! extends, docs/webhooks-api.md). Request types refuse unknown fields.

use chrono::{DateTime, SecondsFormat, Utc};
use relay_shared::delivery::{AttemptRecord, AttemptStatus, ErrorClass};
use relay_shared::events::{EventType, OutboundEvent};
use relay_shared::filters::FilterExample;
use relay_shared::stats::WindowStats;
use relay_shared::subscription::{Health, Ordering, Subscription};
use serde::{Deserialize, Serialize};

use crate::extract::{non_null, nullable};

/// RFC 3339 with milliseconds and `Z` (`2025-08-14T18:53:03.419Z`).
pub fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookStatus {
    Active,
    Failing,
    Disabled,
}

/// A webhook as every response shows it (never with its secret).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: String,
    pub name: String,
    pub url: String,
    pub event_types: Vec<&'static str>,
    pub enabled: bool,
    pub status: WebhookStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    pub rate_limit_per_minute: u32,
    /// `none` or `per-call` (docs/ordering.md).
    pub ordering: &'static str,
    /// The payload filter as given (docs/call-events.md#payload-filters); absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<serde_json::Map<String, serde_json::Value>>,
    pub created_at: String,
    pub updated_at: String,
}

/// The API's name of an ordering (`validate::ordering` reads it back).
pub fn ordering_name(ordering: Ordering) -> &'static str {
    match ordering {
        Ordering::None => "none",
        Ordering::PerCall => "per-call",
    }
}

impl From<&Subscription> for Webhook {
    fn from(s: &Subscription) -> Self {
        let status = if !s.enabled {
            WebhookStatus::Disabled
        } else if s.health == Health::Failing {
            WebhookStatus::Failing
        } else {
            WebhookStatus::Active
        };
        Self {
            id: s.id.to_string(),
            name: s.name.clone(),
            url: s.url.clone(),
            event_types: s.event_types.iter().map(|t| t.as_str()).collect(),
            enabled: s.enabled,
            status,
            disabled_reason: if s.enabled {
                None
            } else {
                s.disabled_reason.clone()
            },
            rate_limit_per_minute: s.rate_limit_per_minute,
            ordering: ordering_name(s.ordering),
            filter: s.filter.as_ref().map(|f| f.as_json().clone()),
            created_at: time(s.created_at),
            updated_at: time(s.updated_at),
        }
    }
}

/// The create and rotate responses: the webhook and its (new) secret, shown this once. As a
/// response it also hands the `Idempotency-Key` store its redacted form (no `secret`,
/// `idempotency.rs`), so that a replayed answer never carries the secret.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// `None` only in the redacted form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Rotation only: until when the previous secret still signs deliveries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<String>,
}

impl WebhookWithSecret {
    /// What may be stored: the same answer without the secret.
    pub fn redacted(&self) -> Self {
        Self {
            secret: None,
            ..self.clone()
        }
    }
}

impl std::fmt::Debug for WebhookWithSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookWithSecret")
            .field("webhook", &self.webhook)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field(
                "previous_secret_expires_at",
                &self.previous_secret_expires_at,
            )
            .finish()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWebhook {
    pub name: String,
    pub url: String,
    pub event_types: Vec<String>,
    #[serde(default, deserialize_with = "non_null")]
    pub secret: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "non_null")]
    pub rate_limit_per_minute: Option<u32>,
    #[serde(default, deserialize_with = "non_null")]
    pub ordering: Option<String>,
    /// Checked by `validate::filter`; `null` is the same as absent (no filter).
    #[serde(default)]
    pub filter: Option<serde_json::Value>,
}

impl std::fmt::Debug for CreateWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateWebhook")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("event_types", &self.event_types)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("enabled", &self.enabled)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field("ordering", &self.ordering)
            .field("filter", &self.filter)
            .finish()
    }
}

/// Absent fields stay as they are; `null` is refused, except for `filter`, where it removes the
/// filter.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateWebhook {
    #[serde(default, deserialize_with = "non_null")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    pub event_types: Option<Vec<String>>,
    #[serde(default, deserialize_with = "non_null")]
    pub ordering: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "non_null")]
    pub rate_limit_per_minute: Option<u32>,
    /// Absent: unchanged; `null`: removed; an object: replaces the filter (`validate::filter`).
    #[serde(default, deserialize_with = "nullable")]
    pub filter: Option<Option<serde_json::Value>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateSecret {
    #[serde(default, deserialize_with = "non_null")]
    pub grace_period_seconds: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplayRequest {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayResponse {
    pub queued: u32,
    /// Events in the window too large for the delivery queue (ingest parked them): not queued.
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped_too_large: u32,
    /// More events than one call may replay lie in the window; call again from `nextSince`.
    pub truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_since: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedriveRequest {
    #[serde(default, deserialize_with = "non_null")]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedriveResponse {
    /// Jobs moved back to the delivery queue.
    pub moved: u32,
    /// Messages that are not delivery jobs (left in the dead-letter queue).
    pub skipped: u32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestResponse {
    pub event_id: String,
    pub event_type: &'static str,
}

/// One row of `GET /api/hooks/webhooks/{id}/deliveries`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: String,
    pub delivery_id: String,
    pub event_id: String,
    pub webhook_id: String,
    pub event_type: &'static str,
    pub attempt: u32,
    pub at: String,
    pub duration_ms: u64,
    pub status: AttemptStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_class: Option<ErrorClass>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_snippet: Option<String>,
}

impl From<&AttemptRecord> for Delivery {
    fn from(a: &AttemptRecord) -> Self {
        Self {
            id: a.id.to_string(),
            delivery_id: a.delivery_id.clone(),
            event_id: a.event_id.to_string(),
            webhook_id: a.subscription_id.to_string(),
            event_type: a.event_type.as_str(),
            attempt: a.attempt,
            at: time(a.at),
            duration_ms: a.duration_ms,
            status: a.status,
            status_code: a.status_code,
            error_class: a.error_class,
            error: a.error.clone(),
            response_snippet: a.response_snippet.clone(),
        }
    }
}

/// `GET /api/hooks/webhooks/{id}/deliveries/{attemptId}`: the row and what was sent.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: Delivery,
    /// `[name, value]` pairs in the order sent, signature values redacted.
    pub request_headers: Vec<(String, String)>,
    /// The exact body posted; `null` when it is no longer known (then `bodyUnavailable` says why).
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_unavailable: Option<&'static str>,
    /// The OpenTelemetry trace of the attempt, when tracing was on.
    pub trace_id: Option<String>,
}

/// Why an attempt's body cannot be shown.
pub mod body_unavailable {
    /// The event has left the event log (its retention ran out).
    pub const EXPIRED: &str = "expired";
    /// The event log does not keep this type and the body was too large to keep with the attempt.
    pub const NOT_RECORDED: &str = "not_recorded";
    /// No request was made (the attempt was skipped).
    pub const NOT_SENT: &str = "not_sent";
}

/// `GET /api/hooks/webhooks/{id}/stats`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsResponse {
    pub webhook_id: String,
    pub windows: StatsWindows,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatsWindows {
    #[serde(rename = "1h")]
    pub hour: WindowStatsBody,
    #[serde(rename = "24h")]
    pub day: WindowStatsBody,
}

/// One window's figures (`relay_shared::stats::WindowStats`, times as the API writes them).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowStatsBody {
    pub attempts: u64,
    pub successes: u64,
    pub failures: u64,
    pub success_rate: Option<f64>,
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
    pub last_success_at: Option<String>,
    pub last_failure_at: Option<String>,
}

impl From<WindowStats> for WindowStatsBody {
    fn from(w: WindowStats) -> Self {
        Self {
            attempts: w.attempts,
            successes: w.successes,
            failures: w.failures,
            success_rate: w.success_rate,
            p50_ms: w.p50_ms,
            p95_ms: w.p95_ms,
            last_success_at: w.last_success_at.map(time),
            last_failure_at: w.last_failure_at.map(time),
        }
    }
}

/// One row of `GET /api/hooks/events`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedEvent {
    pub id: String,
    pub event_type: &'static str,
    pub created_at: String,
    /// The body as delivered, parsed (a body that is not JSON is shown as a string).
    pub payload: serde_json::Value,
}

impl From<&OutboundEvent> for LoggedEvent {
    fn from(e: &OutboundEvent) -> Self {
        Self {
            id: e.id.to_string(),
            event_type: e.event_type.as_str(),
            created_at: time(e.created_at),
            payload: serde_json::from_str(&e.body)
                .unwrap_or_else(|_| serde_json::Value::String(e.body.clone())),
        }
    }
}

/// `POST /api/hooks/webhooks/{id}/events/{eventId}/resend`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResendResponse {
    pub event_id: String,
    pub webhook_id: String,
    /// The `webhook-id` header: the same as the event's earlier deliveries to this webhook.
    pub delivery_id: String,
    /// The new run's id.
    pub run: String,
}

/// `GET /api/hooks/dlq`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DlqDepth {
    pub approximate_messages: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeInfo {
    pub name: &'static str,
    pub description: &'static str,
    /// An example delivery body (the exact JSON a subscriber receives).
    pub example: serde_json::Value,
    /// Payload filters one might set for this type (`relay_shared::filters::examples`); absent
    /// when the type has none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filter_examples: Vec<FilterExample>,
}

pub fn event_type_names(types: &[EventType]) -> Vec<&'static str> {
    types.iter().map(|t| t.as_str()).collect()
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_secret() {
        let create: CreateWebhook = serde_json::from_value(serde_json::json!({
            "name": "n", "url": "https://x.example/", "eventTypes": ["presence:changed"],
            "secret": "caller-chosen-secret-0123456789"
        }))
        .unwrap();
        let now = Utc::now();
        let sub = Subscription::new("u", "o", "https://x.example/", vec![], "s", now);
        let shown = WebhookWithSecret {
            webhook: Webhook::from(&sub),
            secret: Some("whsec_generated-secret-0123456789".into()),
            previous_secret_expires_at: None,
        };
        for text in [format!("{create:?}"), format!("{shown:?}")] {
            assert!(!text.contains("0123456789"), "{text}");
            assert!(text.contains("<redacted>"), "{text}");
        }
        let redacted = serde_json::to_value(shown.redacted()).unwrap();
        assert!(redacted.get("secret").is_none(), "{redacted}");
        assert_eq!(redacted["id"], sub.id.to_string());
    }
}
