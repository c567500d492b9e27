//! Webex's side of the relay: the webhook envelope, telephony call and presence types, the
//! verification of incoming Webex signatures, and Webex's tracking id.

mod envelope;
mod open_enum;
mod parse;
mod presence;
mod signature;
mod telephony;
mod timestamp;
mod tracking;

pub use envelope::{EnvelopeHead, WebhookEnvelope};
pub use parse::{parse_json, ParseError};
pub use presence::{Person, SipAddress, PRESENCE_ITEM_FIELDS};
pub use signature::{
    verify_webex_signature, webex_signature, SecretRole, SignatureError, Verified, WebhookSecret,
    WebhookSecrets, SPARK_SIGNATURE_HEADER, WEBEX_SIGNATURE_HEADER,
};
pub use telephony::{
    redate_captured, CallEventType, CallParty, CallState, Redirection, TelephonyCallData,
    TelephonyEnvelope, TELEPHONY_RESOURCE,
};
pub use timestamp::WebexTime;
pub use tracking::{tracking_id, TRACKING_ID_HEADER};
