//! Derived call events (`call:ringing`, `call:answered`, `call:held`, `call:resumed`,
//! `call:transferred`, `call:ended`; docs/call-events.md): a call leg's story, computed from the
//! per-`callId` record the ingest already keeps (`call_state::CallRecord`), whatever order and
//! however often Webex delivers the leg's `created`/`updated`/`deleted` events.
//!
//! Exactly once per leg: [`derive`] looks at the whole history (ordered by event time) and emits
//! what it implies and the record does not yet have a mark for. The marks are stored on the
//! observation that caused them, in the ingest's one conditional call-state write (no other
//! table write), so a retry of that Webex event re-queues the same events under the same
//! deterministic ids ([`event_id`]: call id + type + occurrence), which the delivery worker's
//! attempt claim collapses into one POST.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::call_state::{
    ApplyOutcome, CallEventMark, CallObservation, CallOutcome, CallRecord, LegFacts,
};
use crate::events::{rfc3339_millis, EventType, OutboundEvent};
use crate::ids::EventId;
use crate::webex::{CallParty, Redirection, TelephonyCallData, TelephonyEnvelope};

/// What the call record keeps of one Webex event.
pub fn observation(envelope: &TelephonyEnvelope) -> CallObservation {
    let data = &envelope.data;
    CallObservation {
        stage: envelope.event.clone(),
        event_type: data.event_type.as_str().to_owned(),
        state: data.state.as_ref().map(|s| s.as_str().to_owned()),
        event_timestamp: data.event_timestamp.as_str().to_owned(),
        event_time: data.event_timestamp.at(),
        key: data.dedupe_key(),
        derived: Vec::new(),
    }
}

/// One Webex event applied to its leg's record.
#[derive(Debug)]
pub struct Applied {
    /// The record to write (its version not yet bumped); unchanged for `AlreadySeen`.
    pub record: CallRecord,
    pub outcome: ApplyOutcome,
    /// The call events to queue: the new ones, or, for an event already in the record (a
    /// retry), the ones it caused the first time (queued again under the same ids).
    pub marks: Vec<CallEventMark>,
}

impl Applied {
    /// Is there anything to write?
    pub fn changed(&self) -> bool {
        self.outcome != ApplyOutcome::AlreadySeen
    }
}

/// Applies `envelope` to the leg's stored record (`None`: the first event seen for the leg):
/// history, latest state, leg facts and the call events it newly implies.
pub fn apply(stored: Option<CallRecord>, envelope: &TelephonyEnvelope, expires_at: i64) -> Applied {
    let obs = observation(envelope);
    let data = &envelope.data;
    let (mut record, outcome) = match stored {
        None => (
            CallRecord::new(
                data.call_id.clone(),
                data.call_session_id.clone(),
                envelope.org_id.clone(),
                obs.clone(),
                expires_at,
            ),
            ApplyOutcome::Advanced,
        ),
        Some(mut r) => {
            let o = r.apply(obs.clone(), expires_at);
            if r.call_session_id.is_none() {
                r.call_session_id = data.call_session_id.clone();
            }
            (r, o)
        }
    };
    let marks = if outcome == ApplyOutcome::AlreadySeen {
        record
            .observation(&obs)
            .map(|o| o.derived.clone())
            .unwrap_or_default()
    } else {
        derive(&mut record, &obs, data)
    };
    Applied {
        record,
        outcome,
        marks,
    }
}

/// Folds what one event's `data` says about the leg into `leg` (earliest times win, so the
/// order of arrival does not matter).
pub fn observe(leg: &mut LegFacts, data: &TelephonyCallData) {
    fn earliest(slot: &mut Option<DateTime<Utc>>, at: Option<DateTime<Utc>>) {
        if let Some(at) = at {
            *slot = Some(slot.map_or(at, |s| s.min(at)));
        }
    }
    if leg.personality.is_none() {
        leg.personality = data.personality.clone();
    }
    earliest(&mut leg.started_at, data.created.as_ref().map(|t| t.at()));
    earliest(&mut leg.answered_at, data.answered.as_ref().map(|t| t.at()));
    earliest(
        &mut leg.ended_at,
        data.disconnected.as_ref().map(|t| t.at()),
    );
    leg.completed_elsewhere |= data.completed_elsewhere == Some(true);
    if leg.redirections.is_empty() {
        if let Some(r) = data.redirections.as_ref().filter(|r| !r.is_empty()) {
            leg.redirections = r.clone();
        }
    }
}

