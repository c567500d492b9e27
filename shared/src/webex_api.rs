//! Types of Webex's REST API as the relay uses it: webhooks management and errors.
//! The HTTP client implementing `ports::WebexClient` lives in `adapters::webex_http`.

use serde::{Deserialize, Serialize};

/// A webhook registration at Webex (`/v1/webhooks`). The `secret` is write-only for us: it is
/// deserialised if Webex returns it but never printed.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebexRegistration {
    pub id: String,
    pub name: String,
    pub target_url: String,
    pub resource: String,
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    #[serde(default, skip_serializing)]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
}

impl std::fmt::Debug for WebexRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebexRegistration")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("target_url", &self.target_url)
            .field("resource", &self.resource)
            .field("event", &self.event)
            .field("filter", &self.filter)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("status", &self.status)
            .finish()
    }
}

/// `POST /v1/webhooks`.
#[derive(Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationCreate {
    pub name: String,
    pub target_url: String,
    pub resource: String,
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// `PUT /v1/webhooks/{id}` (only these fields can change).
#[derive(Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationUpdate {
    pub name: String,
    pub target_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WebexApiError {
    #[error("Webex rejected the token (401)")]
    Unauthorized,
    #[error("Webex rate limit (HTTP {status}); retry after {retry_after_seconds:?} s")]
    RateLimited {
        status: u16,
        retry_after_seconds: Option<u64>,
    },
    #[error("Webex answered HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("could not reach Webex: {0}")]
    Transport(String),
    #[error("unexpected Webex response: {0}")]
    Decode(String),
}

/// One interest of a webhook interest registration (`/v1/telephony/webhookInterestRegistrations`):
/// exactly one of `resource` (e.g. `Hook Status`) or `actor` (`Workspaces`, `Virtual Lines`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

impl Interest {
    pub fn actor(actor: &str) -> Self {
        Self {
            resource: None,
            actor: Some(actor.to_owned()),
        }
    }
}

/// `GET /v1/telephony/webhookInterestRegistrations`: the token's (user + client) registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InterestRegistration {
    pub interests: Vec<Interest>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// `POST /v1/telephony/webhookInterestRegistrations` (an upsert: a re-POST renews it).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InterestRegistrationUpdate {
    pub interests: Vec<Interest>,
    /// Days until it expires; Webex's default is 60.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<u32>,
}
