use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::ports::{LeaseStore, Term};

#[derive(Default)]
pub struct MemoryLeases {
    /// Holder and term, by lease name.
    items: Mutex<HashMap<String, (String, Term)>>,
}

#[async_trait]
impl LeaseStore for MemoryLeases {
    async fn acquire(&self, name: &str, holder: &str, term: Term) -> Result<bool, StoreError> {
        let mut items = self.items.lock().unwrap();
        match items.get(name) {
            Some((h, held)) if h != holder && held.runs_at(term.from) => Ok(false),
            _ => {
                items.insert(name.to_owned(), (holder.to_owned(), term));
                Ok(true)
            }
        }
    }

    async fn release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let mut items = self.items.lock().unwrap();
        if items.get(name).is_some_and(|(h, _)| h == holder) {
            items.remove(name);
        }
        Ok(())
    }
}
