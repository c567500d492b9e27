//! Turning one cycle's changed people into `presence:changed` events (each under the size limit),
//! logging them for replay and fanning them out to the org's subscriptions.

use chrono::{DateTime, Utc};
use relay_shared::error::{QueueError, StoreError};
use relay_shared::events::{presence_body, EventType, OutboundEvent};
use relay_shared::fan_out;
use relay_shared::ids::EventId;
use relay_shared::ports::{DeliveryQueue, EventLog, SubscriptionStore};
use relay_shared::webex::Person;

/// Room kept in every event for the rest of its delivery job (ids, org, attempt history, …),
/// which carries the body as an escaped JSON string.
pub const JOB_OVERHEAD_BYTES: usize = 2048;

const BODY_PREFIX: &str = r#"{"payload":"user-presence","items":["#;
const BODY_SUFFIX: &str = "]}";

/// The length of `s` once written inside a JSON string (as the body is inside a delivery job).
fn escaped_len(s: &str) -> usize {
    s.len()
        + s.bytes()
            .map(|b| match b {
                b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 1,
                0..=0x1f => 5,
                _ => 0,
            })
            .sum::<usize>()
}

/// Splits `people` (in order) into groups whose `presence_body` — and the delivery job carrying it —
/// stay within `max_bytes`. A single person too big on its own still gets an event of its own.
pub fn split_for_events(people: Vec<Person>, max_bytes: usize) -> Vec<Vec<Person>> {
    let budget = max_bytes.saturating_sub(JOB_OVERHEAD_BYTES);
    let empty = escaped_len(BODY_PREFIX) + escaped_len(BODY_SUFFIX);
    let mut groups: Vec<Vec<Person>> = Vec::new();
    let mut current: Vec<Person> = Vec::new();
    let mut size = empty;
    for person in people {
        let json = serde_json::to_string(&person).expect("serialising JSON values cannot fail");
        let add = escaped_len(&json) + usize::from(!current.is_empty());
        if !current.is_empty() && size + add > budget {
            groups.push(std::mem::take(&mut current));
            size = empty;
        }
        if current.is_empty() {
            size += escaped_len(&json);
            if size > budget {
                tracing::warn!(person_id = %person.id, bytes = json.len(), "one person alone exceeds the event size budget");
            }
        } else {
            size += add;
        }
        current.push(person);
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
}

/// What one cycle emitted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Emitted {
    pub events: usize,
    pub jobs: usize,
    pub largest_body: usize,
}

/// The ports emitting needs.
pub struct Outbox<'a> {
    pub subscriptions: &'a dyn SubscriptionStore,
    pub events: &'a dyn EventLog,
    pub queue: &'a dyn DeliveryQueue,
}

impl Outbox<'_> {
    /// Logs one event per group and enqueues one job per (event, subscription that wants
    /// `presence:changed`). Returns only when every job was accepted.
    pub async fn emit(
        &self,
        org_id: &str,
        people: Vec<Person>,
        now: DateTime<Utc>,
        max_bytes: usize,
        ttl: chrono::Duration,
    ) -> Result<Emitted, EmitError> {
        let subs: Vec<_> = self
            .subscriptions
            .list_by_org(org_id)
            .await?
            .into_iter()
            .filter(|s| s.wants(EventType::PresenceChanged))
            .collect();
        let millis = now.timestamp_millis().max(0) as u64;
        let mut out = Emitted::default();
        let mut jobs = Vec::new();
        for group in split_for_events(people, max_bytes) {
            let body = presence_body(&group);
            out.largest_body = out.largest_body.max(body.len());
            let event = OutboundEvent {
                id: EventId::new_at(millis),
                event_type: EventType::PresenceChanged,
                org_id: org_id.to_owned(),
                created_at: now,
                body,
            };
            self.events.append(&event, now + ttl).await?;
            // The subscribers' payload filters apply to presence events as to any other.
            jobs.extend(fan_out::jobs_for(&subs, org_id, &event, None));
            out.events += 1;
        }
        if !jobs.is_empty() {
            self.queue.send(&jobs).await?;
        }
        out.jobs = jobs.len();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn big(i: usize, pad: usize) -> Person {
        serde_json::from_value(
            json!({"id": format!("p{i}"), "status": "active", "department": "\"q\"".repeat(pad)}),
        )
        .unwrap()
    }

    #[test]
    fn escaped_len_matches_serde() {
        for s in [r#"{"a":"b\\c"}"#, "plain", "tab\there", "\u{1}"] {
            assert_eq!(
                escaped_len(s),
                serde_json::to_string(s).unwrap().len() - 2,
                "{s:?}"
            );
        }
    }

    #[test]
    fn splits_under_the_limit_and_keeps_order() {
        let people: Vec<Person> = (0..400).map(|i| big(i, 400)).collect();
        let groups = split_for_events(people.clone(), 256 * 1024);
        assert!(groups.len() > 1);
        let flat: Vec<Person> = groups.iter().flatten().cloned().collect();
        assert_eq!(flat, people);
        for g in &groups {
            let body = presence_body(g);
            let as_string = serde_json::to_string(&body).unwrap();
            assert!(
                as_string.len() + JOB_OVERHEAD_BYTES <= 256 * 1024,
                "{}",
                as_string.len()
            );
        }
        // Greedy: each group but the last is nearly full.
        let first = serde_json::to_string(&presence_body(&groups[0]))
            .unwrap()
            .len();
        assert!(first > 256 * 1024 - JOB_OVERHEAD_BYTES - 4000, "{first}");
    }

    #[test]
    fn small_sets_stay_whole_and_oversized_people_get_their_own_event() {
        let people: Vec<Person> = (0..3).map(|i| big(i, 1)).collect();
        assert_eq!(split_for_events(people, 256 * 1024).len(), 1);
        let people = vec![big(0, 1), big(1, 2000), big(2, 1)];
        let groups = split_for_events(people, 4096);
        assert_eq!(
            groups.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1, 1, 1]
        );
        assert!(split_for_events(vec![], 4096).is_empty());
    }
}
