//! A call's lifecycle as seen through out-of-order Webex events: the latest state by
//! `data.eventTimestamp`, every stage (created/updated/deleted) it went through, and the derived
//! call events already emitted for it (`call_events`, docs/call-events.md).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::events::EventType;
use crate::webex::Redirection;

/// One event observed for a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallObservation {
    /// The envelope's `event`: `created`, `updated` or `deleted`.
    pub stage: String,
    /// `data.eventType`, e.g. `received`, `disconnected`.
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// `data.eventTimestamp` as Webex sent it.
    pub event_timestamp: String,
    pub event_time: DateTime<Utc>,
    /// The event's dedupe key (`TelephonyCallData::dedupe_key`, a hash of the whole `data`):
    /// what tells two Webex events apart. Empty in records stored before it was kept.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// The derived call events this observation caused. They are stored with it, in the same
    /// conditional write, so that a retry of the same Webex event (after a crash or a queue
    /// failure between that write and the queueing) re-queues exactly these, under the same ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derived: Vec<CallEventMark>,
}

impl CallObservation {
    /// The same Webex event (whatever derived events it caused): the same dedupe key, as the
    /// ingest's dedupe claim tells events apart, so a distinct event that happens to share stage,
    /// type, state and timestamp still counts. An observation stored without a key (before it was
    /// kept) is compared on those four.
    pub fn same_event(&self, other: &CallObservation) -> bool {
        if !self.key.is_empty() && !other.key.is_empty() {
            return self.key == other.key;
        }
        self.stage == other.stage
            && self.event_type == other.event_type
            && self.state == other.state
            && self.event_timestamp == other.event_timestamp
            && self.event_time == other.event_time
    }
}

/// How a call leg ended (`call:ended`'s `outcome`, docs/call-events.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CallOutcome {
    /// Answered on this leg.
    Answered,
    /// Rang here, answered by no one.
    Missed,
    /// Rang here, completed elsewhere (another device, another agent of a queue or hunt group).
    AnsweredElsewhere,
    /// Outbound, never connected.
    Unanswered,
}

/// One derived call event emitted for a leg: what its id and body are built from, so that both
/// are the same however often it is queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallEventMark {
    pub event: EventType,
    /// 1 for the once-per-leg events (ringing, answered, ended); the k-th hold, resume or
    /// transfer by event time otherwise.
    pub n: u32,
    /// The leg's sequence number: 1, 2, … in the order the relay emitted its call events.
    pub seq: u64,
    /// When it happened (from Webex's times).
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub talk_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<CallOutcome>,
}

/// What the leg's events have told about it so far, whatever order they came in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegFacts {
    /// `data.personality`: `terminator` (inbound), `originator` (outbound), …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personality: Option<String>,
    /// The earliest `data.created` seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// The earliest `data.answered` seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<DateTime<Utc>>,
    /// The earliest `data.disconnected` seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    /// Any event said `data.completedElsewhere: true`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub completed_elsewhere: bool,
    /// The first non-empty `data.redirections` seen (the queue or hunt group the call came
    /// through), for the events whose own Webex event does not carry them (`disconnected` does not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirections: Vec<Redirection>,
}

impl LegFacts {
    pub fn is_empty(&self) -> bool {
        *self == LegFacts::default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    pub call_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_session_id: Option<String>,
    pub org_id: String,
    /// The newest observation by event time; a late event never replaces it.
    pub latest: CallObservation,
    /// Every distinct observation, ordered by event time.
    pub history: Vec<CallObservation>,
    /// What the events' `data` said about the leg (`call_events`).
    #[serde(default, skip_serializing_if = "LegFacts::is_empty")]
    pub leg: LegFacts,
    /// Optimistic-concurrency version (0 = not stored yet).
    pub version: u64,
    /// Unix seconds after which the store may expire the record.
    pub expires_at: i64,
}

/// What applying an observation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The observation is the newest so far: `latest` moved forward.
    Advanced,
    /// Older than `latest`: kept in history, state unchanged.
    Late,
    /// Already in history.
    AlreadySeen,
}

