//! A call's lifecycle as seen through out-of-order Webex events: the latest state by
//! `data.eventTimestamp`, and every stage (created/updated/deleted) it went through.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
            version: 0,
            expires_at,
        }
    }

    pub fn apply(&mut self, obs: CallObservation, expires_at: i64) -> ApplyOutcome {
        if self.history.contains(&obs) {
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
}
