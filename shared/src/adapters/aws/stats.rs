//! Delivery statistics: `STATS#<wh_id>`/`<bucket start, RFC 3339>` per five-minute bucket
//! (`crate::stats`), with the counters `successes` and `failures`, one counter per duration bin
//! (`h0` … `h58`, only the bins that have attempts exist), `last_success_at`/`last_failure_at`
//! (Unix ms) and `expires_at` (the bucket's start + `BUCKET_TTL`). One attempt is one UpdateItem
//! (`ADD` the counters, `SET` the last time and the TTL): no read, no condition, so concurrent
//! workers never lose a count. DynamoDB has no `max` in an update expression, so the `SET` asks
//! for the time it replaced (`UPDATED_OLD`); only when that was later (an attempt that started
//! earlier, recorded after a later one) a second, conditional UpdateItem puts it back — the last
//! times never go backwards at rest, at no extra cost on the usual in-order path.

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};

use aws_sdk_dynamodb::types::ReturnValue;

use super::common::{
    get_n, is_conditional_failure, is_expired, key, n, s, secs, store_error, Collect, Item,
    QuerySpec,
};
use super::DynamoTable;
use crate::error::StoreError;
use crate::ids::SubscriptionId;
use crate::ports::StatsStore;
use crate::stats::{bin_of, bucket_start, AttemptSample, StatsBucket, BINS, BUCKET_TTL};

fn pk(subscription_id: &SubscriptionId) -> String {
    format!("STATS#{subscription_id}")
}

fn sk(start: DateTime<Utc>) -> String {
    start.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn bin_attribute(bin: usize) -> String {
    format!("h{bin}")
}

/// A number attribute that may be absent (a counter never added to).
fn count(item: &Item, name: &str) -> Result<u64, StoreError> {
    if item.contains_key(name) {
        get_n(item, name)
    } else {
        Ok(0)
    }
}

fn instant(item: &Item, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    if !item.contains_key(name) {
        return Ok(None);
    }
    let ms: i64 = get_n(item, name)?;
    Ok(DateTime::from_timestamp_millis(ms))
}

fn bucket(item: &Item) -> Result<StatsBucket, StoreError> {
    let start = super::common::get_s(item, "sk")?;
    let start = DateTime::parse_from_rfc3339(start)
        .map_err(|e| StoreError::Corrupt(format!("stats bucket `{start}`: {e}")))?
        .with_timezone(&Utc);
    let histogram = (0..BINS)
        .map(|i| count(item, &bin_attribute(i)))
        .collect::<Result<_, _>>()?;
    Ok(StatsBucket {
        start,
        successes: count(item, "successes")?,
        failures: count(item, "failures")?,
        histogram,
        last_success_at: instant(item, "last_success_at")?,
        last_failure_at: instant(item, "last_failure_at")?,
    })
}

impl DynamoTable {
    /// Puts `later` back as the bucket's `last` time unless a still later one is there by now
    /// (another worker's write, or its own restore): the condition makes concurrent restores
    /// converge on the latest time.
    async fn restore_last(
        &self,
        sample: &AttemptSample,
        start: DateTime<Utc>,
        last: &str,
        later: i64,
    ) -> Result<(), StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk(&sample.subscription_id), sk(start))))
            .update_expression("SET #l = :later")
            .condition_expression("#l < :later")
            .expression_attribute_names("#l", last)
            .expression_attribute_values(":later", n(later))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Ok(()),
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }
}

#[async_trait]
impl StatsStore for DynamoTable {
    async fn record(&self, sample: &AttemptSample) -> Result<(), StoreError> {
        let start = bucket_start(sample.at);
        let (counter, last) = if sample.succeeded {
            ("successes", "last_success_at")
        } else {
            ("failures", "last_failure_at")
        };
        let at = sample.at.timestamp_millis();
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk(&sample.subscription_id), sk(start))))
            .update_expression("ADD #c :one, #h :one SET #l = :at, expires_at = :exp")
            .expression_attribute_names("#c", counter)
            .expression_attribute_names("#h", bin_attribute(bin_of(sample.duration_ms)))
            .expression_attribute_names("#l", last)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":at", n(at))
            .expression_attribute_values(":exp", n(secs(start + BUCKET_TTL)))
            .return_values(ReturnValue::UpdatedOld)
            .send()
            .await
            .map_err(|e| store_error("UpdateItem", e))?;
        let replaced = res
            .attributes()
            .filter(|old| old.contains_key(last))
            .map(|old| get_n::<i64>(old, last))
            .transpose()?;
        match replaced {
            Some(later) if later > at => self.restore_last(sample, start, last, later).await,
            _ => Ok(()),
        }
    }

    async fn buckets(
        &self,
        subscription_id: &SubscriptionId,
        since: DateTime<Utc>,
    ) -> Result<Vec<StatsBucket>, StoreError> {
        let spec = QuerySpec {
            index: None,
            key_condition: "pk = :pk AND sk >= :since",
            names: vec![],
            values: vec![
                (":pk", s(pk(subscription_id))),
                (":since", s(sk(bucket_start(since)))),
            ],
            filter: None,
            forward: true,
        };
        let now = Utc::now();
        let live = move |item: &Item| !is_expired(item, now);
        let items = self
            .query_collect(
                &spec,
                Collect {
                    start: None,
                    want: None,
                    keep: &live,
                },
            )
            .await?;
        // `since` inside a bucket: that bucket starts before it and is not one of the window's.
        Ok(items
            .iter()
            .map(bucket)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|b| b.start >= since)
            .collect())
    }
}
