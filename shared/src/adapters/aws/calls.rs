//! Call state: `CALL#<callId>`/`CALL` with `doc`, `version` and `expires_at`. Writes are
//! optimistic: version 1 requires no live item, version v > 1 requires the stored version v - 1.

use async_trait::async_trait;
use chrono::Utc;

use super::common::{doc, is_conditional_failure, is_expired, key, n, secs, store_error, to_doc};
use super::DynamoTable;
use crate::call_state::CallRecord;
use crate::error::StoreError;
use crate::ports::CallStateStore;

const SK: &str = "CALL";

fn pk(call_id: &str) -> String {
    format!("CALL#{call_id}")
}

#[async_trait]
impl CallStateStore for DynamoTable {
    async fn get(&self, call_id: &str) -> Result<Option<CallRecord>, StoreError> {
        match self.get_item(pk(call_id), SK).await? {
            Some(item) if !is_expired(&item, Utc::now()) => doc(&item).map(Some),
            _ => Ok(None),
        }
    }

    async fn put(&self, record: &CallRecord) -> Result<(), StoreError> {
        let Some(prev) = record.version.checked_sub(1) else {
            return Err(StoreError::Conflict(format!(
                "call {}: version 0 cannot be written",
                record.call_id
            )));
        };
        let mut item = key(pk(&record.call_id), SK);
        item.insert("doc".into(), to_doc(record)?);
        item.insert("version".into(), n(record.version));
        item.insert("expires_at".into(), n(record.expires_at));
        let req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        // An expired item that TTL has not removed yet counts as absent (`get` does not return it).
        let req = if prev == 0 {
            req.condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
                .expression_attribute_values(":now", n(secs(Utc::now())))
        } else {
            req.condition_expression("#v = :prev")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":prev", n(prev))
        };
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Err(StoreError::Conflict(format!(
                "call {} changed",
                record.call_id
            ))),
            Err(e) => Err(store_error("PutItem", e)),
        }
    }
}
