//! The outbound bodies, byte for byte as the telephony and presence webhook contracts fix them
//! (docs/telephony-ingest.md, docs/presence-poller.md).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::webex::{Person, TelephonyEnvelope};

/// `{"Payload":"telephony","timestamp":…,"items":<envelope>,"orgId":…}` (the telephony webhook
/// contract, docs/telephony-ingest.md; note the capital P).
#[derive(Serialize)]
struct TelephonyBody<'a> {
    #[serde(rename = "Payload")]
    payload: &'static str,
    timestamp: String,
    items: &'a TelephonyEnvelope,
    #[serde(rename = "orgId")]
    org_id: &'a str,
}

/// `{"payload":"user-presence","items":[…]}` (the presence webhook contract,
/// docs/presence-poller.md; lower-case p).
#[derive(Serialize)]
struct PresenceBody<'a> {
    payload: &'static str,
    items: &'a [Person],
}

/// RFC 3339 with milliseconds and `Z`, as in the captured telephony webhook
/// (`2025-08-14T18:53:03.419Z`).
pub fn rfc3339_millis(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The compact JSON body delivered for a telephony event.
pub fn telephony_body(envelope: &TelephonyEnvelope, now: DateTime<Utc>) -> String {
    let body = TelephonyBody {
        payload: "telephony",
        timestamp: rfc3339_millis(now),
        items: envelope,
        org_id: &envelope.org_id,
    };
    serde_json::to_string(&body).expect("serialising owned JSON values cannot fail")
}

/// The compact JSON body delivered for a set of presence changes.
pub fn presence_body(people: &[Person]) -> String {
    serde_json::to_string(&PresenceBody {
        payload: "user-presence",
        items: people,
    })
    .expect("serialising owned JSON values cannot fail")
}
