use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::ids::SubscriptionId;
use crate::ports::StatsStore;
use crate::stats::{Materialised, StatsBucket, BUCKET_TTL};

/// The materialised delivery statistics in memory. Bounded by time: a write drops the webhook's
/// buckets older than `BUCKET_TTL` before the watermark (what the DynamoDB TTL removes), so the
/// local stack does not grow without limit.
#[derive(Default)]
pub struct MemoryStats {
    webhooks: Mutex<HashMap<SubscriptionId, Webhook>>,
}

#[derive(Default)]
struct Webhook {
    upto: Option<DateTime<Utc>>,
    buckets: BTreeMap<DateTime<Utc>, StatsBucket>,
}

#[async_trait]
impl StatsStore for MemoryStats {
    async fn materialised(
        &self,
        subscription_id: &SubscriptionId,
        since: DateTime<Utc>,
    ) -> Result<Materialised, StoreError> {
        let all = self.webhooks.lock().unwrap();
        Ok(all
            .get(subscription_id)
            .map(|w| Materialised {
                upto: w.upto,
                buckets: w.buckets.range(since..).map(|(_, b)| b.clone()).collect(),
            })
            .unwrap_or_default())
    }

    async fn materialise(
        &self,
        subscription_id: &SubscriptionId,
        buckets: &[StatsBucket],
        upto: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut all = self.webhooks.lock().unwrap();
        let w = all.entry(*subscription_id).or_default();
        for b in buckets {
            w.buckets.insert(b.start, b.clone());
        }
        w.upto = w.upto.max(Some(upto));
        let oldest_kept = w.upto.unwrap_or(upto) - BUCKET_TTL;
        w.buckets.retain(|s, _| *s >= oldest_kept);
        Ok(())
    }
}
