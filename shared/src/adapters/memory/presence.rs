use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::ports::{CallPresence, PersonViews, PresenceRecord, PresenceStore};

#[derive(Default)]
struct Org {
    records: BTreeMap<String, PresenceRecord>,
    calls: HashMap<String, CallPresence>,
}

#[derive(Default)]
pub struct MemoryPresence {
    orgs: Mutex<HashMap<String, Org>>,
}

#[async_trait]
impl PresenceStore for MemoryPresence {
    async fn load(&self, org_id: &str) -> Result<Vec<PresenceRecord>, StoreError> {
        Ok(self
            .orgs
            .lock()
            .unwrap()
            .get(org_id)
            .map(|o| o.records.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn write(&self, org_id: &str, records: &[PresenceRecord]) -> Result<(), StoreError> {
        let mut orgs = self.orgs.lock().unwrap();
        let org = &mut orgs.entry(org_id.to_owned()).or_default().records;
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

    async fn person(&self, org_id: &str, person_id: &str) -> Result<PersonViews, StoreError> {
        let orgs = self.orgs.lock().unwrap();
        let org = orgs.get(org_id);
        Ok((
            org.and_then(|o| o.records.get(person_id).cloned()),
            org.and_then(|o| o.calls.get(person_id).cloned()),
        ))
    }

    async fn calls(
        &self,
        org_id: &str,
        person_ids: &[&str],
    ) -> Result<Vec<CallPresence>, StoreError> {
        let orgs = self.orgs.lock().unwrap();
        let Some(org) = orgs.get(org_id) else {
            return Ok(Vec::new());
        };
        let mut ids = person_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids
            .iter()
            .filter_map(|p| org.calls.get(*p).cloned())
            .collect())
    }

    async fn put_call(&self, org_id: &str, call: &CallPresence) -> Result<(), StoreError> {
        let mut orgs = self.orgs.lock().unwrap();
        let calls = &mut orgs.entry(org_id.to_owned()).or_default().calls;
        let stored = calls.get(&call.person_id).map_or(0, |c| c.version);
        if call.version == 0 || stored != call.version - 1 {
            return Err(StoreError::Conflict(format!(
                "call presence of {} changed (stored version {stored}, writing {})",
                call.person_id, call.version
            )));
        }
        calls.insert(call.person_id.clone(), call.clone());
        Ok(())
    }
}
