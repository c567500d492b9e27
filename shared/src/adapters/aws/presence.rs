//! Presence: `PRESENCE#<orgId>`/`PERSON#<personId>` with `fingerprint` and `version`.
//!
//! `load` is one (paginated) Query of the org's partition. `write` uses `BatchWriteItem` (25 puts
//! per call, unprocessed items retried), which cannot be conditional: unlike the in-memory
//! adapter, two overlapping writers are last-writer-wins and a stale write *can* lower `version`.
//! What prevents that in production is the poller's lease (`LeaseStore`, plus reserved
//! concurrency 1): only one poll cycle writes an org at a time. Within one `write` call, duplicate
//! people are collapsed to their highest version (DynamoDB refuses duplicate keys in a batch).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};

use super::common::{
    backoff, build_error, get_n, get_s, key, n, s, store_error, Collect, Item, QuerySpec,
};
use super::DynamoTable;
use crate::error::StoreError;
use crate::ports::{PresenceRecord, PresenceStore};

/// `BatchWriteItem`'s limit.
pub(crate) const BATCH_SIZE: usize = 25;
/// Rounds of retrying `UnprocessedItems` before giving up.
const UNPROCESSED_RETRIES: u32 = 8;
const PERSON_PREFIX: &str = "PERSON#";

fn pk(org_id: &str) -> String {
    format!("PRESENCE#{org_id}")
}

fn always(_: &Item) -> bool {
    true
}

/// The records to write, one per person (the highest version wins), in batches of 25.
pub(crate) fn batches(records: &[PresenceRecord]) -> Vec<Vec<&PresenceRecord>> {
    let mut latest: HashMap<&str, &PresenceRecord> = HashMap::new();
    let mut order = Vec::new();
    for r in records {
        match latest.get(r.person_id.as_str()) {
            Some(existing) if existing.version >= r.version => {}
            Some(_) => {
                latest.insert(&r.person_id, r);
            }
            None => {
                order.push(r.person_id.as_str());
                latest.insert(&r.person_id, r);
            }
        }
    }
    let unique: Vec<&PresenceRecord> = order.iter().map(|p| latest[p]).collect();
    unique.chunks(BATCH_SIZE).map(<[_]>::to_vec).collect()
}

#[async_trait]
impl PresenceStore for DynamoTable {
    async fn load(&self, org_id: &str) -> Result<Vec<PresenceRecord>, StoreError> {
        let items = self
            .query_collect(
                &QuerySpec::partition(pk(org_id)),
                Collect {
                    start: None,
                    want: None,
                    keep: &always,
                },
            )
            .await?;
        items
            .iter()
            .map(|item| {
                let sk = get_s(item, "sk")?;
                let person_id = sk
                    .strip_prefix(PERSON_PREFIX)
                    .ok_or_else(|| StoreError::Corrupt(format!("unexpected presence key {sk}")))?;
                Ok(PresenceRecord {
                    person_id: person_id.to_owned(),
                    fingerprint: get_s(item, "fingerprint")?.to_owned(),
                    version: get_n(item, "version")?,
                })
            })
            .collect()
    }

    async fn write(&self, org_id: &str, records: &[PresenceRecord]) -> Result<(), StoreError> {
        for batch in batches(records) {
            let mut requests = Vec::with_capacity(batch.len());
            for r in batch {
                let mut item = key(pk(org_id), format!("{PERSON_PREFIX}{}", r.person_id));
                item.insert("fingerprint".into(), s(r.fingerprint.clone()));
                item.insert("version".into(), n(r.version));
                requests.push(
                    WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(item))
                                .build()
                                .map_err(build_error)?,
                        )
                        .build(),
                );
            }
            let mut attempt = 0;
            loop {
                let res = self
                    .client
                    .batch_write_item()
                    .request_items(self.table.clone(), requests)
                    .send()
                    .await
                    .map_err(|e| store_error("BatchWriteItem", e))?;
                requests = res
                    .unprocessed_items()
                    .and_then(|u| u.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                if attempt >= UNPROCESSED_RETRIES {
                    return Err(StoreError::Unavailable(format!(
                        "BatchWriteItem: {} presence items still unprocessed after retries",
                        requests.len()
                    )));
                }
                backoff(attempt).await;
                attempt += 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(person: &str, version: u64) -> PresenceRecord {
        PresenceRecord {
            person_id: person.into(),
            fingerprint: format!("f{version}"),
            version,
        }
    }

    #[test]
    fn sixty_records_make_three_batches() {
        let records: Vec<_> = (0..60).map(|i| rec(&format!("p{i}"), 1)).collect();
        let sizes: Vec<usize> = batches(&records).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![25, 25, 10]);
    }

    #[test]
    fn duplicates_collapse_to_the_highest_version() {
        let records = vec![rec("a", 3), rec("b", 1), rec("a", 5), rec("a", 4)];
        let b = batches(&records);
        assert_eq!(b.len(), 1);
        assert_eq!(
            b[0].iter()
                .map(|r| (r.person_id.as_str(), r.version))
                .collect::<Vec<_>>(),
            vec![("a", 5), ("b", 1)]
        );
    }
}