/// Did the leg connect at this observation (or is it in a state only a connected leg has)?
fn connected(o: &CallObservation) -> bool {
    matches!(
        o.event_type.as_str(),
        "answered" | "connected" | "held" | "resumed"
    ) || matches!(
        o.state.as_deref(),
        Some("connected" | "held" | "remoteHeld")
    )
}

/// On hold (`Some(true)`), off hold (`Some(false)`), or says nothing about it.
fn on_hold(o: &CallObservation) -> Option<bool> {
    match o.event_type.as_str() {
        "held" => Some(true),
        "resumed" | "answered" | "connected" => Some(false),
        _ => match o.state.as_deref() {
            Some("held") => Some(true),
            Some("connected") => Some(false),
            _ => None,
        },
    }
}

fn transferred(o: &CallObservation) -> bool {
    matches!(o.event_type.as_str(), "forwarded" | "transferred")
}

fn ended(o: &CallObservation) -> bool {
    o.stage == "deleted"
        || o.event_type == "disconnected"
        || o.state.as_deref() == Some("disconnected")
}

fn millis_between(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_milliseconds().max(0)
}

/// One event the history implies.
struct Implied {
    event: EventType,
    at: DateTime<Utc>,
    ring_ms: Option<i64>,
    talk_ms: Option<i64>,
    outcome: Option<CallOutcome>,
}

impl Implied {
    fn at(event: EventType, at: DateTime<Utc>) -> Self {
        Self {
            event,
            at,
            ring_ms: None,
            talk_ms: None,
            outcome: None,
        }
    }
}

/// Everything the record's history implies, in story order: ringing, answered, the holds,
/// resumes and transfers by time, ended. Holds and resumes are counted as runs, so that a late
/// or repeated event inside a hold adds none, and their counts never shrink as events arrive.
fn implied(record: &CallRecord) -> Vec<Implied> {
    let leg = &record.leg;
    let Some(first) = record.history.first() else {
        return Vec::new();
    };
    let started = leg
        .started_at
        .unwrap_or(first.event_time)
        .min(first.event_time);
    let answered = leg.answered_at.or_else(|| {
        record
            .history
            .iter()
            .find(|o| connected(o))
            .map(|o| o.event_time)
    });
    let ended_at = leg.ended_at.or_else(|| {
        record
            .history
            .iter()
            .find(|o| ended(o))
            .map(|o| o.event_time)
    });

    let mut out = vec![Implied::at(EventType::CallRinging, started)];
    if let Some(a) = answered {
        out.push(Implied {
            ring_ms: Some(millis_between(started, a)),
            ..Implied::at(EventType::CallAnswered, a)
        });
    }
    let mut middle = Vec::new();
    let mut held = false;
    // Two distinct Webex events of one transfer at the same instant (history keeps both, as
    // the dedupe key does) are one transfer.
    let mut transfer_at = None;
    for o in &record.history {
        match on_hold(o) {
            Some(true) if !held => {
                held = true;
                middle.push(Implied::at(EventType::CallHeld, o.event_time));
            }
            Some(false) if held => {
                held = false;
                middle.push(Implied::at(EventType::CallResumed, o.event_time));
            }
            _ => {}
        }
        if transferred(o) && transfer_at != Some(o.event_time) {
            transfer_at = Some(o.event_time);
            middle.push(Implied::at(EventType::CallTransferred, o.event_time));
        }
    }
    middle.sort_by_key(|i| i.at);
    out.extend(middle);
    if let Some(end) = ended_at {
        let outcome = if answered.is_some() {
            CallOutcome::Answered
        } else if leg.completed_elsewhere {
            CallOutcome::AnsweredElsewhere
        } else if leg.personality.as_deref() == Some("originator") {
            CallOutcome::Unanswered
        } else {
            CallOutcome::Missed
        };
        out.push(Implied {
            ring_ms: Some(millis_between(started, answered.unwrap_or(end).min(end))),
            talk_ms: Some(answered.map_or(0, |a| millis_between(a, end))),
            outcome: Some(outcome),
            ..Implied::at(EventType::CallEnded, end)
        });
    }
    out
}

