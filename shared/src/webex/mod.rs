//! Webex's side of the relay: the webhook envelope, telephony call and presence types, and the
//! verification of incoming Webex signatures.

mod envelope;
mod open_enum;
mod parse;
mod presence;
mod signature;
mod telephony;
mod timestamp;

pub use envelope::{EnvelopeHead, WebhookEnvelope};
pub use parse::{parse_json, ParseError};
pub use presence::{Person, SipAddress};
pub use signature::{
    verify_webex_signature, webex_signature, SignatureError, SPARK_SIGNATURE_HEADER,
    WEBEX_SIGNATURE_HEADER,
};
pub use telephony::{
    CallEventType, CallParty, CallState, Redirection, TelephonyCallData, TelephonyEnvelope,
    TELEPHONY_RESOURCE,
};
pub use timestamp::WebexTime;
