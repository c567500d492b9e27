use serde::{Deserialize, Serialize};
use strum::{Display, EnumString, IntoStaticStr};

/// The catalogue of outbound event types a subscription can filter on. Each wire name is spelled
/// once, in its `strum` attribute: `as_str`, `FromStr`, `Display` and serde all go through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
#[derive(EnumString, IntoStaticStr, Display)]
pub enum EventType {
    #[strum(serialize = "telephony:created")]
    TelephonyCreated,
    #[strum(serialize = "telephony:updated")]
    TelephonyUpdated,
    #[strum(serialize = "telephony:deleted")]
    TelephonyDeleted,
    #[strum(serialize = "presence:changed")]
    PresenceChanged,
    #[strum(serialize = "webhook:test")]
    WebhookTest,
    #[strum(serialize = "call:ringing")]
    CallRinging,
    #[strum(serialize = "call:answered")]
    CallAnswered,
    #[strum(serialize = "call:held")]
    CallHeld,
    #[strum(serialize = "call:resumed")]
    CallResumed,
    #[strum(serialize = "call:transferred")]
    CallTransferred,
    #[strum(serialize = "call:ended")]
    CallEnded,
    #[strum(serialize = "webhook:failing")]
    WebhookFailing,
    #[strum(serialize = "webhook:disabled")]
    WebhookDisabled,
    #[strum(serialize = "webhook:recovered")]
    WebhookRecovered,
    #[strum(serialize = "delivery:dead-lettered")]
    DeliveryDeadLettered,
    #[strum(serialize = "webex:webhook-reactivated")]
    WebexWebhookReactivated,
    #[strum(serialize = "webex:token-refresh-failed")]
    WebexTokenRefreshFailed,
    #[strum(serialize = "presence:throttled")]
    PresenceThrottled,
}

/// A string that names no event type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type `{0}`")]
pub struct UnknownEventType(pub String);

impl TryFrom<String> for EventType {
    type Error = UnknownEventType;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse().map_err(|_| UnknownEventType(s))
    }
}

impl EventType {
    pub const ALL: [EventType; 18] = [
        EventType::TelephonyCreated,
        EventType::TelephonyUpdated,
        EventType::TelephonyDeleted,
        EventType::PresenceChanged,
        EventType::WebhookTest,
        EventType::CallRinging,
        EventType::CallAnswered,
        EventType::CallHeld,
        EventType::CallResumed,
        EventType::CallTransferred,
        EventType::CallEnded,
        EventType::WebhookFailing,
        EventType::WebhookDisabled,
        EventType::WebhookRecovered,
        EventType::DeliveryDeadLettered,
        EventType::WebexWebhookReactivated,
        EventType::WebexTokenRefreshFailed,
        EventType::PresenceThrottled,
    ];

    /// The operational events (docs/operational-events.md): what goes wrong with the relay's own
    /// deliveries and its Webex side, emitted by the relay itself (`crate::operational`).
    pub const OPERATIONAL: [EventType; 7] = [
        EventType::WebhookFailing,
        EventType::WebhookDisabled,
        EventType::WebhookRecovered,
        EventType::DeliveryDeadLettered,
        EventType::WebexWebhookReactivated,
        EventType::WebexTokenRefreshFailed,
        EventType::PresenceThrottled,
    ];

    /// One of the operational events.
    pub fn is_operational(self) -> bool {
        Self::OPERATIONAL.contains(&self)
    }

    /// Does the event log keep events of this type? Test and operational events are made by the
    /// API and the worker for one delivery and never logged (their attempts keep the body).
    pub fn is_logged(self) -> bool {
        self != EventType::WebhookTest && !self.is_operational()
    }

    /// An operational event about one webhook (delivered to its owner's other webhooks), rather
    /// than about the org's Webex side (delivered to the org's subscribers).
    pub fn is_webhook_scoped(self) -> bool {
        matches!(
            self,
            EventType::WebhookFailing
                | EventType::WebhookDisabled
                | EventType::WebhookRecovered
                | EventType::DeliveryDeadLettered
        )
    }

    /// The derived call events (docs/call-events.md), in the order of a call's story.
    pub const CALL: [EventType; 6] = [
        EventType::CallRinging,
        EventType::CallAnswered,
        EventType::CallHeld,
        EventType::CallResumed,
        EventType::CallTransferred,
        EventType::CallEnded,
    ];

