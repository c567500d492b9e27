//! Leases: `LEASE#<name>`/`LEASE` with `holder` and `until` (Unix ms). Acquire is one conditional
//! put (free, expired, or already ours); release deletes only our own lease.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use super::common::{is_conditional_failure, key, millis, n, s, secs, store_error};
use super::DynamoTable;
use crate::error::StoreError;
use crate::ports::LeaseStore;

const SK: &str = "LEASE";

fn pk(name: &str) -> String {
    format!("LEASE#{name}")
}

#[async_trait]
impl LeaseStore for DynamoTable {
    async fn acquire(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut item = key(pk(name), SK);
        item.insert("holder".into(), s(holder));
        item.insert("until".into(), n(millis(until)));
        // Let TTL sweep abandoned lease rows eventually; readers go by `until`.
        item.insert("expires_at".into(), n(secs(until + Duration::days(1))));
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #u <= :now OR holder = :h")
            .expression_attribute_names("#u", "until")
            .expression_attribute_values(":now", n(millis(now)))
            .expression_attribute_values(":h", s(holder))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(store_error("PutItem", e)),
        }
    }

    async fn release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(pk(name), SK)))
            .condition_expression("holder = :h")
            .expression_attribute_values(":h", s(holder))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Ok(()),
            Err(e) => Err(store_error("DeleteItem", e)),
        }
    }
}