impl CallRecord {
    pub fn new(
        call_id: String,
        call_session_id: Option<String>,
        org_id: String,
        first: CallObservation,
        expires_at: i64,
    ) -> Self {
        Self {
            call_id,
            call_session_id,
            org_id,
            latest: first.clone(),
            history: vec![first],
            leg: LegFacts::default(),
            version: 0,
            expires_at,
        }
    }

    pub fn apply(&mut self, obs: CallObservation, expires_at: i64) -> ApplyOutcome {
        if self.observation(&obs).is_some() {
            return ApplyOutcome::AlreadySeen;
        }
        let pos = self
            .history
            .partition_point(|h| h.event_time <= obs.event_time);
        self.history.insert(pos, obs.clone());
        self.expires_at = self.expires_at.max(expires_at);
        if obs.event_time > self.latest.event_time {
            self.latest = obs;
            ApplyOutcome::Advanced
        } else {
            ApplyOutcome::Late
        }
    }

    /// The stored observation of the same Webex event as `obs`, with the call events it caused.
    pub fn observation(&self, obs: &CallObservation) -> Option<&CallObservation> {
        self.history.iter().find(|h| h.same_event(obs))
    }

    /// Every call event emitted for this leg so far, in no particular order.
    pub fn marks(&self) -> impl Iterator<Item = &CallEventMark> {
        self.history.iter().flat_map(|h| h.derived.iter())
    }

    /// The distinct stages in the order they happened, e.g. `["created","updated","deleted"]`.
    pub fn stages(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for h in &self.history {
            if out.last() != Some(&h.stage.as_str()) {
                out.push(&h.stage);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(stage: &str, ts: &str) -> CallObservation {
        CallObservation {
            stage: stage.into(),
            event_type: stage.into(),
            state: None,
            event_timestamp: ts.into(),
            event_time: DateTime::parse_from_rfc3339(ts)
                .unwrap()
                .with_timezone(&Utc),
            key: String::new(),
            derived: Vec::new(),
        }
    }

    #[test]
    fn out_of_order_events_never_roll_back() {
        // The captured Webex telephony webhook's order (tests/fixtures/seed001/): updated (…730),
        // created (…729), deleted (…43.357).
        let mut r = CallRecord::new(
            "c".into(),
            None,
            "o".into(),
            obs("updated", "2025-08-14T18:52:41.730Z"),
            10,
        );
        assert_eq!(
            r.apply(obs("created", "2025-08-14T18:52:41.729Z"), 10),
            ApplyOutcome::Late
        );
        assert_eq!(r.latest.stage, "updated");
        assert_eq!(
            r.apply(obs("deleted", "2025-08-14T18:52:43.357Z"), 20),
            ApplyOutcome::Advanced
        );
        assert_eq!(r.latest.stage, "deleted");
        assert_eq!(r.stages(), vec!["created", "updated", "deleted"]);
        assert_eq!(
            r.apply(obs("deleted", "2025-08-14T18:52:43.357Z"), 20),
            ApplyOutcome::AlreadySeen
        );
        assert_eq!(r.history.len(), 3);
        assert_eq!(r.expires_at, 20);
    }

    /// Events are told apart by their dedupe key when both observations have one; a stored
    /// observation without one (an older record) is compared on stage, type, state and time.
    #[test]
    fn same_event_compares_the_dedupe_key() {
        let keyed = |key: &str| CallObservation {
            key: key.into(),
            ..obs("updated", "2025-08-14T18:52:41.730Z")
        };
        assert!(keyed("tel:a").same_event(&keyed("tel:a")));
        assert!(!keyed("tel:a").same_event(&keyed("tel:b")));
        assert!(keyed("").same_event(&keyed("tel:b")));
        assert!(!keyed("").same_event(&CallObservation {
            state: Some("held".into()),
            ..keyed("tel:b")
        }));
    }
}
