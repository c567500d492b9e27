//! Leases: `LEASE#<name>`/`LEASE` with `holder` and `until` (Unix ms). Acquire is one conditional
//! put (free, expired, or already ours); release deletes only our own lease.

use async_trait::async_trait;
use chrono::Duration;

use super::common::{expiring_item, key, millis, n, s, Condition};
use super::DynamoTable;
use crate::error::StoreError;
use crate::ports::{LeaseStore, Term};

const SK: &str = "LEASE";

fn pk(name: &str) -> String {
    format!("LEASE#{name}")
}

#[async_trait]
impl LeaseStore for DynamoTable {
    async fn acquire(&self, name: &str, holder: &str, term: Term) -> Result<bool, StoreError> {
        // Let TTL sweep abandoned lease rows eventually; readers go by `until`.
        let mut item = expiring_item(pk(name), SK, term.until + Duration::days(1));
        item.insert("holder".into(), s(holder));
        item.insert("until".into(), n(millis(term.until)));
        let free_or_ours = Condition::new("attribute_not_exists(pk) OR #u <= :now OR holder = :h")
            .name("#u", "until")
            .value(":now", n(millis(term.from)))
            .value(":h", s(holder));
        Ok(self.put_if(item, free_or_ours).await?.written())
    }

    async fn release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        // Someone else's lease (or none) is left alone.
        let ours = Condition::new("holder = :h").value(":h", s(holder));
        self.delete_if(key(pk(name), SK), ours).await?;
        Ok(())
    }
}
