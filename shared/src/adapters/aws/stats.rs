//! Materialised delivery statistics (`crate::stats`), in the partition `STATS#<wh_id>`:
//!
//! - a closed five-minute bucket: sk `<bucket start, RFC 3339>`, with `successes`, `failures`, one
//!   count per duration bin (`h0` … `h58`, only the bins that have attempts), `last_success_at`/
//!   `last_failure_at` (Unix ms) and `expires_at` (the bucket's start + `BUCKET_TTL`); put
//!   (`BatchWriteItem`, 25 a call) by the API's read that first sees it closed and read past (a
//!   rewrite by a concurrent read puts the same figures);
//! - the watermark: sk `watermark` (sorts after every RFC 3339 key, so the Query of the day's
//!   buckets returns it too), `upto` (Unix ms: every bucket before it is materialised) and
//!   `expires_at` (`upto` + `BUCKET_TTL`); a PutItem conditional on moving it forward, after the
//!   buckets.
//!
//! Nothing here is written per attempt: the worker only writes its attempt records.

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};

use super::common::{
    get_n, get_s, is_expired, n, s, secs, Collect, Condition, Conditional, Item, QuerySpec,
};
use super::DynamoTable;
use crate::error::StoreError;
use crate::ids::SubscriptionId;
use crate::ports::StatsStore;
use crate::stats::{bucket_start, Materialised, StatsBucket, BINS, BUCKET_TTL};

/// The watermark's sort key.
const WATERMARK: &str = "watermark";

fn pk(subscription_id: &SubscriptionId) -> String {
    format!("STATS#{subscription_id}")
}

fn sk(start: DateTime<Utc>) -> String {
    start.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn bin_attribute(bin: usize) -> String {
    format!("h{bin}")
}

/// A number attribute that may be absent (a bin without attempts).
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
    let start = get_s(item, "sk")?;
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

fn bucket_item(subscription_id: &SubscriptionId, b: &StatsBucket) -> Item {
    let mut item = super::common::key(pk(subscription_id), sk(b.start));
    item.insert("successes".into(), n(b.successes));
    item.insert("failures".into(), n(b.failures));
    for (i, c) in b.histogram.iter().enumerate().filter(|(_, c)| **c > 0) {
        item.insert(bin_attribute(i), n(c));
    }
    for (name, at) in [
        ("last_success_at", b.last_success_at),
        ("last_failure_at", b.last_failure_at),
    ] {
        if let Some(at) = at {
            item.insert(name.into(), n(at.timestamp_millis()));
        }
    }
    item.insert("expires_at".into(), n(secs(b.start + BUCKET_TTL)));
    item
}

#[async_trait]
impl StatsStore for DynamoTable {
    async fn materialised(
        &self,
        subscription_id: &SubscriptionId,
        since: DateTime<Utc>,
    ) -> Result<Materialised, StoreError> {
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
        let mut found = Materialised::default();
        for item in &items {
            if get_s(item, "sk")? == WATERMARK {
                found.upto = instant(item, "upto")?;
            } else {
                let b = bucket(item)?;
                // `since` inside a bucket: that bucket starts before it and is not one asked for.
                if b.start >= since {
                    found.buckets.push(b);
                }
            }
        }
        Ok(found)
    }

    async fn materialise(
        &self,
        subscription_id: &SubscriptionId,
        buckets: &[StatsBucket],
        upto: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // BatchWriteItem, 25 a call: usually one bucket (a read every few minutes, or a page of
        // a catch-up); a day's worth (≤ 288 small items, 12 calls) on the first read of a quiet
        // webhook, whose day is one page of records. Every bucket before the watermark.
        let items = buckets.iter().map(|b| bucket_item(subscription_id, b));
        self.batch_put(items.collect(), "stats bucket").await?;
        let mut mark = super::common::key(pk(subscription_id), WATERMARK);
        mark.insert("upto".into(), n(upto.timestamp_millis()));
        mark.insert("expires_at".into(), n(secs(upto + BUCKET_TTL)));
        let forward = Condition::new("attribute_not_exists(#u) OR #u < :u")
            .name("#u", "upto")
            .value(":u", n(upto.timestamp_millis()));
        // Refused: another read moved it as far or farther; nothing to do.
        match self.put_if(mark, forward).await? {
            Conditional::Written | Conditional::Refused(_) => Ok(()),
        }
    }
}
