use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::auth::ApiKeyRecord;
use crate::error::StoreError;
use crate::ports::ApiKeyStore;

#[derive(Default)]
pub struct MemoryApiKeys {
    items: Mutex<HashMap<String, ApiKeyRecord>>,
}

#[async_trait]
impl ApiKeyStore for MemoryApiKeys {
    async fn put(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let mut items = self.items.lock().unwrap();
        if items.contains_key(&key.key_hash) {
            return Err(StoreError::Conflict("api key exists".into()));
        }
        items.insert(key.key_hash.clone(), key.clone());
        Ok(())
    }

    async fn get(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self.items.lock().unwrap().get(key_hash).cloned())
    }

    async fn delete(&self, key_hash: &str) -> Result<bool, StoreError> {
        Ok(self.items.lock().unwrap().remove(key_hash).is_some())
    }
}
