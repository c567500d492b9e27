use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
