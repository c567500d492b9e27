//! Presence: `PRESENCE#<orgId>`/`PERSON#<personId>` with `fingerprint` and `version`.
//!
//! `load` is one (paginated) Query of the org's partition. `write` uses `BatchWriteItem` (25 puts
//! per call, unprocessed items retried), which cannot be conditional: unlike the in-memory
//! adapter, two overlapping writers are last-writer-wins and a stale write *can* lower `version`.
//! What prevents that in production is the poller's lease (`LeaseStore`, plus reserved
//! concurrency 1): only one poll cycle writes an org at a time. Within one `write` call, duplicate
//! people are collapsed to their highest version (DynamoDB refuses duplicate keys in a batch).
//! A record also keeps the person's sent item (`item`, compact JSON) when the poller gave one.
//!
//! Presence from calls (`call_presence`): the ingest's `CallPresence` of a person is
//! `PERSON#<personId>#CALL` (`doc`, `version`) in the same partition, so that one Query
//! (`begins_with(sk, PERSON#<personId>)`) reads both views of a person; `load` leaves those items
//! out. Its writes are conditional (version v requires the stored v - 1); the poller reads the
//! changed people's with `BatchGetItem` (100 keys per call, consistent).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::KeysAndAttributes;

use super::common::{
    backoff, build_error, doc, doc_item, get_n, get_s, key, n, s, store_error, Collect, Condition,
    Item, QuerySpec,
};
use super::DynamoTable;
use crate::error::StoreError;
use crate::ports::{CallPresence, PersonViews, PresenceRecord, PresenceStore};

/// `BatchWriteItem`'s limit.
pub(crate) const BATCH_SIZE: usize = super::common::BATCH_WRITE_SIZE;
/// Rounds of retrying `UnprocessedItems` before giving up.
const UNPROCESSED_RETRIES: u32 = 8;
const PERSON_PREFIX: &str = "PERSON#";
/// The ingest's call presence of a person: `PERSON#<personId>#CALL`.
const CALL_SUFFIX: &str = "#CALL";
/// `BatchGetItem`'s limit.
const BATCH_GET_SIZE: usize = 100;

fn pk(org_id: &str) -> String {
    format!("PRESENCE#{org_id}")
}

fn call_sk(person_id: &str) -> String {
    format!("{PERSON_PREFIX}{person_id}{CALL_SUFFIX}")
}

/// The poller's records only (not the ingest's call presences).
fn is_record(item: &Item) -> bool {
    get_s(item, "sk").is_ok_and(|sk| !sk.ends_with(CALL_SUFFIX))
}

fn record(item: &Item) -> Result<PresenceRecord, StoreError> {
    let sk = get_s(item, "sk")?;
    let person_id = sk
        .strip_prefix(PERSON_PREFIX)
        .ok_or_else(|| StoreError::Corrupt(format!("unexpected presence key {sk}")))?;
    Ok(PresenceRecord {
        person_id: person_id.to_owned(),
        fingerprint: get_s(item, "fingerprint")?.to_owned(),
        version: get_n(item, "version")?,
        item: item.get("item").and_then(|v| v.as_s().ok()).cloned(),
    })
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
                    keep: &is_record,
                },
            )
            .await?;
        items.iter().map(record).collect()
    }

    async fn write(&self, org_id: &str, records: &[PresenceRecord]) -> Result<(), StoreError> {
        for batch in batches(records) {
            let items = batch.into_iter().map(|r| {
                let mut item = key(pk(org_id), format!("{PERSON_PREFIX}{}", r.person_id));
                item.insert("fingerprint".into(), s(r.fingerprint.clone()));
                item.insert("version".into(), n(r.version));
                if let Some(sent) = &r.item {
                    item.insert("item".into(), s(sent.clone()));
                }
                item
            });
            self.batch_put(items.collect(), "presence").await?;
        }
        Ok(())
    }

    async fn person(&self, org_id: &str, person_id: &str) -> Result<PersonViews, StoreError> {
        let record_sk = format!("{PERSON_PREFIX}{person_id}");
        let call = call_sk(person_id);
        let mut spec = QuerySpec::partition(pk(org_id));
        spec.key_condition = "pk = :pk AND begins_with(sk, :person)";
        spec.values.push((":person", s(record_sk.clone())));
        // Other people whose id starts with this one's are read and dropped (ids rarely share a
        // prefix: Webex's are of one length).
        let keep = |item: &Item| get_s(item, "sk").is_ok_and(|sk| sk == record_sk || sk == call);
        let items = self
            .query_collect(
                &spec,
                Collect {
                    start: None,
                    want: None,
                    keep: &keep,
                },
            )
            .await?;
        let mut out = (None, None);
        for item in &items {
            if get_s(item, "sk")? == call {
                out.1 = Some(doc(item)?);
            } else {
                out.0 = Some(record(item)?);
            }
        }
        Ok(out)
    }

    async fn calls(
        &self,
        org_id: &str,
        person_ids: &[&str],
    ) -> Result<Vec<CallPresence>, StoreError> {
        let mut unique: Vec<&str> = person_ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let mut out = Vec::new();
        for chunk in unique.chunks(BATCH_GET_SIZE) {
            let keys: Vec<Item> = chunk.iter().map(|p| key(pk(org_id), call_sk(p))).collect();
            let mut request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(build_error)?;
            let mut attempt = 0;
            loop {
                let res = self
                    .client
                    .batch_get_item()
                    .request_items(self.table.clone(), request)
                    .send()
                    .await
                    .map_err(|e| store_error("BatchGetItem", e))?;
                if let Some(items) = res.responses().and_then(|r| r.get(&self.table)) {
                    for item in items {
                        out.push(doc(item)?);
                    }
                }
                match res.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                    Some(left) if !left.keys().is_empty() => {
                        if attempt >= UNPROCESSED_RETRIES {
                            return Err(StoreError::Unavailable(format!(
                                "BatchGetItem: {} call presences still unprocessed after retries",
                                left.keys().len()
                            )));
                        }
                        request = left.clone();
                        backoff(attempt).await;
                        attempt += 1;
                    }
                    _ => break,
                }
            }
        }
        Ok(out)
    }

    async fn put_call(&self, org_id: &str, call: &CallPresence) -> Result<(), StoreError> {
        let item = doc_item(pk(org_id), call_sk(&call.person_id), call)?;
        let absent = Condition::new("attribute_not_exists(pk)");
        let what = format!("call presence of {}", call.person_id);
        self.put_next_version(item, call.version, absent, &what)
            .await
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
            item: None,
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