    /// One of the derived `call:*` events (computed by the ingest from a call leg's state).
    pub fn is_call_event(self) -> bool {
        Self::CALL.contains(&self)
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn description(self) -> &'static str {
        match self {
            EventType::TelephonyCreated => {
                "A Webex call appeared (Webex `telephony_calls` webhook, event `created`)."
            }
            EventType::TelephonyUpdated => {
                "A Webex call changed state (Webex `telephony_calls` webhook, event `updated`)."
            }
            EventType::TelephonyDeleted => {
                "A Webex call ended (Webex `telephony_calls` webhook, event `deleted`)."
            }
            EventType::PresenceChanged => {
                "One or more people's Webex presence status changed since the last poll."
            }
            EventType::WebhookTest => {
                "A test event sent on request through the normal delivery path."
            }
            EventType::CallRinging => {
                "Derived, once per call leg: the leg started (an inbound call rings here, an outbound one is being placed)."
            }
            EventType::CallAnswered => {
                "Derived, once per call leg: the leg was answered (connected), with `ringSeconds`."
            }
            EventType::CallHeld => {
                "Derived, once per hold: the leg was put on hold."
            }
            EventType::CallResumed => {
                "Derived, once per hold: the leg was taken off hold."
            }
            EventType::CallTransferred => {
                "Derived, once per transfer: the leg was transferred or forwarded (Webex `forwarded`)."
            }
            EventType::CallEnded => {
                "Derived, once per call leg: the leg ended, with `outcome` (answered, missed, answeredElsewhere, unanswered), `ringSeconds` and `talkSeconds`."
            }
            EventType::WebhookFailing => {
                "Operational, once per failing episode: another of your webhooks started failing (a delivery exhausted its retries or failed permanently), with the event, attempts, last status and error class."
            }
            EventType::WebhookDisabled => {
                "Operational: another of your webhooks was disabled, by a 410 Gone, by the auto-disable policy (failing continuously) or by hand (who and why)."
            }
            EventType::WebhookRecovered => {
                "Operational, once per failing episode: another of your webhooks delivered again after failing."
            }
            EventType::DeliveryDeadLettered => {
                "Operational: a delivery to another of your webhooks was parked in the dead-letter queue for a reason other than exhausting its retries (permanent failure, unreadable secret, 410 Gone)."
            }
            EventType::WebexWebhookReactivated => {
                "Operational, org-wide: Webex had deactivated the relay's telephony webhook and the relay reactivated it (events may have been missed meanwhile)."
            }
            EventType::WebexTokenRefreshFailed => {
                "Operational, org-wide: the relay could not refresh its Webex token (presence stops until it can)."
            }
            EventType::PresenceThrottled => {
                "Operational, org-wide: Webex throttled the presence poller (429/423 with Retry-After); presence changes are delayed."
            }
        }
    }

    /// The outbound type of a Webex `telephony_calls` envelope's `event`.
    pub fn from_telephony_event(event: &str) -> Option<EventType> {
        match event {
            "created" => Some(EventType::TelephonyCreated),
            "updated" => Some(EventType::TelephonyUpdated),
            "deleted" => Some(EventType::TelephonyDeleted),
            _ => None,
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        s.parse().ok()
    }

    /// Presence events carry the org in an `x-org-id` header (the presence webhook contract,
    /// docs/presence-poller.md).
    pub fn carries_org_header(self) -> bool {
        matches!(self, EventType::PresenceChanged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for t in EventType::ALL {
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            assert_eq!(serde_json::from_str::<EventType>(&json).unwrap(), t);
            assert_eq!(
                serde_json::from_value::<EventType>(serde_json::json!(t.as_str())).unwrap(),
                t
            );
            assert_eq!(EventType::parse(&t.to_string()), Some(t));
        }
        assert_eq!(EventType::parse("telephony"), None);
        assert!(EventType::CALL
            .iter()
            .all(|t| t.as_str().starts_with("call:")));
        assert_eq!(
            EventType::ALL.iter().filter(|t| t.is_call_event()).count(),
            EventType::CALL.len()
        );
        assert_eq!(
            EventType::ALL.iter().filter(|t| t.is_operational()).count(),
            EventType::OPERATIONAL.len()
        );
        assert!(EventType::OPERATIONAL
            .iter()
            .filter(|t| t.is_webhook_scoped())
            .all(|t| t.is_operational()));
        let e = serde_json::from_str::<EventType>("\"nope\"").unwrap_err();
        assert!(e.to_string().contains("unknown event type `nope`"), "{e}");
    }
}
