use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::WebexTime;

/// The envelope Webex POSTs to a webhook's target URL (Webex's webhook envelope, as in the captured
/// telephony webhook, `tests/fixtures/seed001/`).
///
/// Known fields are typed and serialised in Webex's own order; fields this build does not know are
/// kept in `extra` and forwarded, so consumers receive everything Webex sent.
/// Note: Webex's top-level `id` is the *webhook registration* id, not an event id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEnvelope<D> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_url: Option<String>,
    pub resource: String,
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    pub org_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owned_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<WebexTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<String>,
    pub data: D,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Just enough of an envelope to route it: which resource and event it is, before the
/// resource-specific `data` is parsed.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvelopeHead {
    pub resource: String,
    pub event: String,
}
