use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{decode_cursor, encode_cursor};
use crate::error::StoreError;
use crate::ids::SubscriptionId;
use crate::ports::{Page, PageRequest, SubscriptionStore};
use crate::subscription::Subscription;

#[derive(Default)]
pub struct MemorySubscriptions {
    // Keyed by id string: ULIDs sort by creation time, so iteration is oldest first.
    items: Mutex<BTreeMap<String, Subscription>>,
}

impl MemorySubscriptions {
    /// One page, oldest first, of the subscriptions `keep` accepts.
    fn page(
        &self,
        page: &PageRequest,
        keep: impl Fn(&Subscription) -> bool,
    ) -> Result<Page<Subscription>, StoreError> {
        let after = page.cursor.as_deref().map(decode_cursor).transpose()?;
        let items = self.items.lock().unwrap();
        let oldest_first: Vec<Subscription> = items
            .iter()
            .filter(|(k, s)| keep(s) && after.as_ref().is_none_or(|a| k.as_str() > a.as_str()))
            .map(|(_, s)| s.clone())
            .take(page.size() + 1)
            .collect();
        Page::from_lookahead(oldest_first, page.size(), |s| {
            Ok(encode_cursor(&s.id.to_string()))
        })
    }
}

#[async_trait]
impl SubscriptionStore for MemorySubscriptions {
    async fn create(&self, sub: &Subscription, max_per_owner: u32) -> Result<(), StoreError> {
        let mut items = self.items.lock().unwrap();
        let owned = items
            .values()
            .filter(|s| s.owner_id == sub.owner_id)
            .count();
        if owned >= max_per_owner as usize {
            return Err(StoreError::LimitReached {
                limit: max_per_owner,
            });
        }
        let key = sub.id.to_string();
        if items.contains_key(&key) {
            return Err(StoreError::Conflict(format!("{key} exists")));
        }
        items.insert(key, sub.clone());
        Ok(())
    }

    async fn get(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        Ok(self.items.lock().unwrap().get(&id.to_string()).cloned())
    }

    async fn list_by_owner(
        &self,
        owner_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Subscription>, StoreError> {
        self.page(page, |s| s.owner_id == owner_id)
    }

    async fn list_by_org(&self, org_id: &str) -> Result<Vec<Subscription>, StoreError> {
        Ok(self
            .items
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.org_id == org_id)
            .cloned()
            .collect())
    }

    async fn list_all(&self, page: &PageRequest) -> Result<Page<Subscription>, StoreError> {
        self.page(page, |_| true)
    }

    async fn update(&self, sub: &Subscription) -> Result<(), StoreError> {
        let mut items = self.items.lock().unwrap();
        let stored = items
            .get_mut(&sub.id.to_string())
            .ok_or(StoreError::NotFound)?;
        if stored.version + 1 != sub.version {
            return Err(StoreError::Conflict(format!(
                "{} changed (version {})",
                sub.id, stored.version
            )));
        }
        *stored = sub.clone();
        Ok(())
    }

    async fn delete(&self, owner_id: &str, id: &SubscriptionId) -> Result<bool, StoreError> {
        let mut items = self.items.lock().unwrap();
        let key = id.to_string();
        match items.get(&key) {
            Some(s) if s.owner_id == owner_id => {
                items.remove(&key);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
