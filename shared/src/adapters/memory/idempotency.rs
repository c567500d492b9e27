use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::ports::{IdempotencyStore, IdempotentResponse};

#[derive(Default)]
pub struct MemoryIdempotency {
    items: Mutex<HashMap<String, (IdempotentResponse, DateTime<Utc>)>>,
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotency {
    async fn get(
        &self,
        scope_key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotentResponse>, StoreError> {
        Ok(self
            .items
            .lock()
            .unwrap()
            .get(scope_key)
            .filter(|(_, exp)| *exp > now)
            .map(|(r, _)| r.clone()))
    }

    async fn put(
        &self,
        scope_key: &str,
        response: &IdempotentResponse,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut items = self.items.lock().unwrap();
        if items
            .get(scope_key)
            .is_some_and(|(_, exp)| *exp > Utc::now())
        {
            return Err(StoreError::Conflict("idempotency key used".into()));
        }
        items.insert(scope_key.to_owned(), (response.clone(), expires_at));
        Ok(())
    }
}
