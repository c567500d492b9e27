use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::bounded::keep_newest;
use super::expiring::Expiring;
use super::page_newest_first;
use crate::clock::SystemClock;
use crate::error::StoreError;
use crate::events::OutboundEvent;
use crate::ids::EventId;
use crate::ports::{Clock, EventFilter, EventLog, EventQuery, Page, PageRequest};
use std::sync::Arc;

/// The event log in memory. Unbounded by default; `with_capacity` keeps only the newest events of
/// each org (the local stack's embedded store, so a long run does not grow without limit). Every
/// reader skips an event whose `expires_at` has passed on its clock (the system clock unless
/// [`MemoryEventLog::with_clock`]), as the DynamoDB adapter does.
pub struct MemoryEventLog {
    items: Mutex<HashMap<String, BTreeMap<String, Expiring<OutboundEvent>>>>,
    capacity_per_org: Option<usize>,
    clock: Arc<dyn Clock>,
}

impl Default for MemoryEventLog {
    fn default() -> Self {
        Self {
            items: Mutex::default(),
            capacity_per_org: None,
            clock: Arc::new(SystemClock),
        }
    }
}

impl MemoryEventLog {
    pub fn with_capacity(capacity_per_org: usize) -> Self {
        Self {
            capacity_per_org: Some(capacity_per_org.max(1)),
            ..Self::default()
        }
    }

    /// Expiry judged by `clock` (tests on a manual clock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

#[async_trait]
impl EventLog for MemoryEventLog {
    async fn append(
        &self,
        event: &OutboundEvent,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // DynamoDB's item limit, on the event's JSON (what the DynamoDB item mostly is).
        let bytes = serde_json::to_string(event).map_or(0, |doc| doc.len());
        StoreError::check_size(bytes)?;
        let mut items = self.items.lock().unwrap();
        let log = items.entry(event.org_id.clone()).or_default();
        log.insert(
            event.id.to_string(),
            Expiring::new(event.clone(), expires_at),
        );
        keep_newest(log, self.capacity_per_org);
        Ok(())
    }

    async fn list(
        &self,
        org_id: &str,
        query: EventQuery,
    ) -> Result<Vec<OutboundEvent>, StoreError> {
        let now = self.clock.now();
        let items = self.items.lock().unwrap();
        Ok(items
            .get(org_id)
            .map(|log| {
                log.values()
                    .filter_map(|e| e.live(now))
                    .filter(|e| query.covers(e))
                    .take(query.limit as usize)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn get(&self, org_id: &str, id: &EventId) -> Result<Option<OutboundEvent>, StoreError> {
        let now = self.clock.now();
        let items = self.items.lock().unwrap();
        Ok(items
            .get(org_id)
            .and_then(|log| log.get(&id.to_string()))
            .and_then(|e| e.live(now))
            .cloned())
    }

    async fn page(
        &self,
        org_id: &str,
        filter: EventFilter,
        page: &PageRequest,
    ) -> Result<Page<OutboundEvent>, StoreError> {
        let now = self.clock.now();
        let items = self.items.lock().unwrap();
        let empty = BTreeMap::new();
        let log = items.get(org_id).unwrap_or(&empty);
        page_newest_first(log, filter.id_range(), page, |e| {
            e.live(now).filter(|e| filter.matches(e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventType;

    #[tokio::test]
    async fn capacity_keeps_the_newest_events_per_org() {
        let log = MemoryEventLog::with_capacity(3);
        let t = Utc::now();
        for i in 0..5u64 {
            let e = OutboundEvent {
                id: EventId::new_at(1_000 + i),
                event_type: EventType::PresenceChanged,
                org_id: "o".into(),
                created_at: t,
                body: i.to_string(),
            };
            log.append(&e, t + chrono::Duration::days(1)).await.unwrap();
        }
        let kept = log
            .list(
                "o",
                EventQuery::new(t, t + chrono::Duration::seconds(1), 10),
            )
            .await
            .unwrap();
        assert_eq!(
            kept.iter().map(|e| e.body.as_str()).collect::<Vec<_>>(),
            ["2", "3", "4"]
        );
    }
}
