//! A delivery job (one event for one subscription, as queued) and the attempt log records.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use strum::{IntoStaticStr, VariantArray};

use crate::events::{EventType, OutboundEvent};
use crate::ids::{delivery_id, AttemptId, EventId, SubscriptionId};
use crate::subscription::{Ordering, Subscription};

/// How long the delivery worker remembers an attempt claim (`DeliveryJob::attempt_claim_key`),
/// in days: within it, a second copy of a job (an SQS redelivery, or a Webex redelivery the
/// ingest queued again under the same deterministic event id) is recognised and not POSTed
/// again. The ingest's freshness window (`DEDUPE_TTL_HOURS`) plus the future clock skew it
/// accepts may not exceed it (telephony-ingest's `MAX_DEDUPE_TTL_HOURS` is derived from both), or
/// a re-sent capture could arrive after the worker forgot it.
pub const ATTEMPT_CLAIM_DAYS: i64 = 5;

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
    /// The event's place in its call (telephony and call events): sent as the
    /// `webhook-sequence` header, so a receiver without ordering can drop a stale delivery
    /// (docs/ordering.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// Set for a per-call-ordered webhook (docs/ordering.md): the FIFO message group, one per
    /// webhook and call. Such a job goes to the ordered queue and is never re-sent: a retry holds
    /// its message (and so its group) back on the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_key: Option<String>,
}

/// The call a telephony or call event belongs to, and its per-call sequence: for a `call:*`
/// event its body's `sequence`, for a raw `telephony:*` event its `data.eventTimestamp` in ms
/// since the epoch (Webex's order of the leg's events, the one ingest's call state keeps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallPosition<'a> {
    pub call_id: &'a str,
    pub sequence: u64,
}

/// The call of a logged event, read back from its body (replay: the event log keeps the bodies
/// as delivered): `(items.data.callId, items.data.eventTimestamp in ms)` for a `telephony:*`
/// event (`{"Payload","timestamp","items":<envelope>,"orgId"}`, the telephony webhook contract),
/// the same sequence ingest gave it; `(data.callId, sequence)` for a `call:*` one
/// (`{"type","sequence","timestamp","orgId","data":{…}}`, docs/call-events.md). `None` for other
/// events or a body without them.
pub fn call_of_body(event_type: EventType, body: &str) -> Option<(String, u64)> {
    let telephony = matches!(
        event_type,
        EventType::TelephonyCreated | EventType::TelephonyUpdated | EventType::TelephonyDeleted
    );
    if !telephony && !event_type.is_call_event() {
        return None;
    }
    let doc: serde_json::Value = serde_json::from_str(body).ok()?;
    if telephony {
        let data = doc.get("items")?.get("data")?;
        let at: DateTime<Utc> = data.get("eventTimestamp")?.as_str()?.parse().ok()?;
        let call_id = data.get("callId")?.as_str()?.to_owned();
        return Some((call_id, u64::try_from(at.timestamp_millis()).ok()?));
    }
    let call_id = doc.get("data")?.get("callId")?.as_str()?.to_owned();
    Some((call_id, doc.get("sequence")?.as_u64()?))
}

/// Longest FIFO `MessageGroupId` SQS accepts.
const MAX_GROUP_ID: usize = 128;

