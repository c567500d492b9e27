use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::ports::LeaseStore;

#[derive(Default)]
pub struct MemoryLeases {
    items: Mutex<HashMap<String, (String, DateTime<Utc>)>>,
}

#[async_trait]
impl LeaseStore for MemoryLeases {
    async fn acquire(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut items = self.items.lock().unwrap();
        match items.get(name) {
            Some((h, u)) if h != holder && *u > now => Ok(false),
            _ => {
                items.insert(name.to_owned(), (holder.to_owned(), until));
                Ok(true)
            }
        }
    }

    async fn release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let mut items = self.items.lock().unwrap();
        if items.get(name).is_some_and(|(h, _)| h == holder) {
            items.remove(name);
        }
        Ok(())
    }
}
