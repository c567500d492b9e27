use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

const SEED_UPDATED: &str = include_str!("../../../tests/fixtures/seed001/updated.json");
const SEED_CREATED: &str = include_str!("../../../tests/fixtures/seed001/created.json");
const SEED_DELETED: &str = include_str!("../../../tests/fixtures/seed001/deleted.json");

fn seed(fixture: &str) -> TelephonyEnvelope {
    let v: Value = serde_json::from_str(fixture).unwrap();
    serde_json::from_value(v["items"].clone()).unwrap()
}

/// One Webex event of a leg `call` (terminator unless said otherwise) at `t` seconds past
/// 12:00:00, with `extra` merged into `data`.
fn event(stage: &str, event_type: &str, state: &str, t: f64, extra: Value) -> TelephonyEnvelope {
    let mut data = json!({
        "eventType": event_type,
        "eventTimestamp": ts(t),
        "callId": "call-1",
        "callSessionId": "session-1",
        "personality": "terminator",
        "state": state,
        "remoteParty": {"name": "Caller", "number": "+15555550100", "callType": "external"},
        "created": ts(0.0),
    });
    for (k, v) in extra.as_object().unwrap() {
        data[k] = v.clone();
    }
    serde_json::from_value(json!({
        "resource": "telephony_calls",
        "event": stage,
        "orgId": "org-1",
        "actorId": "person-1",
        "data": data,
    }))
    .unwrap()
}

fn ts(t: f64) -> String {
    let at = DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + chrono::Duration::milliseconds((t * 1000.0) as i64);
    rfc3339_millis(at)
}

/// Runs `events` through `apply` as the ingest does (the record written after each changed one)
/// and returns every mark each returned, with the final record.
fn run(events: &[TelephonyEnvelope]) -> (Vec<CallEventMark>, CallRecord) {
    let mut stored: Option<CallRecord> = None;
    let mut out = Vec::new();
    for e in events {
        let applied = apply(stored.clone(), e, 100);
        if applied.changed() {
            out.extend(applied.marks);
            stored = Some(applied.record);
        }
    }
    (out, stored.expect("something was applied"))
}

fn kinds(marks: &[CallEventMark]) -> Vec<&'static str> {
    marks.iter().map(|m| m.event.as_str()).collect()
}

fn body_of(mark: &CallEventMark, record: &CallRecord, e: &TelephonyEnvelope) -> Value {
    serde_json::from_str(&body(mark, &record.leg, e)).unwrap()
}

/// The answered leg: received → answered → held → resumed → disconnected, 4 s ringing, 50 s
/// talking. Webex's later events carry the leg's `answered` time.
fn answered_leg() -> Vec<TelephonyEnvelope> {
    let answered = json!({"answered": ts(4.0)});
    vec![
        event("created", "received", "alerting", 0.5, json!({})),
        event("updated", "answered", "connected", 4.0, answered.clone()),
        event("updated", "held", "held", 20.0, answered.clone()),
        event("updated", "resumed", "connected", 30.0, answered.clone()),
        event(
            "deleted",
            "disconnected",
            "disconnected",
            54.0,
            json!({"answered": ts(4.0), "disconnected": ts(54.0)}),
        ),
    ]
}

