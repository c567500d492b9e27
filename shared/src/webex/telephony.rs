use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::open_enum::open_enum;
use super::{WebexTime, WebhookEnvelope};

/// The `resource` of Webex telephony call webhooks.
pub const TELEPHONY_RESOURCE: &str = "telephony_calls";

/// A `telephony_calls` webhook as Webex sends it.
pub type TelephonyEnvelope = WebhookEnvelope<TelephonyCallData>;

open_enum!(
    /// `data.eventType` of a telephony call event. Webex publishes no complete list (received,
    /// updated and disconnected are in the captured traffic); a value not listed here is kept
    /// verbatim in `Other` and forwarded untouched.
    CallEventType {
        Originated => "originated",
        Received => "received",
        Answered => "answered",
        Connected => "connected",
        Held => "held",
        Resumed => "resumed",
        Recording => "recording",
        Forwarded => "forwarded",
        Updated => "updated",
        Disconnected => "disconnected",
    }
);

open_enum!(
    /// `data.state` of a telephony call.
    CallState {
        Connecting => "connecting",
        Alerting => "alerting",
        Connected => "connected",
        Held => "held",
        RemoteHeld => "remoteHeld",
        Disconnected => "disconnected",
    }
);

/// `data` of a Webex `telephony_calls` webhook (as captured in `tests/fixtures/seed001/`). Unknown
/// fields are kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TelephonyCallData {
    pub event_type: CallEventType,
    pub event_timestamp: WebexTime,
    pub call_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personality: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<CallState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mute_capable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_party: Option<CallParty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appearance: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<WebexTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered: Option<WebexTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirections: Option<Vec<Redirection>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnected: Option<WebexTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_elsewhere: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl TelephonyCallData {
    /// The dedupe key of a telephony event: `(callSessionId, callId, data.eventType,
    /// eventTimestamp, hash of data)`, hashed so that a key has a bounded length whatever Webex
    /// sends. The hash of the whole `data` keeps two different events of one type in the same
    /// millisecond apart, while an exact redelivery (the same `data`, whatever the envelope around
    /// it) is still one event. (Webex's top-level `id` is the webhook registration, the same for
    /// every event.) The ingest claims it; the call record (`call_state`) tells events apart by it.
    pub fn dedupe_key(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            self.call_session_id.as_deref().unwrap_or(""),
            self.call_id.as_str(),
            self.event_type.as_str(),
            self.event_timestamp.as_str(),
        ] {
            hash_str(&mut h, part);
        }
        let value = serde_json::to_value(self).expect("call data serialises");
        hash_value(&mut h, &value);
        format!("tel:{}", hex::encode(h.finalize()))
    }
}

fn hash_str(h: &mut Sha256, s: &str) {
    h.update((s.len() as u64).to_be_bytes());
    h.update(s.as_bytes());
}

/// A canonical hash of a JSON value: object keys in sorted order (the order Webex happens to send
/// them in does not matter), every item tagged and length-prefixed (no two values hash alike).
fn hash_value(h: &mut Sha256, v: &Value) {
    match v {
        Value::Null => h.update(b"n"),
        Value::Bool(b) => h.update(if *b { b"t" } else { b"f" }),
        Value::Number(n) => {
            h.update(b"#");
            hash_str(h, &n.to_string());
        }
        Value::String(s) => {
            h.update(b"s");
            hash_str(h, s);
        }
        Value::Array(items) => {
            h.update(b"[");
            h.update((items.len() as u64).to_be_bytes());
            items.iter().for_each(|i| hash_value(h, i));
        }
        Value::Object(map) => {
            h.update(b"{");
            h.update((map.len() as u64).to_be_bytes());
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by_key(|(k, _)| *k);
            for (k, v) in entries {
                hash_str(h, k);
                hash_value(h, v);
            }
        }
    }
}

/// A party of a call (`remoteParty`, `redirectingParty`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallParty {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_type: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One hop of `redirections`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Redirection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirecting_party: Option<CallParty>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The latest call time of the captured telephony webhook (`tests/fixtures/seed001/`).
const CAPTURED_AT: &str = "2025-08-14T18:52:43.357Z";

/// A captured telephony envelope (`tests/fixtures/seed001/`) moved to the present: the call times
/// of its `data` (`eventTimestamp`, `created`, `answered`, `disconnected`) shifted by the same whole
/// number of hours, once per process, so that the capture's latest moment falls within the hour
/// before the first call. The ingest relays only events inside its dedupe window (freshness,
/// docs/telephony-ingest.md), so the demo and the tests post the capture this way. The envelope's
/// own `created` is the webhook registration's and is kept.
pub fn redate_captured(envelope: &mut Value) {
    static SHIFT: std::sync::OnceLock<chrono::Duration> = std::sync::OnceLock::new();
    let shift = *SHIFT.get_or_init(|| {
        let captured = WebexTime::parse(CAPTURED_AT).expect("valid constant").at();
        chrono::Duration::hours((chrono::Utc::now() - captured).num_hours())
    });
    let Some(data) = envelope.get_mut("data").and_then(Value::as_object_mut) else {
        return;
    };
    for field in ["eventTimestamp", "created", "answered", "disconnected"] {
        let Some(at) = data
            .get(field)
            .and_then(Value::as_str)
            .and_then(|raw| WebexTime::parse(raw).ok())
        else {
            continue;
        };
        let moved = (at.at() + shift).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        data.insert(field.into(), Value::String(moved));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_round_trip_and_unknown_ones_pass_through() {
        for wire in [
            "received",
            "answered",
            "held",
            "resumed",
            "forwarded",
            "recording",
            "updated",
            "disconnected",
        ] {
            let t: CallEventType = serde_json::from_value(wire.into()).unwrap();
            assert!(!matches!(t, CallEventType::Other(_)), "{wire} is known");
            assert_eq!(serde_json::to_value(&t).unwrap(), wire);
        }
        let t: CallEventType = serde_json::from_value("parked".into()).unwrap();
        assert_eq!(t, CallEventType::Other("parked".into()));
        assert_eq!(serde_json::to_value(&t).unwrap(), "parked");
    }
}
