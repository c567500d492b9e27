//! API keys: `KEY#<sha256 hex>`/`KEY` with the record as `doc`.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;

use super::common::{doc, is_conditional_failure, key, store_error, to_doc};
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
        let mut item = key(pk(&record.key_hash), SK);
        item.insert("doc".into(), to_doc(record)?);
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => {
                Err(StoreError::Conflict("api key exists".into()))
            }
            Err(e) => Err(store_error("PutItem", e)),
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
