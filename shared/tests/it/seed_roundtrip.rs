//! The captured Webex payloads round-trip through the typed model byte for byte:
//! - each captured telephony webhook's `items` (`tests/fixtures/seed001/`; the Webex envelope)
//!   parses as `TelephonyEnvelope` and re-serialises to the identical compact JSON, and the
//!   outbound body rebuilt from it equals the captured body (same timestamp);
//! - the presence webhook contract's example (`tests/fixtures/seed000.json`,
//!   docs/presence-poller.md): its `items` parse as `Vec<Person>` and re-serialise identically, as
//!   does the whole `user-presence` body;
//! - the envelope parser never panics on arbitrary bytes (proptest).

use chrono::DateTime;
use proptest::prelude::*;
use relay_shared::events::{presence_body, telephony_body};
use relay_shared::webex::{parse_json, EnvelopeHead, ParseError, Person, TelephonyEnvelope};
use serde_json::Value;

const SEED001: [(&str, &str); 3] = [
    (
        "updated",
        include_str!("../../../tests/fixtures/seed001/updated.json"),
    ),
    (
        "created",
        include_str!("../../../tests/fixtures/seed001/created.json"),
    ),
    (
        "deleted",
        include_str!("../../../tests/fixtures/seed001/deleted.json"),
    ),
];
const SEED001_CAPTURE: &str = include_str!("../../../tests/fixtures/seed001/capture.json");
const SEED000: &str = include_str!("../../../tests/fixtures/seed000.json");

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap()
}

#[test]
fn seed001_envelopes_round_trip_byte_for_byte() {
    for (stage, text) in SEED001 {
        let body: Value = serde_json::from_str(text).unwrap();
        let items = compact(&body["items"]);
        let env: TelephonyEnvelope =
            parse_json(items.as_bytes()).unwrap_or_else(|e| panic!("{stage}: {e}"));
        assert_eq!(env.event, stage);
        assert!(
            env.extra.is_empty() && env.data.extra.is_empty(),
            "{stage}: every seed field is typed"
        );
        assert_eq!(
            serde_json::to_string(&env).unwrap(),
            items,
            "{stage}: re-serialised envelope differs"
        );

        // The outbound body rebuilt at the captured timestamp is the captured body.
        let ts = DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap())
            .unwrap()
            .to_utc();
        assert_eq!(
            telephony_body(&env, ts),
            compact(&body),
            "{stage}: outbound body differs from the captured telephony webhook"
        );
    }
}

#[test]
fn seed001_capture_is_the_three_fixtures_in_captured_order() {
    let capture: Vec<Value> = serde_json::from_str(SEED001_CAPTURE).unwrap();
    let stages: Vec<&str> = capture
        .iter()
        .map(|c| c["body"]["items"]["event"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["updated", "created", "deleted"]);
    for (entry, (_, text)) in capture.iter().zip(SEED001) {
        assert_eq!(entry["body"], serde_json::from_str::<Value>(text).unwrap());
        assert_eq!(entry["method"], "POST");
    }
}

#[test]
fn seed000_people_round_trip_byte_for_byte() {
    let body: Value = serde_json::from_str(SEED000).unwrap();
    let items = compact(&body["items"]);
    let people: Vec<Person> = parse_json(items.as_bytes()).unwrap();
    assert_eq!(people.len(), 1);
    assert!(people[0].extra.is_empty());
    assert_eq!(serde_json::to_string(&people).unwrap(), items);
    assert_eq!(presence_body(&people), compact(&body));
}

#[test]
fn unknown_fields_are_kept_and_forwarded() {
    let (_, text) = SEED001[1];
    let mut body: Value = serde_json::from_str(text).unwrap();
    body["items"]["newTopLevel"] = serde_json::json!({"a": [1, 2]});
    body["items"]["data"]["newCallField"] = "x".into();
    let items = compact(&body["items"]);
    let env: TelephonyEnvelope = parse_json(items.as_bytes()).unwrap();
    assert_eq!(env.extra["newTopLevel"], serde_json::json!({"a": [1, 2]}));
    let back: Value = serde_json::from_str(&serde_json::to_string(&env).unwrap()).unwrap();
    assert_eq!(back, body["items"]);
}

fn check(bytes: &[u8]) {
    match parse_json::<TelephonyEnvelope>(bytes) {
        Ok(env) => {
            // Whatever parsed re-serialises to JSON that parses again to the same value.
            let again: TelephonyEnvelope =
                parse_json(serde_json::to_string(&env).unwrap().as_bytes()).unwrap();
            assert_eq!(again, env);
        }
        Err(ParseError::InvalidJson { .. }) | Err(ParseError::InvalidField { .. }) => {}
    }
    let _ = parse_json::<EnvelopeHead>(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn envelope_parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        check(&bytes);
    }

    /// Mutations of a real envelope (truncations and single-byte changes) hit the deeper paths.
    #[test]
    fn envelope_parser_never_panics_on_mutated_seeds(cut in 0usize..1400, pos in 0usize..1400, byte in any::<u8>(), which in 0usize..3) {
        let body: Value = serde_json::from_str(SEED001[which].1).unwrap();
        let mut items = compact(&body["items"]).into_bytes();
        let pos = pos % items.len();
        items[pos] = byte;
        check(&items);
        items.truncate(cut.min(items.len()));
        check(&items);
    }
}
