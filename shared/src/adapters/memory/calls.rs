use std::sync::Mutex;

use async_trait::async_trait;

use super::bounded::BoundedMap;
use crate::call_state::CallRecord;
use crate::error::StoreError;
use crate::ports::CallStateStore;

/// Call state in memory. Unbounded by default; `with_capacity` keeps the most recently written
/// calls only (the local stack's embedded store).
#[derive(Default)]
pub struct MemoryCallStates {
    items: Mutex<BoundedMap<CallRecord>>,
}

impl MemoryCallStates {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            items: Mutex::new(BoundedMap::with_capacity(capacity)),
        }
    }
}

#[async_trait]
impl CallStateStore for MemoryCallStates {
    async fn get(&self, call_id: &str) -> Result<Option<CallRecord>, StoreError> {
        Ok(self.items.lock().unwrap().get(call_id).cloned())
    }

    async fn put(&self, record: &CallRecord) -> Result<(), StoreError> {
        let mut items = self.items.lock().unwrap();
        let stored_version = items.get(&record.call_id).map_or(0, |r| r.version);
        if stored_version + 1 != record.version {
            return Err(StoreError::Conflict(format!(
                "call {} changed (version {stored_version})",
                record.call_id
            )));
        }
        items.insert(&record.call_id, record.clone());
        Ok(())
    }
}
