//! Webhook bodies: the telephony envelope (routed on `resource`), its dedupe key and event time,
//! and what a 400 says about a body that does not parse.

use relay_shared::webex::{
    parse_json, EnvelopeHead, ParseError, TelephonyCallData, TelephonyEnvelope, TELEPHONY_RESOURCE,
};

/// Why a body is not a telephony envelope.
#[derive(Debug)]
pub enum Unparsed {
    /// A well-formed envelope of another resource (acknowledged, not relayed).
    OtherResource(String),
    /// Not JSON, or missing/mistyped fields: what and where.
    Invalid(ParseError),
}

/// Parses a webhook body: the `EnvelopeHead` (`resource`, `event`) decides the route, then the typed
/// `TelephonyEnvelope`. The common case takes one plain `serde_json` pass; only a body that fails it
/// is re-parsed with `parse_json` for an error naming the field (same outcome, less work).
pub fn parse_envelope(body: &[u8]) -> Result<TelephonyEnvelope, Unparsed> {
    if let Ok(env) = serde_json::from_slice::<TelephonyEnvelope>(body) {
        if env.resource == TELEPHONY_RESOURCE {
            return Ok(env);
        }
        return Err(Unparsed::OtherResource(env.resource));
    }
    let head = parse_json::<EnvelopeHead>(body).map_err(Unparsed::Invalid)?;
    if head.resource != TELEPHONY_RESOURCE {
        return Err(Unparsed::OtherResource(head.resource));
    }
    parse_json::<TelephonyEnvelope>(body).map_err(Unparsed::Invalid)
}

/// The dedupe key of a telephony event ([`TelephonyCallData::dedupe_key`], in relay-shared
/// because the call record tells Webex events apart by the same key).
pub fn dedupe_key(data: &TelephonyCallData) -> String {
    data.dedupe_key()
}

/// `data.eventTimestamp` in ms since the epoch (clamped to the ULID range): the time part of the
/// derived event id.
pub fn event_millis(data: &TelephonyCallData) -> u64 {
    u64::try_from(data.event_timestamp.at().timestamp_millis())
        .unwrap_or(0)
        .min((1 << 48) - 1)
}

/// What and where: `missing field `$.data.callId``, `invalid type: … at `$.data.eventTimestamp``,
/// `expected value (line 1, column 1)`.
pub fn parse_detail(e: &ParseError) -> String {
    match e {
        ParseError::InvalidField { path, message } => {
            if let Some(field) = message
                .strip_prefix("missing field `")
                .and_then(|m| m.strip_suffix('`'))
            {
                format!("missing field `{path}.{field}`")
            } else {
                format!("{message} at `{path}`")
            }
        }
        ParseError::InvalidJson { .. } => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_detail_names_the_field() {
        let e = parse_json::<TelephonyEnvelope>(br#"{"resource":"telephony_calls","event":"created","orgId":"o","data":{"eventType":"received","eventTimestamp":"2025-08-14T18:52:41.729Z"}}"#).unwrap_err();
        assert_eq!(parse_detail(&e), "missing field `$.data.callId`");
        let e = parse_json::<TelephonyEnvelope>(
            br#"{"resource":"telephony_calls","event":"created","data":{}}"#,
        )
        .unwrap_err();
        assert!(
            parse_detail(&e).contains("orgId") || parse_detail(&e).contains("$.data"),
            "{}",
            parse_detail(&e)
        );
        let e = parse_json::<TelephonyEnvelope>(b"{").unwrap_err();
        assert!(parse_detail(&e).contains("line 1"), "{}", parse_detail(&e));
    }

    #[test]
    fn dedupe_key_is_stable_and_discriminating() {
        let d: TelephonyCallData = serde_json::from_str(r#"{"eventType":"received","eventTimestamp":"2025-08-14T18:52:41.729Z","callId":"c","callSessionId":"s"}"#).unwrap();
        let mut d2 = d.clone();
        assert_eq!(dedupe_key(&d), dedupe_key(&d2));
        d2.event_type = "connected".into();
        assert_ne!(dedupe_key(&d), dedupe_key(&d2));
        assert_eq!(event_millis(&d), 1_755_197_561_729);
    }

    fn data(json: &str) -> TelephonyCallData {
        serde_json::from_str(json).unwrap()
    }

    /// `object` with one more top-level `field`.
    fn plus(object: &str, field: &str) -> String {
        format!("{},{field}}}", object.strip_suffix('}').unwrap())
    }

    #[test]
    fn dedupe_key_hashes_data_whatever_its_key_order() {
        let base = r#"{"eventType":"updated","eventTimestamp":"2025-08-14T18:52:41.729Z","callId":"c","callSessionId":"s","state":"held","remoteParty":{"name":"A","number":"1"}}"#;
        // The same event redelivered, its keys in another order: one key.
        let reordered = r#"{"callSessionId":"s","remoteParty":{"number":"1","name":"A"},"state":"held","callId":"c","eventTimestamp":"2025-08-14T18:52:41.729Z","eventType":"updated"}"#;
        assert_eq!(dedupe_key(&data(base)), dedupe_key(&data(reordered)));
        // Another event of the same type in the same millisecond: another key.
        for other in [
            base.replace(r#""state":"held""#, r#""state":"connected""#),
            base.replace(r#""name":"A""#, r#""name":"B""#),
            plus(base, r#""muted":true"#),
            base.replace(r#""callId":"c""#, r#""callId":"c","extra":[1,"1"]"#),
        ] {
            assert_ne!(
                dedupe_key(&data(base)),
                dedupe_key(&data(&other)),
                "{other}"
            );
        }
        // Tags keep a string apart from a number of the same text.
        let a = plus(base, r#""x":"1""#);
        let b = plus(base, r#""x":1"#);
        assert_ne!(dedupe_key(&data(&a)), dedupe_key(&data(&b)));
    }
}
