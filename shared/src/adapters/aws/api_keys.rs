//! API keys: `KEY#<sha256 hex>`/`KEY` with the record as `doc`.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;

use super::common::{doc, doc_item, key, store_error, Condition, Conditional};
use super::DynamoTable;
use crate::auth::ApiKeyRecord;
use crate::error::StoreError;
use crate::ports::ApiKeyStore;

const SK: &str = "KEY";

fn pk(key_hash: &str) -> String {
    format!("KEY#{key_hash}")
}

#[async_trait]
impl ApiKeyStore for DynamoTable {
    async fn put(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        let item = doc_item(pk(&record.key_hash), SK, record)?;
        let absent = Condition::new("attribute_not_exists(pk)");
        match self.put_if(item, absent).await? {
            Conditional::Written => Ok(()),
            Conditional::Refused(_) => Err(StoreError::Conflict("api key exists".into())),
        }
    }

    async fn get(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.get_item(pk(key_hash), SK)
            .await?
            .as_ref()
            .map(doc)
            .transpose()
    }

    async fn delete(&self, key_hash: &str) -> Result<bool, StoreError> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(pk(key_hash), SK)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| store_error("DeleteItem", e))?;
        Ok(res.attributes().is_some_and(|a| !a.is_empty()))
    }
}
