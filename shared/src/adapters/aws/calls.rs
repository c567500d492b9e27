//! Call state: `CALL#<callId>`/`CALL` with `doc`, `version` and `expires_at`. Writes are
//! optimistic: version 1 requires no live item, version v > 1 requires the stored version v - 1.

use async_trait::async_trait;
use chrono::Utc;

use super::common::{doc, doc_item, n, secs, Condition, EXPIRES_AT};
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
        self.get_live(pk(call_id), SK, Utc::now())
            .await?
            .as_ref()
            .map(doc)
            .transpose()
    }

    async fn put(&self, record: &CallRecord) -> Result<(), StoreError> {
        // The record carries its own expiry (Unix seconds), extended as the call goes on.
        let mut item = doc_item(pk(&record.call_id), SK, record)?;
        item.insert(EXPIRES_AT.into(), n(record.expires_at));
        // An expired item that TTL has not removed yet counts as absent (`get` does not return it).
        let absent = Condition::new("attribute_not_exists(pk) OR expires_at <= :now")
            .value(":now", n(secs(Utc::now())));
        let what = format!("call {}", record.call_id);
        self.put_next_version(item, record.version, absent, &what)
            .await
    }
}