/// Applies `data` to the record's leg facts and returns the call events the record now implies
/// that no earlier event emitted, each marked (type, occurrence, sequence) on the stored
/// observation `obs` so that the caller's one conditional write records them. Calling it again
/// with nothing new emits nothing.
pub fn derive(
    record: &mut CallRecord,
    obs: &CallObservation,
    data: &TelephonyCallData,
) -> Vec<CallEventMark> {
    observe(&mut record.leg, data);
    let mut seq = record.marks().map(|m| m.seq).max().unwrap_or(0);
    let all = implied(record);
    let mut fresh: Vec<CallEventMark> = Vec::new();
    for t in EventType::CALL {
        let implied: Vec<&Implied> = all.iter().filter(|i| i.event == t).collect();
        let emitted: Vec<DateTime<Utc>> = record
            .marks()
            .filter(|m| m.event == t)
            .map(|m| m.at)
            .collect();
        // The k-th occurrence is new when fewer than k were emitted. Its time: the earliest
        // implied one no emitted mark has (a late event may reveal an earlier hold), so two
        // marks rarely share a time.
        let mut unused = implied.iter().filter(|i| !emitted.contains(&i.at));
        for n in emitted.len() + 1..=implied.len() {
            let i = unused.next().unwrap_or(&implied[n - 1]);
            fresh.push(CallEventMark {
                event: t,
                n: n as u32,
                seq: 0,
                at: i.at,
                ring_ms: i.ring_ms,
                talk_ms: i.talk_ms,
                outcome: i.outcome,
            });
        }
    }
    // Sequence numbers in story order (EventType::CALL order, then time).
    fresh.sort_by_key(|m| {
        (
            m.event == EventType::CallEnded,
            m.event != EventType::CallRinging,
            m.at,
        )
    });
    for m in &mut fresh {
        seq += 1;
        m.seq = seq;
    }
    if let Some(stored) = record.history.iter_mut().find(|h| h.same_event(obs)) {
        stored.derived.extend(fresh.iter().cloned());
    }
    fresh
}

/// The deterministic id of a leg's call event: the same for every copy queued.
pub fn event_id(call_id: &str, mark: &CallEventMark) -> EventId {
    let seed = format!("{call_id}\n{}#{}", mark.event.as_str(), mark.n);
    EventId::derived(mark.at.timestamp_millis().max(0) as u64, seed.as_bytes())
}

/// The delivered body of a call event (docs/call-events.md).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CallEventBody<'a> {
    #[serde(rename = "type")]
    event_type: &'static str,
    sequence: u64,
    timestamp: String,
    org_id: &'a str,
    data: CallEventData<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CallEventData<'a> {
    call_id: &'a str,
    call_session_id: Option<&'a str>,
    person_id: Option<&'a str>,
    personality: Option<&'a str>,
    remote_party: Option<&'a CallParty>,
    redirections: &'a [Redirection],
    #[serde(skip_serializing_if = "Option::is_none")]
    occurrence: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    answered_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ring_seconds: Option<serde_json::Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    talk_seconds: Option<serde_json::Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<CallOutcome>,
}

/// Milliseconds as seconds, a whole number without a fraction (`4`, not `4.0`) as JavaScript's
/// `JSON.stringify` writes it: receivers verifying `X-Hook-Signature` over their re-serialised
/// parse of the body (the OpenWork webhook contract, docs/delivery-worker.md) get the same bytes.
fn seconds(ms: i64) -> serde_json::Number {
    if ms % 1000 == 0 {
        serde_json::Number::from(ms / 1000)
    } else {
        serde_json::Number::from_f64(ms as f64 / 1000.0).expect("finite")
    }
}

/// The compact JSON body of `mark`, from the Webex event that caused it (the party, the
/// redirections) and what the record knows about the leg.
pub fn body(mark: &CallEventMark, leg: &LegFacts, envelope: &TelephonyEnvelope) -> String {
    let d = &envelope.data;
    let before = |ms: Option<i64>| ms.map(|ms| mark.at - chrono::Duration::milliseconds(ms));
    let (started, answered, ended) = match mark.event {
        EventType::CallRinging => (Some(mark.at), None, None),
        EventType::CallAnswered => (before(mark.ring_ms), Some(mark.at), None),
        EventType::CallEnded => {
            let answered = (mark.outcome == Some(CallOutcome::Answered))
                .then(|| before(mark.talk_ms))
                .flatten();
            let ring_end = answered.unwrap_or(mark.at);
            let started = mark
                .ring_ms
                .map(|ms| ring_end - chrono::Duration::milliseconds(ms));
            (started, answered, Some(mark.at))
        }
        _ => (None, None, None),
    };
    let redirections = d
        .redirections
        .as_deref()
        .filter(|r| !r.is_empty())
        .unwrap_or(&leg.redirections);
    let body = CallEventBody {
        event_type: mark.event.as_str(),
        sequence: mark.seq,
        timestamp: rfc3339_millis(mark.at),
        org_id: &envelope.org_id,
        data: CallEventData {
            call_id: &d.call_id,
            call_session_id: d.call_session_id.as_deref(),
            person_id: envelope.actor_id.as_deref(),
            personality: d.personality.as_deref().or(leg.personality.as_deref()),
            remote_party: d.remote_party.as_ref(),
            redirections,
            occurrence: matches!(
                mark.event,
                EventType::CallHeld | EventType::CallResumed | EventType::CallTransferred
            )
            .then_some(mark.n),
            started_at: started.map(rfc3339_millis),
            answered_at: answered.map(rfc3339_millis),
            ended_at: ended.map(rfc3339_millis),
            ring_seconds: mark.ring_ms.map(seconds),
            talk_seconds: mark.talk_ms.map(seconds),
            outcome: mark.outcome,
        },
    };
    serde_json::to_string(&body).expect("serialising owned JSON values cannot fail")
}

