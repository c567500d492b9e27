//! Outbound events: the catalogue of types, the bodies, and the event record that is stored for
//! replay and fanned out to subscriptions.

mod bodies;
mod event_type;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use bodies::{presence_body, rfc3339_millis, telephony_body};
pub use event_type::EventType;

use crate::ids::EventId;

/// One outbound event: what every matching subscription receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboundEvent {
    pub id: EventId,
    pub event_type: EventType,
    pub org_id: String,
    pub created_at: DateTime<Utc>,
    /// The exact compact JSON delivered.
    pub body: String,
}
