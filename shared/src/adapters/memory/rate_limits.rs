use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::ids::SubscriptionId;
use crate::ports::{RateLimiter, RateWindow};

#[derive(Default)]
pub struct MemoryRateLimiter {
    counts: Mutex<HashMap<(String, i64), u32>>,
    next_slots: Mutex<HashMap<SubscriptionId, DateTime<Utc>>>,
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn try_acquire_named(&self, name: &str, window: RateWindow) -> Result<bool, StoreError> {
        let mut counts = self.counts.lock().unwrap();
        let start = window.start.timestamp();
        counts.retain(|(_, w), _| *w >= start - 120);
        let n = counts.entry((name.to_owned(), start)).or_insert(0);
        if *n >= window.limit {
            return Ok(false);
        }
        *n += 1;
        Ok(true)
    }

    async fn give_back(
        &self,
        subscription_id: &SubscriptionId,
        window: RateWindow,
    ) -> Result<(), StoreError> {
        let mut counts = self.counts.lock().unwrap();
        let key = (subscription_id.to_string(), window.start.timestamp());
        if let Some(n) = counts.get_mut(&key) {
            *n = n.saturating_sub(1);
        }
        Ok(())
    }

    async fn reserve_slots(
        &self,
        subscription_id: &SubscriptionId,
        earliest: DateTime<Utc>,
        interval: chrono::Duration,
        count: u32,
    ) -> Result<DateTime<Utc>, StoreError> {
        let mut slots = self.next_slots.lock().unwrap();
        let next = slots.entry(*subscription_id).or_insert(earliest);
        let slot = (*next).max(earliest);
        *next = slot + interval * count as i32;
        Ok(slot)
    }

    async fn next_free_slot(
        &self,
        subscription_id: &SubscriptionId,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self
            .next_slots
            .lock()
            .unwrap()
            .get(subscription_id)
            .copied())
    }
}
