use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::bounded::BoundedMap;
use crate::error::StoreError;
use crate::ports::{Claim, DedupeStore, Term};

enum Entry {
    Pending {
        lease: Term,
        expires_at: DateTime<Utc>,
    },
    Done {
        expires_at: DateTime<Utc>,
    },
}

/// Dedupe claims in memory. Unbounded by default; `with_capacity` keeps the most recently written
/// keys only (the local stack's embedded store, where nothing else expires them).
#[derive(Default)]
pub struct MemoryDedupe {
    items: Mutex<BoundedMap<Entry>>,
}

impl MemoryDedupe {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            items: Mutex::new(BoundedMap::with_capacity(capacity)),
        }
    }
}

#[async_trait]
impl DedupeStore for MemoryDedupe {
    async fn claim(
        &self,
        key: &str,
        lease: Term,
        expires_at: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let now = lease.from;
        let mut items = self.items.lock().unwrap();
        match items.get(key) {
            Some(Entry::Done { expires_at }) if *expires_at > now => return Ok(Claim::Done),
            Some(Entry::Pending {
                lease: held,
                expires_at,
            }) if held.runs_at(now) && *expires_at > now => return Ok(Claim::InProgress),
            _ => {}
        }
        items.insert(key, Entry::Pending { lease, expires_at });
        Ok(Claim::Claimed)
    }

    async fn complete(&self, key: &str, expires_at: DateTime<Utc>) -> Result<(), StoreError> {
        self.items
            .lock()
            .unwrap()
            .insert(key, Entry::Done { expires_at });
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), StoreError> {
        let mut items = self.items.lock().unwrap();
        if matches!(items.get(key), Some(Entry::Pending { .. })) {
            items.remove(key);
        }
        Ok(())
    }
}
