use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::events::OutboundEvent;
use crate::ports::EventLog;

#[derive(Default)]
pub struct MemoryEventLog {
    items: Mutex<HashMap<String, BTreeMap<String, OutboundEvent>>>,
}

#[async_trait]
impl EventLog for MemoryEventLog {
    async fn append(
        &self,
        event: &OutboundEvent,
        _expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.items
            .lock()
            .unwrap()
            .entry(event.org_id.clone())
            .or_default()
            .insert(event.id.to_string(), event.clone());
        Ok(())
    }

    async fn list(
        &self,
        org_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboundEvent>, StoreError> {
        let items = self.items.lock().unwrap();
        Ok(items
            .get(org_id)
            .map(|log| {
                log.values()
                    .filter(|e| e.created_at >= since && e.created_at < until)
                    .take(limit as usize)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }
}
