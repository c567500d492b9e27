use serde_json::json;

use super::*;
use crate::events::telephony_body;
use crate::webex::TelephonyEnvelope;

const SEED_UPDATED: &str = include_str!("../../../tests/fixtures/seed001/updated.json");
const SEED_DELETED: &str = include_str!("../../../tests/fixtures/seed001/deleted.json");

/// The delivered body of a captured telephony event, parsed.
fn telephony(fixture: &str) -> Value {
    let v: Value = serde_json::from_str(fixture).unwrap();
    let env: TelephonyEnvelope = serde_json::from_value(v["items"].clone()).unwrap();
    serde_json::from_str(&telephony_body(&env, chrono::Utc::now())).unwrap()
}

fn passes(filter: Value, t: EventType, body: &Value) -> bool {
    Filter::parse(&filter).unwrap().matches(document(t, body))
}

fn error(filter: Value) -> FilterError {
    Filter::parse(&filter).unwrap_err()
}

#[test]
fn personality_filters_the_captured_terminator_events() {
    for f in [SEED_UPDATED, SEED_DELETED] {
        let body = telephony(f);
        let t = EventType::TelephonyUpdated;
        assert!(!passes(json!({"data.personality": "originator"}), t, &body));
        assert!(passes(json!({"data.personality": "terminator"}), t, &body));
        assert!(passes(
            json!({"data.personality": ["originator", "terminator"]}),
            t,
            &body
        ));
    }
    // The same path in a call event's body.
    let ended = crate::call_events::example(EventType::CallEnded).unwrap();
    assert!(passes(
        json!({"data.personality": {"eq": "terminator"}}),
        EventType::CallEnded,
        &ended
    ));
    assert!(!passes(
        json!({"data.personality": "originator"}),
        EventType::CallEnded,
        &ended
    ));
}

#[test]
fn the_catalogue_examples_inbound_external_and_one_queue() {
    let body = telephony(SEED_UPDATED);
    let t = EventType::TelephonyUpdated;
    let inbound_external =
        json!({"data.personality": "terminator", "data.remoteParty.callType": "external"});
    assert!(passes(inbound_external.clone(), t, &body));
    let one_queue = json!({"data.redirections.0.reason": "callQueue", "data.redirections.0.redirectingParty.name": "CQX Q1"});
    assert!(passes(one_queue.clone(), t, &body));
    let other_queue = json!({"data.redirections.0.redirectingParty.name": {"prefix": "Sales"}});
    assert!(!passes(other_queue, t, &body));
    // The deleted event carries no redirections: a queue condition does not hold on it.
    assert!(!passes(one_queue, t, &telephony(SEED_DELETED)));
}

#[test]
fn every_operator() {
    let body = telephony(SEED_UPDATED);
    let t = EventType::TelephonyUpdated;
    let cases = [
        (json!({"data.state": {"eq": "alerting"}}), true),
        (json!({"data.state": {"ne": "alerting"}}), false),
        (
            json!({"data.state": {"in": ["connected", "alerting"]}}),
            true,
        ),
        (
            json!({"data.state": {"nin": ["connected", "alerting"]}}),
            false,
        ),
        (
            json!({"data.remoteParty.number": {"prefix": "+1905"}}),
            true,
        ),
        (json!({"data.remoteParty.number": {"prefix": "+44"}}), false),
        (json!({"data.answered": {"exists": false}}), true),
        (json!({"data.callId": {"exists": true}}), true),
        (json!({"data.appearance": 1}), true),
        (json!({"data.appearance": 1.0}), true),
        (json!({"data.muted": false}), true),
        (json!({"data.nothing": {"ne": "x"}}), true),
        (json!({"data.nothing": {"nin": ["x"]}}), true),
        (json!({"data.nothing": "x"}), false),
        (json!({"data.nothing": {"prefix": ""}}), false),
        (json!({"data.remoteParty": {"prefix": "x"}}), false),
        // Every condition must hold.
        (json!({"data.state": "alerting", "data.muted": true}), false),
        // A telephony path resolves in the envelope, not the body.
        (json!({"Payload": {"exists": true}}), false),
        (json!({"event": "updated"}), true),
    ];
    for (filter, want) in cases {
        assert_eq!(passes(filter.clone(), t, &body), want, "{filter}");
    }
}

#[test]
fn invalid_filters_name_the_path_or_operator() {
    let cases = [
        (json!("data.personality"), "filter"),
        (json!({}), "filter"),
        (json!({"": 1}), "filter."),
        (json!({"data..personality": 1}), "filter.data..personality"),
        (json!({"a": {"gt": 1}}), "filter.a.gt"),
        (json!({"a": {"eq": 1, "ne": 2}}), "filter.a"),
        (json!({"a": {}}), "filter.a"),
        (json!({"a": {"eq": {"x": 1}}}), "filter.a.eq"),
        (json!({"a": {"in": "x"}}), "filter.a.in"),
        (json!({"a": {"nin": []}}), "filter.a.nin"),
        (json!({"a": [[1]]}), "filter.a"),
        (json!({"a": {"prefix": 1}}), "filter.a.prefix"),
        (json!({"a": {"exists": "yes"}}), "filter.a.exists"),
        (json!({"a": "x".repeat(MAX_VALUE_CHARS + 1)}), "filter.a"),
    ];
    for (filter, field) in cases {
        let e = error(filter.clone());
        assert_eq!(e.field, field, "{filter}: {e}");
        assert!(!e.message.is_empty());
    }
    let many: Map<String, Value> = (0..=MAX_CONDITIONS)
        .map(|i| (format!("k{i}"), json!(1)))
        .collect();
    assert_eq!(error(Value::Object(many)).field, "filter");
    let deep = ["a"; MAX_PATH_SEGMENTS + 1].join(".");
    assert!(error(json!({ deep.clone(): 1 }))
        .message
        .contains("not a path"));
    let e = error(json!({"data.personality": {"gt": 1}}));
    assert!(e.message.contains("`gt` is not an operator"), "{e}");
    assert!(e.message.contains("prefix"), "{e}");
}

