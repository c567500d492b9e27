//! Where a delivery gets signed: every header a subscriber receives besides the body.

use chrono::{DateTime, SecondsFormat, Utc};

use super::{hook_signature, service_hook_signature, standard_webhooks_signature, SigningSecret};
use crate::events::EventType;

pub const USER_AGENT: &str = concat!("webex-relay/", env!("CARGO_PKG_VERSION"));

/// What a signed delivery needs to know.
pub struct SignatureInput<'a> {
    /// Standard Webhooks `webhook-id`: stable per event × subscription across retries.
    pub delivery_id: &'a str,
    /// This attempt's time.
    pub timestamp: DateTime<Utc>,
    pub event_type: EventType,
    /// `X-ServiceHook-UUID`: the subscription id.
    pub subscription_id: &'a str,
    pub org_id: &'a str,
    /// Current secret first, then any still in their rotation grace period.
    pub secrets: &'a [SigningSecret],
    pub body: &'a [u8],
}

/// The delivery headers, lower-case names, in a fixed order.
///
/// `webhook-signature` carries one signature per valid secret (space-separated) so receivers on the
/// old or the new secret both verify during a rotation; the single-valued hex headers use the
/// current secret.
pub fn delivery_headers(input: &SignatureInput<'_>) -> Vec<(&'static str, String)> {
    let ts = input.timestamp.timestamp();
    let signatures: Vec<String> = input
        .secrets
        .iter()
        .map(|s| standard_webhooks_signature(s, input.delivery_id, ts, input.body))
        .collect();
    let mut headers = vec![
        ("content-type", "application/json".to_owned()),
        ("user-agent", USER_AGENT.to_owned()),
        ("webhook-id", input.delivery_id.to_owned()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", signatures.join(" ")),
    ];
    if let Some(current) = input.secrets.first() {
        headers.push(("x-hook-signature", hook_signature(current, input.body)));
        headers.push((
            "x-servicehook-signature",
            service_hook_signature(current, input.body),
        ));
    }
    headers.push(("x-servicehook-event", input.event_type.as_str().to_owned()));
    headers.push((
        "x-servicehook-timestamp",
        input.timestamp.to_rfc3339_opts(SecondsFormat::Secs, true),
    ));
    headers.push(("x-servicehook-uuid", input.subscription_id.to_owned()));
    if input.event_type.carries_org_header() {
        headers.push(("x-org-id", input.org_id.to_owned()));
    }
    headers
}

/// What stands in for a signature in a recorded header.
pub const REDACTED: &str = "<redacted>";

/// The headers as the attempt log keeps them (`GET …/deliveries/{attemptId}`): every header
/// sent, in order, except the signatures' values. No header carries the secret itself (each
/// signature is an HMAC under it), but a signature with its body and timestamp is a delivery
/// anyone could replay to the receiver within its tolerance, and the value tells a reader nothing
/// the secret holder cannot recompute: each is kept as its scheme's prefix and `<redacted>` (the
/// `webhook-signature` list keeps one entry per signing secret, so a rotation stays visible).
pub fn recorded_headers(headers: &[(&str, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let shown = match *name {
                "webhook-signature" => value
                    .split(' ')
                    .map(|sig| match sig.split_once(',') {
                        Some((version, _)) => format!("{version},{REDACTED}"),
                        None => REDACTED.to_owned(),
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                "x-hook-signature" => format!("sha256={REDACTED}"),
                "x-servicehook-signature" => REDACTED.to_owned(),
                _ => value.clone(),
            };
            ((*name).to_owned(), shown)
        })
        .collect()
}
