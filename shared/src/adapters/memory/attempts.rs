use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::bounded::keep_newest;
use super::expiring::Expiring;
use super::page_in_order;
use crate::clock::SystemClock;
use crate::delivery::AttemptRecord;
use crate::error::StoreError;
use crate::ids::{AttemptId, SubscriptionId};
use crate::ports::{AttemptLog, AttemptQuery, Clock, Page, PageRequest};
use std::sync::Arc;

/// The delivery-attempt log in memory. Unbounded by default; `with_capacity` keeps only the newest
/// attempts of each subscription (the local stack's embedded store). Every reader skips an
/// attempt whose `expires_at` has passed on its clock (the system clock unless
/// [`MemoryAttemptLog::with_clock`]), as the DynamoDB adapter does.
pub struct MemoryAttemptLog {
    // Per subscription, keyed by attempt id (ULID: time-ordered).
    items: Mutex<HashMap<SubscriptionId, BTreeMap<String, Expiring<AttemptRecord>>>>,
    capacity_per_subscription: Option<usize>,
    clock: Arc<dyn Clock>,
}

impl Default for MemoryAttemptLog {
    fn default() -> Self {
        Self {
            items: Mutex::default(),
            capacity_per_subscription: None,
            clock: Arc::new(SystemClock),
        }
    }
}

impl MemoryAttemptLog {
    pub fn with_capacity(capacity_per_subscription: usize) -> Self {
        Self {
            capacity_per_subscription: Some(capacity_per_subscription.max(1)),
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
impl AttemptLog for MemoryAttemptLog {
    async fn record(
        &self,
        attempt: &AttemptRecord,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut items = self.items.lock().unwrap();
        let log = items.entry(attempt.subscription_id).or_default();
        log.insert(
            attempt.id.to_string(),
            Expiring::new(attempt.clone(), expires_at),
        );
        keep_newest(log, self.capacity_per_subscription);
        Ok(())
    }

    async fn list(
        &self,
        query: AttemptQuery,
        page: &PageRequest,
    ) -> Result<Page<AttemptRecord>, StoreError> {
        let now = self.clock.now();
        let items = self.items.lock().unwrap();
        let empty = BTreeMap::new();
        let log = items.get(&query.subscription_id).unwrap_or(&empty);
        page_in_order(log, query.id_range(), page, !query.oldest_first, |a| {
            a.live(now).filter(|a| query.matches(a))
        })
    }

    async fn get(
        &self,
        subscription_id: &SubscriptionId,
        id: &AttemptId,
    ) -> Result<Option<AttemptRecord>, StoreError> {
        let now = self.clock.now();
        let items = self.items.lock().unwrap();
        Ok(items
            .get(subscription_id)
            .and_then(|log| log.get(&id.to_string()))
            .and_then(|a| a.live(now))
            .cloned())
    }
}