#[test]
fn serialises_as_given_and_deserialising_validates() {
    let v = json!({"data.personality": "terminator", "data.state": {"in": ["alerting"]}});
    let f = Filter::parse(&v).unwrap();
    assert_eq!(serde_json::to_value(&f).unwrap(), v);
    assert_eq!(serde_json::from_value::<Filter>(v).unwrap(), f);
    let e = serde_json::from_value::<Filter>(json!({"a": {"gt": 1}})).unwrap_err();
    assert!(e.to_string().contains("filter.a.gt"), "{e}");
}

#[test]
fn catalogue_examples_parse_and_select_the_example_call() {
    assert!(examples(EventType::PresenceChanged).is_empty());
    assert_eq!(examples(EventType::TelephonyCreated).len(), 2);
    for t in EventType::CALL {
        let body = crate::call_events::example(t).unwrap();
        for ex in examples(t) {
            let f = Filter::parse(&ex.filter).unwrap();
            // The catalogue's example call is an inbound external call through "Sales Queue",
            // answered.
            let want = !ex.description.contains("missed");
            assert_eq!(f.matches(document(t, &body)), want, "{t}: {}", ex.filter);
        }
    }
}

/// The pruned document (parsed for the filters only) answers every filter as the whole one does.
#[test]
fn pruned_and_whole_documents_agree() {
    let filters: Vec<Filter> = [
        json!({"data.personality": "terminator", "data.remoteParty.callType": "external"}),
        json!({"data.redirections.0.reason": "callQueue", "data.redirections.0.redirectingParty.name": {"prefix": "CQX"}}),
        json!({"data.redirections.1.reason": {"exists": false}, "data.redirections.01": {"exists": false}}),
        json!({"data.remoteParty": {"exists": true}, "data.remoteParty.name.x": {"exists": false}}),
        json!({"data": {"ne": 1}, "data.state": {"nin": ["connected"]}, "event": ["updated", "deleted"]}),
        json!({"data.outcome": {"in": ["answeredElsewhere", "answered"]}, "sequence": 2}),
        json!({"data.appearance": 1.0, "data.muted": false, "orgId": {"prefix": "Y2l"}}),
        json!({"type": {"prefix": "call:"}, "data.talkSeconds": 0}),
    ]
    .iter()
    .map(|v| Filter::parse(v).unwrap())
    .collect();
    let mut bodies: Vec<(EventType, String)> = [SEED_UPDATED, SEED_DELETED]
        .iter()
        .map(|f| (EventType::TelephonyUpdated, telephony(f).to_string()))
        .collect();
    for t in EventType::CALL {
        bodies.push((t, crate::call_events::example(t).unwrap().to_string()));
    }
    let mut passed = 0;
    for (t, body) in &bodies {
        let whole: Value = serde_json::from_str(body).unwrap();
        let pruned = pruned_document(*t, body, &filters);
        for f in &filters {
            let want = f.matches(document(*t, &whole));
            assert_eq!(f.matches(&pruned), want, "{t} {:?}", f.as_json());
            // Each filter alone too.
            assert_eq!(f.matches(&pruned_document(*t, body, [f])), want);
            passed += usize::from(want);
        }
    }
    assert!(
        passed > 5,
        "the cases exercise passing filters too ({passed})"
    );
    assert_eq!(
        pruned_document(EventType::CallEnded, "not json", &filters),
        Value::Null
    );
}

proptest::proptest! {
    /// Random paths over the telephony and call bodies' names: the pruned document answers
    /// `exists` (the most path-sensitive condition) and `eq null` as the whole one does.
    #[test]
    fn pruned_agrees_on_random_paths(
        paths in proptest::collection::vec(
            proptest::collection::vec(
                proptest::sample::select(vec![
                    "data", "personality", "remoteParty", "name", "redirections", "0", "1", "01",
                    "reason", "redirectingParty", "state", "event", "type", "sequence", "x",
                ]),
                1..5,
            ),
            1..6,
        ),
        exists in proptest::bool::ANY,
    ) {
        let filters: Vec<Filter> = paths
            .iter()
            .map(|p| {
                let cond = if exists { json!({"exists": true}) } else { Value::Null };
                Filter::parse(&json!({ p.join("."): cond })).unwrap()
            })
            .collect();
        let bodies = [
            (EventType::TelephonyUpdated, telephony(SEED_UPDATED).to_string()),
            (EventType::CallEnded, crate::call_events::example(EventType::CallEnded).unwrap().to_string()),
        ];
        for (t, body) in &bodies {
            let whole: Value = serde_json::from_str(body).unwrap();
            let pruned = pruned_document(*t, body, &filters);
            for f in &filters {
                proptest::prop_assert_eq!(f.matches(&pruned), f.matches(document(*t, &whole)));
            }
        }
    }
}
