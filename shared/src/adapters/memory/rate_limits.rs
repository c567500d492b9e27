use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::ports::{RateLimiter, RateWindow};

#[derive(Default)]
pub struct MemoryRateLimiter {
    counts: Mutex<HashMap<(String, i64), u32>>,
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
}
