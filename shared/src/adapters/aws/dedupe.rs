//! Ingest dedupe: `DEDUPE#<key>`/`DEDUPE` with `state` (`pending`/`done`), `lease_until` (Unix ms)
//! and `expires_at`. A claim is one conditional put; when it fails, the item returned with the
//! failure (or a consistent read) says whether the key is done or in progress.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use chrono::{DateTime, Utc};

use super::common::{
    get_s, is_conditional_failure, is_expired, key, millis, n, s, secs, store_error, Item,
};
use super::DynamoTable;
use crate::error::StoreError;
use crate::ports::{Claim, DedupeStore};

const SK: &str = "DEDUPE";
const PENDING: &str = "pending";
const DONE: &str = "done";

fn pk(key: &str) -> String {
    format!("DEDUPE#{key}")
}

/// The claim a stored (live) item stands for.
fn held_as(item: &Item) -> Claim {
    if get_s(item, "state").is_ok_and(|st| st == DONE) {
        Claim::Done
    } else {
        Claim::InProgress
    }
}

#[async_trait]
impl DedupeStore for DynamoTable {
    async fn claim(
        &self,
        key_: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        // A claim that finds the item gone again (released in between) tries once more.
        for _ in 0..3 {
            let mut item = key(pk(key_), SK);
            item.insert("state".into(), s(PENDING));
            item.insert("lease_until".into(), n(millis(lease_until)));
            item.insert("expires_at".into(), n(secs(expires_at)));
            let res = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk) OR expires_at <= :now_s OR (#st = :pending AND lease_until <= :now_ms)")
                .expression_attribute_names("#st", "state")
                .expression_attribute_values(":now_s", n(secs(now)))
                .expression_attribute_values(":now_ms", n(millis(now)))
                .expression_attribute_values(":pending", s(PENDING))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            let err = match res {
                Ok(_) => return Ok(Claim::Claimed),
                Err(e) if is_conditional_failure(&e) => e,
                Err(e) => return Err(store_error("PutItem", e)),
            };
            if let Some(PutItemError::ConditionalCheckFailedException(c)) = err.as_service_error() {
                if let Some(old) = c.item().filter(|i| !i.is_empty()) {
                    return Ok(held_as(old));
                }
            }
            // The server did not return the item: read it.
            match self.get_item(pk(key_), SK).await? {
                Some(old) if !is_expired(&old, now) => return Ok(held_as(&old)),
                _ => continue,
            }
        }
        Ok(Claim::InProgress)
    }

    async fn complete(&self, key_: &str, expires_at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut item = key(pk(key_), SK);
        item.insert("state".into(), s(DONE));
        item.insert("expires_at".into(), n(secs(expires_at)));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| store_error("PutItem", e))?;
        Ok(())
    }

    async fn release(&self, key_: &str) -> Result<(), StoreError> {
        // Only a pending claim is released: a completed key stays done.
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(pk(key_), SK)))
            .condition_expression("#st = :pending")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":pending", s(PENDING))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Ok(()),
            Err(e) => Err(store_error("DeleteItem", e)),
        }
    }
}
