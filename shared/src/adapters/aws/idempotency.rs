//! Idempotency keys: `IDEM#<scope>`/`IDEM` with the stored response as `doc` and `expires_at`.
//! The first response wins; an expired one (not yet removed by TTL) may be replaced.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::common::{doc, expiring_doc, n, secs, Condition, Conditional};
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
        self.get_live(pk(scope_key), SK, now)
            .await?
            .as_ref()
            .map(doc)
            .transpose()
    }

    async fn put(
        &self,
        scope_key: &str,
        response: &IdempotentResponse,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let item = expiring_doc(pk(scope_key), SK, response, expires_at)?;
        let unused = Condition::new("attribute_not_exists(pk) OR expires_at <= :now")
            .value(":now", n(secs(Utc::now())));
        match self.put_if(item, unused).await? {
            Conditional::Written => Ok(()),
            Conditional::Refused(_) => Err(StoreError::Conflict("idempotency key used".into())),
        }
    }
}