/// The message group of a per-call-ordered job: `<webhook id>:<callId>`, or, when the call id is
/// long or holds characters SQS refuses in a group id, `<webhook id>:#<sha-256 of it, hex>`.
pub fn ordering_key(subscription_id: &SubscriptionId, call_id: &str) -> String {
    let plain = format!("{subscription_id}:{call_id}");
    let allowed = |c: char| c.is_ascii_alphanumeric() || c.is_ascii_punctuation();
    if plain.len() <= MAX_GROUP_ID && call_id.chars().all(allowed) && !call_id.starts_with('#') {
        return plain;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(call_id.as_bytes());
    format!("{subscription_id}:#{}", hex::encode(digest))
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
            sequence: None,
            ordering_key: None,
        }
    }

    /// The job of `event` for `sub` (fan-out): with the event's per-call sequence, and in the
    /// call's message group when `sub` asked for per-call ordering.
    pub fn for_subscriber(
        event: &OutboundEvent,
        sub: &Subscription,
        call: Option<CallPosition<'_>>,
    ) -> Self {
        let mut job = Self::for_event(event, sub.id);
        if let Some(call) = call {
            job.sequence = Some(call.sequence);
            if sub.ordering == Ordering::PerCall {
                job.ordering_key = Some(ordering_key(&sub.id, call.call_id));
            }
        }
        job
    }

    /// A new run of a logged event for `sub` (replay, resend): the same sequence and, for a
    /// per-call-ordered webhook, the same message group as at ingest (read back from the body,
    /// [`call_of_body`]), with no attempts and a run id of its own ([`Self::start_new_run`]).
    pub fn rerun(event: &OutboundEvent, sub: &Subscription) -> Self {
        let call = call_of_body(event.event_type, &event.body);
        let position = call.as_ref().map(|(call_id, sequence)| CallPosition {
            call_id,
            sequence: *sequence,
        });
        let mut job = Self::for_subscriber(event, sub, position);
        job.start_new_run();
        job
    }

    /// Does this job go through the ordered (FIFO) queue?
    pub fn is_ordered(&self) -> bool {
        self.ordering_key.is_some()
    }

    /// The FIFO deduplication id: one per delivery, run and attempt, so a fan-out re-sent after a
    /// queue failure collapses in SQS's five-minute window (and, later, at the worker's claim).
    pub fn deduplication_id(&self) -> String {
        use sha2::Digest;
        let key = format!(
            "{}:{}#{}",
            self.delivery_id(),
            self.run,
            self.next_attempt()
        );
        hex::encode(sha2::Sha256::digest(key.as_bytes()))
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
        self.claim_key(self.next_attempt())
    }

    /// The key under which the worker claims attempt `attempt` of this run.
    pub fn claim_key(&self, attempt: u32) -> String {
        format!("delivery:{}:{}#{attempt}", self.delivery_id(), self.run)
    }

    /// An ordered job's record that attempt `attempt` failed and the message was held back for
    /// the next one (its body, never re-sent, cannot say so): the worker finds the next attempt
    /// of an ordered job by these (docs/ordering.md).
    pub fn held_attempt_key(&self, attempt: u32) -> String {
        format!("{}:held", self.claim_key(attempt))
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
    /// The headers sent, in order, signatures redacted (`signing::recorded_headers`); empty
    /// when no request was made, and in records written before they were kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_headers: Vec<(String, String)>,
    /// The body posted, for an event the event log does not keep ([`body_kept_with_attempt`]) and
    /// of at most [`MAX_RECORDED_BODY`] bytes; the others' bodies are read from the event log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body: Option<String>,
    /// The W3C trace id of the attempt (the ingest request's trace, carried through the queue;
    /// docs/observability.md, "Tracing"); none in records written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The worker invocation's request id (Lambda's `requestId`; none in the local stack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The largest body an attempt record keeps itself (a DynamoDB item holds 400 KB; an attempt row
/// should stay a few KB).
pub const MAX_RECORDED_BODY: usize = 4096;

/// Is the body of an event of this type kept with its attempts (then only up to
/// [`MAX_RECORDED_BODY`])? Those the event log does not keep: test events and operational events
/// (docs/operational-events.md), made by the API and the worker rather than logged by ingest.
pub fn body_kept_with_attempt(event_type: EventType) -> bool {
    !event_type.is_logged()
}

/// The body an attempt record of `job` keeps, if any ([`body_kept_with_attempt`]).
pub fn recorded_body(job: &DeliveryJob) -> Option<String> {
    (body_kept_with_attempt(job.event_type) && job.body.len() <= MAX_RECORDED_BODY)
        .then(|| job.body.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{EventId, SubscriptionId};

    #[test]
    fn ordering_keys_are_per_webhook_and_call_and_fit_sqs() {
        let sub = SubscriptionId::new_at(2);
        let key = ordering_key(&sub, "call-1");
        assert_eq!(key, format!("{sub}:call-1"));
        assert_ne!(key, ordering_key(&SubscriptionId::new_at(3), "call-1"));
        for odd in ["x".repeat(200), "ça va".to_owned(), "#call".to_owned()] {
            let hashed = ordering_key(&sub, &odd);
            assert!(hashed.len() <= MAX_GROUP_ID && hashed.starts_with(&format!("{sub}:#")));
        }
    }

    /// On the bodies as delivered and logged, not made-up shapes: the captured seed event through
    /// `telephony_body`, and a derived call event through `call_events::body`.
    #[test]
    fn a_logged_event_tells_its_call_and_sequence() {
        let seed: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/seed001/updated.json"))
                .unwrap();
        let envelope: crate::webex::TelephonyEnvelope =
            serde_json::from_value(seed["items"].clone()).unwrap();
        let raw = crate::events::telephony_body(&envelope, Utc::now());
        let at = envelope.data.event_timestamp.at();
        let expected = (
            envelope.data.call_id.clone(),
            u64::try_from(at.timestamp_millis()).unwrap(),
        );
        assert_eq!(
            call_of_body(EventType::TelephonyUpdated, &raw),
            Some(expected.clone())
        );
        let applied = crate::call_events::apply(None, &envelope, 100);
        let mark = applied.marks.first().expect("the seed event rings");
        let call = crate::call_events::body(mark, &applied.record.leg, &envelope);
        assert_eq!(
            call_of_body(mark.event, &call),
            Some((expected.0, mark.seq))
        );
        assert_eq!(call_of_body(EventType::PresenceChanged, &raw), None);
    }

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
