//! Idempotency keys: `IDEM#<scope>`/`IDEM` with the stored response as `doc` and `expires_at`.
//! The first response wins; an expired one (not yet removed by TTL) may be replaced.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::common::{doc, is_conditional_failure, is_expired, key, n, secs, store_error, to_doc};
use super::DynamoTable;
use crate::error::StoreError;
use crate::ports::{IdempotencyStore, IdempotentResponse};

const SK: &str = "IDEM";

fn pk(scope_key: &str) -> String {
    format!("IDEM#{scope_key}")
}

#[async_trait]
impl IdempotencyStore for DynamoTable {
    async fn get(
        &self,
        scope_key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotentResponse>, StoreError> {
        match self.get_item(pk(scope_key), SK).await? {
            Some(item) if !is_expired(&item, now) => doc(&item).map(Some),
            _ => Ok(None),
        }
    }

    async fn put(
        &self,
        scope_key: &str,
        response: &IdempotentResponse,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut item = key(pk(scope_key), SK);
        item.insert("doc".into(), to_doc(response)?);
        item.insert("expires_at".into(), n(secs(expires_at)));
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(":now", n(secs(Utc::now())))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => {
                Err(StoreError::Conflict("idempotency key used".into()))
            }
            Err(e) => Err(store_error("PutItem", e)),
        }
    }
}