#[test]
fn the_captured_call_in_captured_order_rings_once_and_ends_answered_elsewhere() {
    let events = [seed(SEED_UPDATED), seed(SEED_CREATED), seed(SEED_DELETED)];
    let (marks, record) = run(&events);
    assert_eq!(kinds(&marks), ["call:ringing", "call:ended"]);
    assert_eq!(marks[0].seq, 1);
    assert_eq!(marks[1].seq, 2);
    let ended = &marks[1];
    assert_eq!(ended.outcome, Some(CallOutcome::AnsweredElsewhere));
    // data.created 18:52:41.728 → data.disconnected 18:52:43.357.
    assert_eq!(ended.ring_ms, Some(1_629));
    assert_eq!(ended.talk_ms, Some(0));
    // Whole seconds without a fraction, as JavaScript writes them (a receiver re-serialising
    // the parsed body must get the signed bytes).
    assert!(
        body(ended, &record.leg, &events[2]).contains(r#""ringSeconds":1.629,"talkSeconds":0,"#)
    );
    let b = body_of(ended, &record, &events[2]);
    assert_eq!(b["type"], "call:ended");
    assert_eq!(b["sequence"], 2);
    assert_eq!(b["timestamp"], "2025-08-14T18:52:43.357Z");
    assert_eq!(b["orgId"], events[2].org_id);
    let d = &b["data"];
    assert_eq!(d["callId"], events[2].data.call_id);
    assert_eq!(
        d["callSessionId"],
        "MWFmMDFjNTQtOTdlMS00ODA3LWEzZjgtMTY2ODNiNjFhNjQw"
    );
    assert_eq!(d["personId"], events[2].actor_id.clone().unwrap());
    assert_eq!(d["personality"], "terminator");
    assert_eq!(d["remoteParty"]["name"], "POUYA SHAHRDAMI");
    // The disconnected event carries no redirections: the leg's (the call queue) are used.
    assert_eq!(d["redirections"][0]["reason"], "callQueue");
    assert_eq!(d["startedAt"], "2025-08-14T18:52:41.728Z");
    assert_eq!(d["endedAt"], "2025-08-14T18:52:43.357Z");
    assert!(d.get("answeredAt").is_none());
    assert_eq!(d["ringSeconds"], 1.629);
    assert_eq!(d["talkSeconds"], 0);
    assert_eq!(d["outcome"], "answeredElsewhere");
    let ringing = body_of(&marks[0], &record, &events[0]);
    assert_eq!(ringing["timestamp"], "2025-08-14T18:52:41.728Z");
    assert_eq!(ringing["data"]["startedAt"], "2025-08-14T18:52:41.728Z");
    assert_eq!(
        ringing["data"]["redirections"][0]["redirectingParty"]["name"],
        "CQX Q1"
    );
}

#[test]
fn deleted_before_created_rings_then_ends_and_the_late_created_adds_nothing() {
    let events = [seed(SEED_DELETED), seed(SEED_CREATED), seed(SEED_UPDATED)];
    let (marks, _) = run(&events);
    assert_eq!(kinds(&marks), ["call:ringing", "call:ended"]);
    assert_eq!(marks.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(marks[1].outcome, Some(CallOutcome::AnsweredElsewhere));
}

#[test]
fn an_answered_leg_shuffled_with_duplicates_tells_its_story_once() {
    let leg = answered_leg();
    let shuffled = [
        leg[3].clone(),
        leg[4].clone(),
        leg[0].clone(),
        leg[3].clone(),
        leg[2].clone(),
        leg[4].clone(),
        leg[1].clone(),
        leg[0].clone(),
    ];
    let (marks, record) = run(&shuffled);
    let mut got = kinds(&marks);
    got.sort();
    assert_eq!(
        got,
        [
            "call:answered",
            "call:ended",
            "call:held",
            "call:resumed",
            "call:ringing"
        ]
    );
    let mut seqs: Vec<u64> = marks.iter().map(|m| m.seq).collect();
    seqs.sort();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    let ended = marks
        .iter()
        .find(|m| m.event == EventType::CallEnded)
        .unwrap();
    assert_eq!(ended.outcome, Some(CallOutcome::Answered));
    assert_eq!(ended.talk_ms, Some(50_000));
    assert_eq!(ended.ring_ms, Some(4_000));
    let b = body_of(ended, &record, &leg[4]);
    assert_eq!(b["data"]["talkSeconds"], 50);
    assert_eq!(b["data"]["ringSeconds"], 4);
    assert_eq!(b["data"]["startedAt"], ts(0.0));
    assert_eq!(b["data"]["answeredAt"], ts(4.0));
    assert_eq!(b["data"]["endedAt"], ts(54.0));
    // In order, the story is told in order.
    let (in_order, _) = run(&leg);
    assert_eq!(
        kinds(&in_order),
        [
            "call:ringing",
            "call:answered",
            "call:held",
            "call:resumed",
            "call:ended"
        ]
    );
    assert_eq!(
        in_order.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    let answered = body_of(&in_order[1], &record, &leg[1]);
    assert_eq!(answered["data"]["ringSeconds"], 4);
    assert_eq!(answered["data"]["startedAt"], ts(0.0));
    let held = body_of(&in_order[2], &record, &leg[2]);
    assert_eq!(held["data"]["occurrence"], 1);
    assert_eq!(held["timestamp"], ts(20.0));
}

/// Two distinct Webex events equal on stage, type, state and timestamp (the second says the call
/// was completed elsewhere) are two events, as the ingest's dedupe key tells them apart: the
/// second's leg facts count. An exact redelivery (the same `data`) is still one.
#[test]
fn a_distinct_event_equal_on_stage_type_state_and_time_still_counts() {
    let first = event("updated", "received", "alerting", 0.5, json!({}));
    let elsewhere = event(
        "updated",
        "received",
        "alerting",
        0.5,
        json!({"completedElsewhere": true}),
    );
    let end = event("deleted", "disconnected", "disconnected", 9.0, json!({}));
    let (marks, record) = run(&[first.clone(), elsewhere.clone(), first, elsewhere, end]);
    assert_eq!(kinds(&marks), ["call:ringing", "call:ended"]);
    assert_eq!(marks[1].outcome, Some(CallOutcome::AnsweredElsewhere));
    assert_eq!(record.history.len(), 3, "{:?}", record.history);
    // Two distinct events of one transfer at one instant: one call:transferred.
    let forwarded = |extra| event("updated", "forwarded", "connected", 5.0, extra);
    let (marks, _) = run(&[
        event("created", "received", "alerting", 0.5, json!({})),
        forwarded(json!({})),
        forwarded(json!({"muted": true})),
    ]);
    assert_eq!(
        kinds(&marks),
        ["call:ringing", "call:answered", "call:transferred"]
    );
}

#[test]
fn a_retry_of_an_applied_event_re_queues_the_same_marks_and_writes_nothing() {
    let leg = answered_leg();
    let first = apply(None, &leg[1], 100);
    assert_eq!(kinds(&first.marks), ["call:ringing", "call:answered"]);
    // Stored; the queueing failed; Webex retries the same event.
    let retry = apply(Some(first.record.clone()), &leg[1], 100);
    assert!(!retry.changed());
    assert_eq!(retry.marks, first.marks);
    let ids = |m: &[CallEventMark]| m.iter().map(|m| event_id("call-1", m)).collect::<Vec<_>>();
    assert_eq!(ids(&retry.marks), ids(&first.marks));
    assert_ne!(ids(&first.marks)[0], ids(&first.marks)[1]);
    assert_eq!(
        body(&retry.marks[1], &retry.record.leg, &leg[1]),
        body(&first.marks[1], &first.record.leg, &leg[1])
    );
}

#[test]
fn outcomes_missed_unanswered_and_two_holds() {
    let missed = [
        event("created", "received", "alerting", 0.2, json!({})),
        event(
            "deleted",
            "disconnected",
            "disconnected",
            20.0,
            json!({"disconnected": ts(20.0)}),
        ),
    ];
    let (m, _) = run(&missed);
    assert_eq!(m[1].outcome, Some(CallOutcome::Missed));
    assert_eq!(m[1].ring_ms, Some(20_000));

    let outbound = |e: TelephonyEnvelope| {
        let mut v = serde_json::to_value(e).unwrap();
        v["data"]["personality"] = "originator".into();
        serde_json::from_value::<TelephonyEnvelope>(v).unwrap()
    };
    let (m, _) = run(&[
        outbound(event("created", "originated", "connecting", 0.1, json!({}))),
        outbound(event(
            "deleted",
            "disconnected",
            "disconnected",
            9.0,
            json!({}),
        )),
    ]);
    assert_eq!(m[1].outcome, Some(CallOutcome::Unanswered));

    let leg = answered_leg();
    let twice = [
        leg[0].clone(),
        leg[1].clone(),
        event("updated", "held", "held", 10.0, json!({})),
        event("updated", "resumed", "connected", 12.0, json!({})),
        leg[2].clone(),
        // Webex repeating the state inside the second hold adds no hold.
        event("updated", "updated", "held", 25.0, json!({})),
        leg[3].clone(),
        event("updated", "forwarded", "connected", 40.0, json!({})),
        leg[4].clone(),
    ];
    let (m, _) = run(&twice);
    assert_eq!(
        kinds(&m),
        [
            "call:ringing",
            "call:answered",
            "call:held",
            "call:resumed",
            "call:held",
            "call:resumed",
            "call:transferred",
            "call:ended"
        ]
    );
    assert_eq!(m[4].n, 2);
    // The same events with the first hold's pair arriving last: still two holds, two resumes.
    let mut late = twice.to_vec();
    let pair: Vec<_> = late.drain(2..4).collect();
    late.extend(pair);
    let (m2, _) = run(&late);
    let mut a = kinds(&m);
    let mut b = kinds(&m2);
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

#[test]
fn every_call_type_has_an_example_body_and_ids_are_deterministic() {
    for t in EventType::CALL {
        let v = example(t).expect("a call type has an example");
        assert_eq!(v["type"], t.as_str());
        assert!(v["data"]["callId"].is_string());
    }
    assert!(example(EventType::TelephonyCreated).is_none());
    let ended = example(EventType::CallEnded).unwrap();
    assert_eq!(ended["data"]["outcome"], "answered");
    assert_eq!(ended["data"]["talkSeconds"], 95.3);
    assert_eq!(ended["data"]["answeredAt"], "2025-08-14T18:52:45.928Z");
    assert_eq!(ended["data"]["startedAt"], "2025-08-14T18:52:41.728Z");
}

/// `leg` with duplicates: `order` indexes into it (any length, repeats allowed).
fn pick(leg: &[TelephonyEnvelope], order: &[usize]) -> Vec<TelephonyEnvelope> {
    order.iter().map(|i| leg[i % leg.len()].clone()).collect()
}

proptest! {
    /// Any arrival order of the answered leg, each event at least once and some twice: each call
    /// event exactly once, sequences 1..=5, and the same outcome and durations.
    #[test]
    fn any_order_and_duplicates_emit_each_event_once(
        perm in Just((0..5usize).collect::<Vec<_>>()).prop_shuffle(),
        dups in proptest::collection::vec(0..5usize, 0..6),
        insert_at in proptest::collection::vec(0..10usize, 6),
    ) {
        let leg = answered_leg();
        let mut order = perm.clone();
        for (d, at) in dups.iter().zip(&insert_at) {
            order.insert(at % (order.len() + 1), *d);
        }
        let (marks, _) = run(&pick(&leg, &order));
        let mut got = kinds(&marks);
        got.sort();
        prop_assert_eq!(got, vec!["call:answered", "call:ended", "call:held", "call:resumed", "call:ringing"]);
        let mut seqs: Vec<u64> = marks.iter().map(|m| m.seq).collect();
        seqs.sort();
        prop_assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
        let ended = marks.iter().find(|m| m.event == EventType::CallEnded).unwrap();
        prop_assert_eq!(ended.outcome, Some(CallOutcome::Answered));
        prop_assert_eq!(ended.talk_ms, Some(50_000));
        prop_assert_eq!(ended.ring_ms, Some(4_000));
    }

    /// The captured call in any order, with repeats: one ringing, one ended answeredElsewhere.
    #[test]
    fn the_captured_call_in_any_order(order in proptest::collection::vec(0..3usize, 3..8)) {
        let leg = [seed(SEED_UPDATED), seed(SEED_CREATED), seed(SEED_DELETED)];
        let mut order = order;
        order.extend([0, 1, 2]);
        let (marks, _) = run(&pick(&leg, &order));
        prop_assert_eq!(kinds(&marks), vec!["call:ringing", "call:ended"]);
        prop_assert_eq!(marks[1].outcome, Some(CallOutcome::AnsweredElsewhere));
    }
}
