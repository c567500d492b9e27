//! The fixtures every suite builds on.

use chrono::{DateTime, Utc};
use relay_shared::delivery::{AttemptRecord, AttemptStatus};
use relay_shared::events::EventType;
use relay_shared::ids::{delivery_id, AttemptId, EventId, SubscriptionId};
use relay_shared::subscription::Subscription;

/// The owner of the fixtures' subscriptions.
pub const OWNER: &str = "user-1";
/// The receiver the fixtures' subscriptions name (nothing listens there; tests with a real
/// receiver set `url`).
pub const RECEIVER: &str = "https://receiver.example/hook";
/// The signing secret of the fixtures' subscriptions (the Standard Webhooks spec's example).
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A subscription of `org` to `types`, created now: owner [`OWNER`], url [`RECEIVER`], secret
/// [`SECRET`]. Set other fields with struct-update syntax.
pub fn subscription(org: &str, types: &[EventType]) -> Subscription {
    subscription_at(org, types, Utc::now())
}

/// [`subscription`] created at `at` (its id is stamped `at`, so ids sort by creation).
pub fn subscription_at(org: &str, types: &[EventType], at: DateTime<Utc>) -> Subscription {
    Subscription::new(OWNER, org, RECEIVER, types.to_vec(), SECRET, at)
}

/// Attempt `attempt` of delivering `event_id` to `sub` at `at`, with the given outcome: HTTP 200
/// when it succeeded, 500 otherwise, 12 ms, body snippet `ok`. Its id is stamped `at`.
pub fn attempt(
    sub: SubscriptionId,
    event_id: EventId,
    attempt: u32,
    status: AttemptStatus,
    at: DateTime<Utc>,
) -> AttemptRecord {
    let code = if status == AttemptStatus::Succeeded {
        200
    } else {
        500
    };
    AttemptRecord {
        id: AttemptId::new_at(at.timestamp_millis() as u64),
        delivery_id: delivery_id(&event_id, &sub),
        event_id,
        subscription_id: sub,
        event_type: EventType::TelephonyCreated,
        attempt,
        at,
        duration_ms: 12,
        status,
        status_code: Some(code),
        error_class: None,
        error: None,
        response_snippet: Some("ok".into()),
        request_headers: vec![],
        request_body: None,
        trace_id: None,
        request_id: None,
    }
}
