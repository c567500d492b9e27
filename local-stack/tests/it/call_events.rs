//! Derived call events end to end (docs/call-events.md): Webex telephony events in, signed
//! `call:*` deliveries out, each exactly once per call leg whatever the order and duplicates; and
//! payload filters set through the API, applied at fan-out.

use std::time::Duration;

use relay_shared::signing::SigningSecret;
use serde_json::{json, Value};

use crate::support::*;

const CALL_TYPES: &[&str] = &[
    "call:ringing",
    "call:answered",
    "call:held",
    "call:resumed",
    "call:transferred",
    "call:ended",
];

/// A receiver, the stack, and a subscription of the receiver to every call event type.
async fn subscribed(aws: bool) -> (Receiver, Stack, SigningSecret) {
    let receiver = Receiver::start(Behaviour::Ok).await;
    let stack = Stack::start(&[], aws).await;
    let secret = SigningSecret::generate();
    stack
        .subscribe_to(&receiver.url, secret.expose(), CALL_TYPES)
        .await;
    (receiver, stack, secret)
}

/// Every delivery verifies under the external verifiers; the stack stops cleanly.
async fn finish(receiver: Receiver, stack: Stack, secret: &SigningSecret) {
    let captures = receiver.log.lock().unwrap().captures.clone();
    crate::run_external_verifiers(&captures, secret.expose());
    stack.stop().await;
}

/// Waits for `n` deliveries, gives a wrong extra one a second to (wrongly) arrive, and returns
/// every delivered body.
async fn bodies(receiver: &Receiver, n: usize) -> Vec<Value> {
    assert_eq!(
        receiver
            .wait_for_successes(n, Duration::from_secs(30))
            .await,
        n
    );
    receiver
        .wait_for_successes(n + 1, Duration::from_secs(1))
        .await;
    let captures = receiver.log.lock().unwrap().captures.clone();
    captures.iter().map(Capture::typed_body).collect()
}

fn types(bodies: &[Value]) -> Vec<String> {
    let mut t: Vec<String> = bodies
        .iter()
        .map(|b| b["type"].as_str().unwrap().to_owned())
        .collect();
    t.sort();
    t
}

/// The captured call in captured order (updated, created, deleted), and again (duplicates): one
/// `call:ringing`, one `call:ended` with `outcome: answeredElsewhere`, signed like every delivery.
async fn the_captured_call(aws: bool) {
    let (receiver, stack, secret) = subscribed(aws).await;
    let seeds = seed_envelopes();
    for _ in 0..2 {
        for (envelope, _) in &seeds {
            assert_eq!(stack.ingest(envelope).await, 200);
        }
    }
    let got = bodies(&receiver, 2).await;
    assert_eq!(types(&got), ["call:ended", "call:ringing"]);
    let ended = got.iter().find(|b| b["type"] == "call:ended").unwrap();
    assert_eq!(ended["data"]["outcome"], "answeredElsewhere");
    assert_eq!(ended["data"]["callId"], seeds[0].1["data"]["callId"]);
    assert_eq!(ended["data"]["personality"], "terminator");
    assert_eq!(ended["data"]["talkSeconds"], 0);
    assert_eq!(ended["sequence"], 2);
    finish(receiver, stack, &secret).await;
}

