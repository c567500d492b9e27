use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::ids::SubscriptionId;
use crate::ports::RateLimiter;

#[derive(Default)]
pub struct MemoryRateLimiter {
    counts: Mutex<HashMap<(SubscriptionId, i64), u32>>,
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn try_acquire(
        &self,
        subscription_id: &SubscriptionId,
        window_start: DateTime<Utc>,
        limit: u32,
    ) -> Result<bool, StoreError> {
        let mut counts = self.counts.lock().unwrap();
        let window = window_start.timestamp();
        counts.retain(|(_, w), _| *w >= window - 120);
        let n = counts.entry((*subscription_id, window)).or_insert(0);
        if *n >= limit {
            return Ok(false);
        }
        *n += 1;
        Ok(true)
    }
}
