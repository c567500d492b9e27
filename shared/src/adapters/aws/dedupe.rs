//! Ingest dedupe: `DEDUPE#<key>`/`DEDUPE` with `state` (`pending`/`done`), `lease_until` (Unix ms)
//! and `expires_at`. A claim is one conditional put; when it fails, the item returned with the
//! failure (or a consistent read) says whether the key is done or in progress.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::common::{expiring_item, get_s, key, millis, n, s, secs, Condition, Conditional, Item};
use super::DynamoTable;
use crate::error::StoreError;
use crate::ports::{Claim, DedupeStore, Term};

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
        lease: Term,
        expires_at: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let now = lease.from;
        // A claim that finds the item gone again (released in between) tries once more.
        for _ in 0..3 {
            let mut item = expiring_item(pk(key_), SK, expires_at);
            item.insert("state".into(), s(PENDING));
            item.insert("lease_until".into(), n(millis(lease.until)));
            let claimable = Condition::new("attribute_not_exists(pk) OR expires_at <= :now_s OR (#st = :pending AND lease_until <= :now_ms)")
                .name("#st", "state")
                .value(":now_s", n(secs(now)))
                .value(":now_ms", n(millis(now)))
                .value(":pending", s(PENDING))
                .returning_old();
            match self.put_if(item, claimable).await? {
                Conditional::Written => return Ok(Claim::Claimed),
                Conditional::Refused(Some(old)) => return Ok(held_as(&old)),
                // The server did not return the item: read it.
                Conditional::Refused(None) => {
                    if let Some(old) = self.get_live(pk(key_), SK, now).await? {
                        return Ok(held_as(&old));
                    }
                }
            }
        }
        Ok(Claim::InProgress)
    }

    async fn complete(&self, key_: &str, expires_at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut item = expiring_item(pk(key_), SK, expires_at);
        item.insert("state".into(), s(DONE));
        self.put(item).await
    }

    async fn release(&self, key_: &str) -> Result<(), StoreError> {
        // Only a pending claim is released: a completed key stays done.
        let pending = Condition::new("#st = :pending")
            .name("#st", "state")
            .value(":pending", s(PENDING));
        self.delete_if(key(pk(key_), SK), pending).await?;
        Ok(())
    }
}