/// A received → answered → held → resumed → disconnected leg, posted shuffled and with
/// duplicates: ringing, answered, held, resumed, ended once each; `outcome: answered` and
/// `talkSeconds` right.
async fn a_shuffled_leg(aws: bool) {
    let (receiver, stack, secret) = subscribed(aws).await;
    let template = seed_envelopes().remove(1).1;
    let start = chrono::Utc::now() - chrono::Duration::minutes(10);
    let at = |s: i64| {
        (start + chrono::Duration::seconds(s)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let leg_event = |stage: &str, event_type: &str, state: &str, t: i64| {
        let mut v = template.clone();
        v["event"] = stage.into();
        let d = &mut v["data"];
        d["callId"] = "e2e-shuffled-call".into();
        d["eventType"] = event_type.into();
        d["state"] = state.into();
        d["eventTimestamp"] = at(t).into();
        d["created"] = at(0).into();
        if t >= 3 {
            d["answered"] = at(3).into();
        }
        if stage == "deleted" {
            d["disconnected"] = at(t).into();
        }
        v.to_string()
    };
    let leg = [
        leg_event("created", "received", "alerting", 0),
        leg_event("updated", "answered", "connected", 3),
        leg_event("updated", "held", "held", 40),
        leg_event("updated", "resumed", "connected", 52),
        leg_event("deleted", "disconnected", "disconnected", 90),
    ];
    for i in [4, 2, 4, 0, 3, 1, 2, 0] {
        assert_eq!(stack.ingest(&leg[i]).await, 200);
    }
    let got = bodies(&receiver, 5).await;
    assert_eq!(
        types(&got),
        [
            "call:answered",
            "call:ended",
            "call:held",
            "call:resumed",
            "call:ringing"
        ]
    );
    let mut seqs: Vec<u64> = got
        .iter()
        .map(|b| b["sequence"].as_u64().unwrap())
        .collect();
    seqs.sort();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    let ended = got.iter().find(|b| b["type"] == "call:ended").unwrap();
    assert_eq!(ended["data"]["outcome"], "answered");
    assert_eq!(ended["data"]["talkSeconds"], 87);
    assert_eq!(ended["data"]["ringSeconds"], 3);
    finish(receiver, stack, &secret).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_events_of_the_captured_call_in_memory() {
    the_captured_call(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_events_of_the_captured_call_on_aws_adapters() {
    if aws_available("call_events_of_the_captured_call_on_aws_adapters") {
        the_captured_call(true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_events_of_a_shuffled_leg_in_memory() {
    a_shuffled_leg(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_events_of_a_shuffled_leg_on_aws_adapters() {
    if aws_available("call_events_of_a_shuffled_leg_on_aws_adapters") {
        a_shuffled_leg(true).await;
    }
}

/// Payload filters through the API and the local stack: a webhook filtering on
/// `data.personality` = `originator` receives none of the captured (terminator) events, one
/// filtering on `terminator` all three (docs/call-events.md#payload-filters); a bad operator is a
/// 422 naming it.
async fn a_personality_filter(aws: bool) {
    let originators = Receiver::start(Behaviour::Ok).await;
    let terminators = Receiver::start(Behaviour::Ok).await;
    let stack = Stack::start(&[], aws).await;
    let create = |url: &str, filter: Value| {
        json!({
            "name": "filtered",
            "url": url,
            "eventTypes": ["telephony:created", "telephony:updated", "telephony:deleted"],
            "filter": filter,
            "rateLimitPerMinute": 1000000
        })
    };
    let (status, body) = stack
        .api(
            reqwest::Method::POST,
            "/api/hooks/webhooks",
            USER_KEY,
            Some(create(
                &originators.url,
                json!({"data.personality": {"gt": 1}}),
            )),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "filter.data.personality.gt", "{body}");
    for (rx, personality) in [(&originators, "originator"), (&terminators, "terminator")] {
        let (status, body) = stack
            .api(
                reqwest::Method::POST,
                "/api/hooks/webhooks",
                USER_KEY,
                Some(create(&rx.url, json!({"data.personality": personality}))),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(
            body["filter"],
            json!({"data.personality": personality}),
            "{body}"
        );
    }
    for (envelope, _) in &seed_envelopes() {
        assert_eq!(stack.ingest(envelope).await, 200);
    }
    assert_eq!(
        terminators
            .wait_for_successes(3, Duration::from_secs(30))
            .await,
        3
    );
    originators
        .wait_for_successes(1, Duration::from_secs(1))
        .await;
    assert!(
        originators.log.lock().unwrap().captures.is_empty(),
        "filtered out"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_personality_filter_in_memory() {
    a_personality_filter(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_personality_filter_on_aws_adapters() {
    if aws_available("a_personality_filter_on_aws_adapters") {
        a_personality_filter(true).await;
    }
}
