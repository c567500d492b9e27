use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::ports::{PresenceRecord, PresenceStore};

#[derive(Default)]
pub struct MemoryPresence {
    orgs: Mutex<HashMap<String, BTreeMap<String, PresenceRecord>>>,
}

#[async_trait]
impl PresenceStore for MemoryPresence {
    async fn load(&self, org_id: &str) -> Result<Vec<PresenceRecord>, StoreError> {
        Ok(self
            .orgs
            .lock()
            .unwrap()
            .get(org_id)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn write(&self, org_id: &str, records: &[PresenceRecord]) -> Result<(), StoreError> {
        let mut orgs = self.orgs.lock().unwrap();
        let org = orgs.entry(org_id.to_owned()).or_default();
        for r in records {
            // Never regress: an older cycle's write loses to a newer one.
            match org.get(&r.person_id) {
                Some(existing) if existing.version > r.version => {}
                _ => {
                    org.insert(r.person_id.clone(), r.clone());
                }
            }
        }
        Ok(())
    }
}
