//! Test data.

use chrono::{DateTime, Duration, DurationRound, Utc};
use relay_shared::auth::{ApiKeyRecord, Role};
use relay_shared::call_state::{CallObservation, CallRecord};
use relay_shared::delivery::{AttemptRecord, AttemptStatus, DeliveryJob};
use relay_shared::events::{EventType, OutboundEvent};
use relay_shared::ids::{EventId, SubscriptionId};
use relay_shared::subscription::Subscription;

/// Now, on a whole second (stores keep `expires_at` in seconds).
pub fn now() -> DateTime<Utc> {
    Utc::now()
        .duration_trunc(Duration::seconds(1))
        .expect("truncate")
}

pub fn millis(at: DateTime<Utc>) -> u64 {
    at.timestamp_millis() as u64
}

/// A subscription whose id is stamped `ms`, so ids sort in creation order.
pub fn subscription(owner: &str, org: &str, ms: u64) -> Subscription {
    let at = DateTime::from_timestamp_millis(ms as i64).expect("time");
    let types = [EventType::TelephonyCreated, EventType::PresenceChanged];
    Subscription {
        owner_id: owner.into(),
        name: format!("hook {ms}"),
        ..testkit::fixtures::subscription_at(org, &types, at)
    }
}

pub fn api_key(hash: &str, user: &str) -> ApiKeyRecord {
    ApiKeyRecord {
        key_hash: hash.into(),
        user_id: user.into(),
        org_id: "org-1".into(),
        role: Role::Admin,
        created_at: now(),
    }
}

pub fn call(call_id: &str, version: u64, stage: &str, at: DateTime<Utc>) -> CallRecord {
    let obs = CallObservation {
        stage: stage.into(),
        event_type: "received".into(),
        state: Some("alerting".into()),
        event_timestamp: at.to_rfc3339(),
        event_time: at,
        key: String::new(),
        derived: Vec::new(),
    };
    let mut r = CallRecord::new(
        call_id.into(),
        Some("session-1".into()),
        "org-1".into(),
        obs,
        (now() + Duration::hours(1)).timestamp(),
    );
    r.version = version;
    r
}

pub fn attempt(sub: SubscriptionId, ms: u64, n: u32, status: AttemptStatus) -> AttemptRecord {
    let at = DateTime::from_timestamp_millis(ms as i64).expect("time");
    testkit::fixtures::attempt(sub, EventId::new_at(ms), n, status, at)
}

pub fn event(org: &str, created_at: DateTime<Utc>) -> OutboundEvent {
    OutboundEvent {
        id: EventId::new_at(millis(created_at)),
        event_type: EventType::PresenceChanged,
        org_id: org.into(),
        created_at,
        body: format!(
            r#"{{"payload":"user-presence","items":[],"at":"{}"}}"#,
            created_at.to_rfc3339()
        ),
    }
}

pub fn job(i: u32) -> DeliveryJob {
    let event = event("org-1", now() + Duration::milliseconds(i64::from(i)));
    DeliveryJob::for_event(&event, SubscriptionId::new_at(millis(now())))
}
