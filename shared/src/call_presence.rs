//! Presence from calls (opt-in on the ingest, `PRESENCE_FROM_CALLS`; docs/presence-poller.md,
//! "Presence from calls"): when a person's call leg connects or ends, the ingest emits that
//! person's `presence:changed` at once (`status` `call`, then back) instead of waiting for the
//! poller to see Webex's status change.
//!
//! Two views of a person are kept apart. The poller's record (`PresenceRecord`, `PERSON#<id>`)
//! is what Webex last said, with the person's sent item as the poller last wrote it. The ingest's
//! [`CallPresence`] (`PERSON#<id>#CALL`, the same partition) is what the ingest last told
//! receivers, the person's live legs and the status to return to. Receivers were last told the
//! ingest's `told` when it is newer than the poller's record (`told_at` > the record's `version`,
//! both ms), else the record's status. The ingest only builds a body from the poller's item (the
//! presence webhook contract's fields exactly as the poller sends them, `status` replaced), so a
//! person the poller never recorded gets nothing from the ingest.
//!
//! The poller consults the same state for every person whose Webex status changed
//! ([`verdict`]): a status receivers were already told is recorded but not emitted again; Webex's
//! pre-call status during a live call, and Webex's `call` shortly after the call ended, are late
//! echoes: neither emitted nor recorded (looked at again next cycle); anything else is a real
//! change and is emitted as usual.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::events::{presence_body, EventType, OutboundEvent};
use crate::ids::EventId;
use crate::ports::{PresenceRecord, PresenceStore};
use crate::webex::Person;

/// The status the ingest sets while a person has a connected leg (Webex's own value for it).
pub const CALL_STATUS: &str = "call";
/// How long after the ingest returned a person from `call` the poller takes Webex still saying
/// `call` as the ended call's late echo (Webex's presence lags the call's end).
pub const END_ECHO_MS: u64 = 60_000;
/// A live leg whose end never arrived stops counting this long after the person's last
/// connect or end (a lost `deleted` must not hold anyone at `call` for ever).
pub const MAX_LIVE_MS: u64 = 4 * 60 * 60 * 1000;
/// Conditional writes of one person's call presence before giving up (another leg of the same
/// person raced each time).
pub const MAX_ATTEMPTS: u32 = 4;

/// What the ingest keeps per person (`PRESENCE#<orgId>` / `PERSON#<personId>#CALL`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallPresence {
    pub person_id: String,
    /// The person's legs that connected and have not ended (call ids).
    #[serde(default)]
    pub live: Vec<String>,
    /// The status the ingest last emitted for the person (`call`, or the one returned to).
    #[serde(default)]
    pub told: Option<String>,
    /// The leg whose connect or end caused that emission (a retry of it re-emits the same event).
    #[serde(default)]
    pub told_by: Option<String>,
    /// When the ingest last emitted, ms since the epoch (0: never).
    #[serde(default)]
    pub told_at: u64,
    /// The status receivers had before the call: where the person returns when the last live
    /// leg ends (`None`: they were already at `call`, the ingest leaves the return to the poller).
    #[serde(default)]
    pub before: Option<String>,
    /// The last connect or end seen, ms since the epoch.
    #[serde(default)]
    pub updated_at: u64,
    /// 1 for the first write, then +1 per write (writes are conditional on the previous one).
    pub version: u64,
}

impl CallPresence {
    fn live_at(&self, now_ms: u64) -> bool {
        !self.live.is_empty() && now_ms.saturating_sub(self.updated_at) < MAX_LIVE_MS
    }

    /// Is the ingest's emission newer than the poller's record of `version`?
    fn told_after(&self, poller_version: u64) -> Option<&str> {
        self.told
            .as_deref()
            .filter(|_| self.told_at > poller_version)
    }
}

/// A leg of the person connected (`call:answered`) or ended (`call:ended`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Connected,
    Ended,
}

/// What the ingest does for one transition.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The state to write (its version already bumped); `None` for a retry (nothing changes).
    pub write: Option<CallPresence>,
    /// The person to emit (`status` set), with the time that names the event.
    pub emit: Option<(Person, u64)>,
}

fn ms(at: DateTime<Utc>) -> u64 {
    at.timestamp_millis().max(0) as u64
}

