use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::ids::SubscriptionId;
use crate::ports::StatsStore;
use crate::stats::{bucket_start, AttemptSample, StatsBucket, BUCKET_TTL};

/// Delivery statistics in memory. Bounded by time: a write drops the webhook's buckets older than
/// `BUCKET_TTL` (what the DynamoDB TTL removes), so the local stack does not grow without limit.
#[derive(Default)]
pub struct MemoryStats {
    buckets: Mutex<HashMap<SubscriptionId, BTreeMap<DateTime<Utc>, StatsBucket>>>,
}

#[async_trait]
impl StatsStore for MemoryStats {
    async fn record(&self, sample: &AttemptSample) -> Result<(), StoreError> {
        let start = bucket_start(sample.at);
        let mut all = self.buckets.lock().unwrap();
        let buckets = all.entry(sample.subscription_id).or_default();
        buckets
            .entry(start)
            .or_insert_with(|| StatsBucket::empty(start))
            .add(sample);
        let oldest_kept = start - BUCKET_TTL;
        buckets.retain(|s, _| *s >= oldest_kept);
        Ok(())
    }

    async fn buckets(
        &self,
        subscription_id: &SubscriptionId,
        since: DateTime<Utc>,
    ) -> Result<Vec<StatsBucket>, StoreError> {
        let all = self.buckets.lock().unwrap();
        Ok(all
            .get(subscription_id)
            .map(|b| b.range(since..).map(|(_, b)| b.clone()).collect())
            .unwrap_or_default())
    }
}
