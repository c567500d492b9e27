use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::bounded::keep_newest;
use super::{decode_cursor, encode_cursor};
use crate::delivery::AttemptRecord;
use crate::error::StoreError;
use crate::ids::{AttemptId, SubscriptionId};
use crate::ports::{AttemptLog, AttemptQuery, Page, PageRequest};

/// The delivery-attempt log in memory. Unbounded by default; `with_capacity` keeps only the newest
/// attempts of each subscription (the local stack's embedded store).
#[derive(Default)]
pub struct MemoryAttemptLog {
    // Per subscription, keyed by attempt id (ULID: time-ordered).
    items: Mutex<HashMap<SubscriptionId, BTreeMap<String, AttemptRecord>>>,
    capacity_per_subscription: Option<usize>,
}

impl MemoryAttemptLog {
    pub fn with_capacity(capacity_per_subscription: usize) -> Self {
        Self {
            items: Mutex::default(),
            capacity_per_subscription: Some(capacity_per_subscription.max(1)),
        }
    }
}

#[async_trait]
impl AttemptLog for MemoryAttemptLog {
    async fn record(
        &self,
        attempt: &AttemptRecord,
        _expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut items = self.items.lock().unwrap();
        let log = items.entry(attempt.subscription_id).or_default();
        log.insert(attempt.id.to_string(), attempt.clone());
        keep_newest(log, self.capacity_per_subscription);
        Ok(())
    }

    async fn list(
        &self,
        query: AttemptQuery,
        page: &PageRequest,
    ) -> Result<Page<AttemptRecord>, StoreError> {
        let before = page.cursor.as_deref().map(decode_cursor).transpose()?;
        let items = self.items.lock().unwrap();
        let Some(log) = items.get(&query.subscription_id) else {
            return Ok(Page {
                items: vec![],
                next_cursor: None,
            });
        };
        // Newest first, from just before the cursor, one more than the page for the lookahead.
        let newest_first: Vec<AttemptRecord> = log
            .iter()
            .rev()
            .filter(|(k, _)| before.as_ref().is_none_or(|b| k.as_str() < b.as_str()))
            .filter(|(_, a)| query.matches(a))
            .map(|(_, a)| a.clone())
            .take(page.size() + 1)
            .collect();
        Page::from_lookahead(newest_first, page.size(), |a| {
            Ok(encode_cursor(&a.id.to_string()))
        })
    }

    async fn get(
        &self,
        subscription_id: &SubscriptionId,
        id: &AttemptId,
    ) -> Result<Option<AttemptRecord>, StoreError> {
        let items = self.items.lock().unwrap();
        Ok(items
            .get(subscription_id)
            .and_then(|log| log.get(&id.to_string()))
            .cloned())
    }
}