/// The ingest's step for `call_id` of `person_id` (pure): `record` is the poller's, `stored` the
/// ingest's own. `None`: nothing to write or emit (a person the poller never recorded with an
/// item, a leg ending that never connected, a repeated transition without an emission).
pub fn decide(
    record: Option<&PresenceRecord>,
    stored: Option<&CallPresence>,
    person_id: &str,
    call_id: &str,
    t: Transition,
    now_ms: u64,
) -> Option<Decision> {
    let record = record?;
    let item: Person = serde_json::from_str(record.item.as_deref()?).ok()?;
    let mut next = stored.cloned().unwrap_or_else(|| CallPresence {
        person_id: person_id.to_owned(),
        ..CallPresence::default()
    });
    // What receivers were last told: the newer of the two views.
    let told_now = next
        .told_after(record.version)
        .map(str::to_owned)
        .or_else(|| item.status.clone())?;
    let with_status = |status: &str, at: u64| {
        let mut p = item.clone();
        p.status = Some(status.to_owned());
        (p, at)
    };
    let is_live = next.live.iter().any(|c| c == call_id);
    // A retry of the transition that caused the last emission: the same event again.
    let retried = next.told_by.as_deref() == Some(call_id)
        && next.told_after(record.version).is_some()
        && match t {
            Transition::Connected => is_live && told_now == CALL_STATUS,
            Transition::Ended => !is_live && told_now != CALL_STATUS,
        };
    if retried {
        return Some(Decision {
            write: None,
            emit: Some(with_status(&told_now, next.told_at)),
        });
    }
    if !next.live_at(now_ms) {
        next.live.clear();
    }
    let mut emit = None;
    match t {
        Transition::Connected => {
            if next.live.iter().any(|c| c == call_id) {
                return None;
            }
            if told_now != CALL_STATUS {
                next.before = Some(told_now);
                emit = Some(with_status(CALL_STATUS, now_ms));
            } else if next.live.is_empty() {
                // Already at `call` (Webex said so first): the poller reports the return.
                next.before = None;
            }
            next.live.push(call_id.to_owned());
        }
        Transition::Ended => {
            let before = next.live.len();
            next.live.retain(|c| c != call_id);
            if next.live.len() == before {
                return None;
            }
            if next.live.is_empty() && told_now == CALL_STATUS {
                if let Some(back) = next.before.take().filter(|b| b != CALL_STATUS) {
                    emit = Some(with_status(&back, now_ms));
                }
            }
        }
    }
    if let Some((p, at)) = &emit {
        next.told = p.status.clone();
        next.told_by = Some(call_id.to_owned());
        next.told_at = *at;
    }
    next.updated_at = now_ms;
    next.version += 1;
    Some(Decision {
        write: Some(next),
        emit,
    })
}

/// The poller's view of one person whose Webex status changed to `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A real change: emitted and recorded as usual.
    Emit,
    /// Receivers were already told this status by the ingest: recorded, not emitted.
    Agreed,
    /// Webex's late echo (the pre-call status during a live call, `call` just after it ended):
    /// neither emitted nor recorded, so it is looked at again next cycle.
    Echo,
}

/// `call` is the ingest's state of the person (if any), `poller_version` the version of the
/// poller's record (0 for a person not recorded), `status` what Webex says now.
pub fn verdict(
    call: Option<&CallPresence>,
    poller_version: u64,
    status: &str,
    now_ms: u64,
) -> Verdict {
    let Some(call) = call else {
        return Verdict::Emit;
    };
    let Some(told) = call.told_after(poller_version) else {
        return Verdict::Emit;
    };
    let live = call.live_at(now_ms);
    // Webex still shows the pre-call status while the call is live.
    let start_echo = live && told == CALL_STATUS && call.before.as_deref() == Some(status);
    // Webex still shows the call shortly after the ingest returned the person from it.
    let end_echo = !live
        && told != CALL_STATUS
        && status == CALL_STATUS
        && now_ms.saturating_sub(call.told_at) < END_ECHO_MS;
    if status == told {
        Verdict::Agreed
    } else if start_echo || end_echo {
        Verdict::Echo
    } else {
        Verdict::Emit
    }
}

/// The deterministic id of the presence event a transition caused (the same for a retry).
pub fn event_id(person_id: &str, call_id: &str, status: &str, at_ms: u64) -> EventId {
    let seed = format!("presence-from-call\n{person_id}\n{call_id}\n{status}");
    EventId::derived(at_ms, seed.as_bytes())
}

