//! `GET /api/hooks/event-types`: the catalogue, with descriptions, example delivery bodies and
//! example payload filters.

use axum::Json;
use chrono::{DateTime, Utc};
use relay_shared::events::{presence_body, telephony_body, EventType};
use relay_shared::webex::{Person, TelephonyEnvelope};
use serde::Serialize;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::model::EventTypeInfo;

#[derive(Serialize)]
pub struct EventTypeList {
    pub data: Vec<EventTypeInfo>,
}

pub async fn list(_caller: Caller) -> Json<EventTypeList> {
    Json(EventTypeList { data: catalogue() })
}

pub fn catalogue() -> Vec<EventTypeInfo> {
    EventType::ALL
        .into_iter()
        .map(|t| EventTypeInfo {
            name: t.as_str(),
            description: t.description(),
            example: example(t),
            filter_examples: relay_shared::filters::examples(t),
        })
        .collect()
}

const ORG: &str =
    "Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi8xNzExMTdkNi04YjgyLTQ0Y2EtOThlOS1hYzExNTdmMmNkMWQ";
const PERSON: &str =
    "Y2lzY29zcGFyazovL3VzL1BFT1BMRS84OWYwOGUyYi02MDM4LTQ3MmMtYjcyYy0zNjQyNjIwMThjNjE";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("valid example timestamp")
        .with_timezone(&Utc)
}

/// The Webex envelope shape of the captured telephony webhook for one call stage.
fn telephony_envelope(event: &str, data_event: &str, state: &str, ts: &str) -> TelephonyEnvelope {
    let v = json!({
        "id": "Y2lzY29zcGFyazovL3VzL1dFQkhPT0svN2QyMTBjMjUtYWJmZi00MjAxLWE0OGMtMjI3ZDRkNWY3OTI1",
        "name": "WebexSAPROD",
        "targetUrl": "https://relay.example.com/telephony",
        "resource": "telephony_calls",
        "event": event,
        "orgId": ORG,
        "createdBy": PERSON,
        "appId": "Y2lzY29zcGFyazovL3VzL0FQUExJQ0FUSU9OL0MzZjU0MjYwYTQyMjhjY2NlNWY4YjM3NDVlYjYzMDA0MDYzYjVlZTgzOWRlNDE4YjMyOGFkMGMxZTA5MjAzYzgx",
        "ownedBy": "creator",
        "status": "active",
        "created": "2025-06-30T20:13:25.614Z",
        "actorId": PERSON,
        "data": {
            "eventType": data_event,
            "eventTimestamp": ts,
            "callId": "Y2lzY29zcGFyazovL3VzL0NBTEwvY2FsbGhhbGYtOTgyNzEzMjM3MDow",
            "callSessionId": "MWFmMDFjNTQtOTdlMS00ODA3LWEzZjgtMTY2ODNiNjFhNjQw",
            "personality": "terminator",
            "state": state,
            "muteCapable": false,
            "muted": false,
            "remoteParty": {"name": "Example Caller", "number": "+15555550100", "privacyEnabled": false, "callType": "external"},
            "appearance": 1,
            "created": "2025-08-14T18:52:41.728Z"
        }
    });
    serde_json::from_value(v).expect("example envelope matches the Webex model")
}

fn body_value(body: String) -> Value {
    serde_json::from_str(&body).expect("bodies are JSON")
}

/// The exact body a subscriber receives for an event of this type (built by the same functions
/// that build real deliveries).
pub fn example(t: EventType) -> Value {
    match t {
        EventType::TelephonyCreated => body_value(telephony_body(
            &telephony_envelope(
                "created",
                "received",
                "alerting",
                "2025-08-14T18:52:41.729Z",
            ),
            at("2025-08-14T18:53:02.738Z"),
        )),
        EventType::TelephonyUpdated => body_value(telephony_body(
            &telephony_envelope(
                "updated",
                "connected",
                "connected",
                "2025-08-14T18:52:45.120Z",
            ),
            at("2025-08-14T18:53:03.419Z"),
        )),
        EventType::TelephonyDeleted => body_value(telephony_body(
            &telephony_envelope(
                "deleted",
                "disconnected",
                "disconnected",
                "2025-08-14T18:55:10.002Z",
            ),
            at("2025-08-14T18:55:10.310Z"),
        )),
        EventType::PresenceChanged => {
            let person: Person = serde_json::from_value(json!({
                "id": "abc123",
                "emails": ["john@example.com"],
                "sipAddresses": [{"type": "cloud", "value": "sip:john@example.com", "primary": true}],
                "displayName": "John Doe",
                "nickName": "Johnny",
                "firstName": "John",
                "lastName": "Doe",
                "orgId": "org-12345",
                "status": "active",
                "lastModified": "2025-06-30T10:05:00Z",
                "lastActivity": "2025-06-30T10:10:00Z",
                "type": "person",
                "department": "Engineering"
            }))
            .expect("example person matches the Webex model");
            body_value(presence_body(&[person]))
        }
        EventType::WebhookTest => json!({
            "type": "webhook:test",
            "webhookId": "wh_01JD0000000000000000000000",
            "eventId": "evt_01JD0000000000000000000000",
            "timestamp": "2025-08-14T18:53:03.419Z"
        }),
        // The derived call events: built by relay_shared::call_events itself (docs/call-events.md).
        EventType::CallRinging
        | EventType::CallAnswered
        | EventType::CallHeld
        | EventType::CallResumed
        | EventType::CallTransferred
        | EventType::CallEnded => {
            relay_shared::call_events::example(t).expect("a call event type has an example")
        }
        // The operational events: built by relay_shared::operational itself
        // (docs/operational-events.md).
        EventType::WebhookFailing
        | EventType::WebhookDisabled
        | EventType::WebhookRecovered
        | EventType::DeliveryDeadLettered
        | EventType::WebexWebhookReactivated
        | EventType::WebexTokenRefreshFailed
        | EventType::PresenceThrottled => {
            relay_shared::operational::example(t).expect("an operational event type has an example")
        }
    }
}
