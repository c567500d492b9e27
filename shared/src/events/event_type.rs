use serde::{Deserialize, Serialize};

/// The catalogue of outbound event types a subscription can filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "telephony:created")]
    TelephonyCreated,
    #[serde(rename = "telephony:updated")]
    TelephonyUpdated,
    #[serde(rename = "telephony:deleted")]
    TelephonyDeleted,
    #[serde(rename = "presence:changed")]
    PresenceChanged,
    #[serde(rename = "webhook:test")]
    WebhookTest,
}

impl EventType {
    pub const ALL: [EventType; 5] = [
        EventType::TelephonyCreated,
        EventType::TelephonyUpdated,
        EventType::TelephonyDeleted,
        EventType::PresenceChanged,
        EventType::WebhookTest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::TelephonyCreated => "telephony:created",
            EventType::TelephonyUpdated => "telephony:updated",
            EventType::TelephonyDeleted => "telephony:deleted",
            EventType::PresenceChanged => "presence:changed",
            EventType::WebhookTest => "webhook:test",
        }
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
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Presence events carry the org in an `x-org-id` header (seed 000).
    pub fn carries_org_header(self) -> bool {
        matches!(self, EventType::PresenceChanged)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