/// The outbound event of `mark` for the leg `record`, caused by `envelope`.
pub fn outbound(
    mark: &CallEventMark,
    record: &CallRecord,
    envelope: &TelephonyEnvelope,
    now: DateTime<Utc>,
) -> OutboundEvent {
    OutboundEvent {
        id: event_id(&record.call_id, mark),
        event_type: mark.event,
        org_id: envelope.org_id.clone(),
        created_at: now,
        body: body(mark, &record.leg, envelope),
    }
}

/// The catalogue's example body of a call event type (`None` for the other types): one inbound
/// call through a call queue, rung 4.2 s, talked 95.3 s, held once, built by [`body`] itself.
pub fn example(t: EventType) -> Option<Value> {
    if !t.is_call_event() {
        return None;
    }
    let at = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .expect("valid example timestamp")
            .with_timezone(&Utc)
    };
    let envelope: TelephonyEnvelope = serde_json::from_value(serde_json::json!({
        "resource": "telephony_calls",
        "event": if t == EventType::CallEnded { "deleted" } else { "updated" },
        "orgId": "Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi8xNzExMTdkNi04YjgyLTQ0Y2EtOThlOS1hYzExNTdmMmNkMWQ",
        "actorId": "Y2lzY29zcGFyazovL3VzL1BFT1BMRS84OWYwOGUyYi02MDM4LTQ3MmMtYjcyYy0zNjQyNjIwMThjNjE",
        "data": {
            "eventType": "received",
            "eventTimestamp": "2025-08-14T18:52:41.729Z",
            "callId": "Y2lzY29zcGFyazovL3VzL0NBTEwvY2FsbGhhbGYtOTgyNzEzMjM3MDow",
            "callSessionId": "MWFmMDFjNTQtOTdlMS00ODA3LWEzZjgtMTY2ODNiNjFhNjQw",
            "personality": "terminator",
            "remoteParty": {"name": "Example Caller", "number": "+15555550100", "privacyEnabled": false, "callType": "external"},
            "redirections": [{"reason": "callQueue", "redirectingParty": {"name": "Sales Queue", "number": "+15555550199", "privacyEnabled": false, "callType": "location"}}]
        }
    }))
    .expect("example envelope matches the Webex model");
    let (seq, n, when, ring_ms, talk_ms, outcome) = match t {
        EventType::CallRinging => (1, 1, "2025-08-14T18:52:41.728Z", None, None, None),
        EventType::CallAnswered => (2, 1, "2025-08-14T18:52:45.928Z", Some(4_200), None, None),
        EventType::CallHeld => (3, 1, "2025-08-14T18:53:30.000Z", None, None, None),
        EventType::CallResumed => (4, 1, "2025-08-14T18:53:41.500Z", None, None, None),
        EventType::CallTransferred => (5, 1, "2025-08-14T18:54:10.000Z", None, None, None),
        _ => (
            6,
            1,
            "2025-08-14T18:54:21.228Z",
            Some(4_200),
            Some(95_300),
            Some(CallOutcome::Answered),
        ),
    };
    let mark = CallEventMark {
        event: t,
        n,
        seq,
        at: at(when),
        ring_ms,
        talk_ms,
        outcome,
    };
    let body = body(&mark, &LegFacts::default(), &envelope);
    Some(serde_json::from_str(&body).expect("bodies are JSON"))
}

#[cfg(test)]
mod tests;