/// The ingest's whole step over the store: read both views (one read), decide, write
/// conditionally (retrying a lost race), and return the `presence:changed` event to log and fan
/// out, if any. Its body is the presence webhook contract's `user-presence` with one item.
pub async fn apply(
    store: &dyn PresenceStore,
    org_id: &str,
    person_id: &str,
    call_id: &str,
    t: Transition,
    now: DateTime<Utc>,
) -> Result<Option<OutboundEvent>, StoreError> {
    for attempt in 1..=MAX_ATTEMPTS {
        let (record, stored) = store.person(org_id, person_id).await?;
        let Some(decision) = decide(
            record.as_ref(),
            stored.as_ref(),
            person_id,
            call_id,
            t,
            ms(now),
        ) else {
            return Ok(None);
        };
        if let Some(write) = &decision.write {
            match store.put_call(org_id, write).await {
                Ok(()) => {}
                Err(StoreError::Conflict(_)) if attempt < MAX_ATTEMPTS => continue,
                Err(e) => return Err(e),
            }
        }
        return Ok(decision.emit.map(|(person, at)| {
            let status = person.status.as_deref().unwrap_or_default();
            OutboundEvent {
                id: event_id(person_id, call_id, status, at),
                event_type: EventType::PresenceChanged,
                org_id: org_id.to_owned(),
                created_at: now,
                body: presence_body(std::slice::from_ref(&person)),
            }
        }));
    }
    Err(StoreError::Conflict(format!(
        "call presence of {person_id} still contended after {MAX_ATTEMPTS} attempts"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ITEM: &str = r#"{"id":"p1","emails":["a@example.com"],"displayName":"A","status":"active","type":"person"}"#;

    fn record(status: &str, version: u64) -> PresenceRecord {
        PresenceRecord {
            person_id: "p1".into(),
            fingerprint: status.into(),
            version,
            item: Some(ITEM.replace("active", status)),
        }
    }

    fn step(
        r: &PresenceRecord,
        c: Option<&CallPresence>,
        call: &str,
        t: Transition,
        now: u64,
    ) -> Decision {
        decide(Some(r), c, "p1", call, t, now).expect("a decision")
    }

    fn emitted_status(d: &Decision) -> Option<&str> {
        d.emit.as_ref().and_then(|(p, _)| p.status.as_deref())
    }

    #[test]
    fn connect_sets_call_and_end_returns_to_the_status_they_had() {
        let r = record("active", 1_000);
        let d = step(&r, None, "c1", Transition::Connected, 2_000);
        assert_eq!(emitted_status(&d), Some("call"));
        let (p, at) = d.emit.clone().unwrap();
        assert_eq!(at, 2_000);
        // The poller's item exactly, only `status` changed.
        assert_eq!(
            presence_body(&[p]),
            format!(
                r#"{{"payload":"user-presence","items":[{}]}}"#,
                ITEM.replace("active", "call")
            )
        );
        let c = d.write.unwrap();
        assert_eq!((c.version, c.before.as_deref()), (1, Some("active")));

        let d = step(&r, Some(&c), "c1", Transition::Ended, 9_000);
        assert_eq!(emitted_status(&d), Some("active"));
        let c = d.write.unwrap();
        assert_eq!((c.version, c.live.len(), c.told_at), (2, 0, 9_000));
        // A retry of the end re-emits the same (same time, so same id); a second end, nothing.
        let again = step(&r, Some(&c), "c1", Transition::Ended, 9_500);
        assert_eq!(
            (&again.write, emitted_status(&again)),
            (&None, Some("active"))
        );
        assert_eq!(again.emit.unwrap().1, 9_000);
        assert!(decide(Some(&r), Some(&c), "p1", "c2", Transition::Ended, 9_600).is_none());
    }

    #[test]
    fn a_connect_retry_re_emits_and_overlapping_legs_keep_call_until_the_last_ends() {
        let r = record("DoNotDisturb", 1_000);
        let c = step(&r, None, "c1", Transition::Connected, 2_000)
            .write
            .unwrap();
        let retry = step(&r, Some(&c), "c1", Transition::Connected, 2_100);
        assert_eq!(
            (&retry.write, emitted_status(&retry)),
            (&None, Some("call"))
        );
        let d = step(&r, Some(&c), "c2", Transition::Connected, 3_000);
        assert_eq!(emitted_status(&d), None, "already at call");
        let c = d.write.unwrap();
        let d = step(&r, Some(&c), "c1", Transition::Ended, 4_000);
        assert_eq!(emitted_status(&d), None, "c2 is still live");
        let c = d.write.unwrap();
        let d = step(&r, Some(&c), "c2", Transition::Ended, 5_000);
        assert_eq!(emitted_status(&d), Some("DoNotDisturb"));
    }

    #[test]
    fn nothing_for_unknown_people_or_legs_that_never_connected() {
        assert!(decide(None, None, "p1", "c1", Transition::Connected, 1).is_none());
        let mut r = record("active", 1);
        r.item = None;
        assert!(decide(Some(&r), None, "p1", "c1", Transition::Connected, 2).is_none());
        assert!(decide(
            Some(&record("active", 1)),
            None,
            "p1",
            "c1",
            Transition::Ended,
            2
        )
        .is_none());
    }

    #[test]
    fn already_at_call_by_webex_leaves_the_return_to_the_poller() {
        let r = record("call", 1_000);
        let d = step(&r, None, "c1", Transition::Connected, 2_000);
        assert_eq!(emitted_status(&d), None);
        let c = d.write.unwrap();
        let d = step(&r, Some(&c), "c1", Transition::Ended, 3_000);
        assert_eq!(emitted_status(&d), None);
    }

    #[test]
    fn the_poller_s_newer_status_wins_over_the_ingest_s() {
        // The ingest set call at 2 000; the poller then emitted meeting (its record at 3 000).
        let c = step(
            &record("active", 1_000),
            None,
            "c1",
            Transition::Connected,
            2_000,
        )
        .write
        .unwrap();
        let r = record("meeting", 3_000);
        let d = step(&r, Some(&c), "c1", Transition::Ended, 4_000);
        assert_eq!(emitted_status(&d), None, "receivers have meeting, not call");
        assert_eq!(verdict(Some(&c), 3_000, "call", 3_500), Verdict::Emit);
    }

    #[test]
    fn a_lost_end_stops_holding_call_after_max_live() {
        let r = record("active", 1_000);
        let c = step(&r, None, "c1", Transition::Connected, 2_000)
            .write
            .unwrap();
        assert_eq!(verdict(Some(&c), 1_000, "active", 3_000), Verdict::Echo);
        assert_eq!(
            verdict(Some(&c), 1_000, "active", 2_000 + MAX_LIVE_MS),
            Verdict::Emit
        );
        // A new connect after that starts afresh (the stale leg dropped).
        let d = step(
            &r,
            Some(&c),
            "c2",
            Transition::Connected,
            3_000 + MAX_LIVE_MS,
        );
        assert_eq!(d.write.unwrap().live, vec!["c2".to_string()]);
    }

    #[test]
    fn the_poller_s_verdicts() {
        let r = record("active", 1_000);
        let live = step(&r, None, "c1", Transition::Connected, 2_000)
            .write
            .unwrap();
        // Webex now says call too: already told.
        assert_eq!(verdict(Some(&live), 1_000, "call", 2_500), Verdict::Agreed);
        // Webex still says the pre-call status while the call is live: no flap.
        assert_eq!(verdict(Some(&live), 1_000, "active", 2_500), Verdict::Echo);
        // Webex says something else: a real change.
        assert_eq!(verdict(Some(&live), 1_000, "meeting", 2_500), Verdict::Emit);
        // The poller recorded after the ingest: its own view is the latest.
        assert_eq!(verdict(Some(&live), 2_500, "active", 2_600), Verdict::Emit);
        assert_eq!(verdict(None, 0, "call", 2_600), Verdict::Emit);

        let ended = step(&r, Some(&live), "c1", Transition::Ended, 5_000)
            .write
            .unwrap();
        // Webex's call lags the end: an echo within END_ECHO_MS, a change after it.
        assert_eq!(verdict(Some(&ended), 1_000, "call", 6_000), Verdict::Echo);
        assert_eq!(
            verdict(Some(&ended), 1_000, "call", 5_000 + END_ECHO_MS),
            Verdict::Emit
        );
        assert_eq!(
            verdict(Some(&ended), 1_000, "active", 6_000),
            Verdict::Agreed
        );
        assert_eq!(
            verdict(Some(&ended), 1_000, "inactive", 6_000),
            Verdict::Emit
        );
    }
}
