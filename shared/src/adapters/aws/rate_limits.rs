//! Rate-limit windows: `RATE#<name>`/`<window start, Unix s>` (`<name>` is a subscription id for
//! the worker's delivery limit, `test#…`/`replay#…` for the API's quotas) with a counter `n`, incremented by
//! one conditional update (`ADD n :one` if `attribute_not_exists(n) OR n < :limit`), so concurrent
//! workers never count past the limit. Items expire a few minutes after their window. A unit is
//! given back (a duplicate copy that made no attempt) by `ADD n :minus_one` if `n > :zero`.
//!
//! Deferral slots: `RATE#<wh_id>`/`SLOT` with `next` (Unix ms), the webhook's next free slot,
//! moved on by a read and a conditional put (`next` unchanged since the read), retried on a race.

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};

use super::common::{
    expiring_item, get_n, is_conditional_failure, key, millis, n, secs, store_error, Condition,
};
use super::DynamoTable;
use crate::error::StoreError;
use crate::ids::SubscriptionId;
use crate::ports::{RateLimiter, RateWindow};

/// How long a window's counter is kept after the window starts.
const WINDOW_TTL: Duration = Duration::minutes(5);
const SLOT_SK: &str = "SLOT";
/// How long a slot item is kept after its `next` (then the webhook has no backlog).
const SLOT_TTL: Duration = Duration::days(1);
/// Read-and-put rounds before a slot reservation gives up (each lost one means another worker
/// just reserved a slot of the same webhook).
const SLOT_ROUNDS: u32 = 20;

#[async_trait]
impl RateLimiter for DynamoTable {
    async fn try_acquire_named(&self, name: &str, window: RateWindow) -> Result<bool, StoreError> {
        if window.limit == 0 {
            return Ok(false);
        }
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                format!("RATE#{name}"),
                secs(window.start).to_string(),
            )))
            .update_expression("ADD #n :one SET expires_at = :exp")
            .condition_expression("attribute_not_exists(#n) OR #n < :limit")
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(window.limit))
            .expression_attribute_values(":exp", n(secs(window.start + WINDOW_TTL)))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }

    async fn give_back(
        &self,
        subscription_id: &SubscriptionId,
        window: RateWindow,
    ) -> Result<(), StoreError> {
        // `n > 0`: never below zero, and never creating a window that is gone.
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                format!("RATE#{subscription_id}"),
                secs(window.start).to_string(),
            )))
            .update_expression("ADD #n :minus_one")
            .condition_expression("#n > :zero")
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":minus_one", n(-1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Ok(()),
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }

    async fn reserve_slots(
        &self,
        subscription_id: &SubscriptionId,
        earliest: DateTime<Utc>,
        interval: Duration,
        count: u32,
    ) -> Result<DateTime<Utc>, StoreError> {
        for _ in 0..SLOT_ROUNDS {
            let current = self.next_free_slot(subscription_id).await?;
            let slot = current.map_or(earliest, |c| c.max(earliest));
            let next = slot + interval * count as i32;
            let mut item =
                expiring_item(format!("RATE#{subscription_id}"), SLOT_SK, next + SLOT_TTL);
            item.insert("next".into(), n(millis(next)));
            let unchanged = match current {
                None => Condition::new("attribute_not_exists(pk)"),
                Some(c) => Condition::new("#next = :seen")
                    .name("#next", "next")
                    .value(":seen", n(millis(c))),
            };
            if self.put_if(item, unchanged).await?.written() {
                return Ok(slot);
            }
        }
        Err(StoreError::Conflict(format!(
            "could not reserve a delivery slot of {subscription_id} in {SLOT_ROUNDS} rounds"
        )))
    }

    async fn next_free_slot(
        &self,
        subscription_id: &SubscriptionId,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let Some(item) = self
            .get_item(format!("RATE#{subscription_id}"), SLOT_SK)
            .await?
        else {
            return Ok(None);
        };
        let ms: i64 = get_n(&item, "next")?;
        Ok(Utc.timestamp_millis_opt(ms).single())
    }
}
