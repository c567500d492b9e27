//! Subscriptions: `SUB#<wh_id>`/`SUB`, listed by owner on `gsi1` and by org on `gsi2`, with a
//! per-owner counter item `OWNER#<userId>`/`COUNT` kept in step by transactions.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};

use super::common::{
    backoff, build_error, decode_cursor, doc, doc_item, encode_cursor, key, n, s, store_error,
    Collect, Condition, Item, QuerySpec,
};
use super::DynamoTable;
use crate::error::StoreError;
use crate::ids::SubscriptionId;
use crate::ports::{Page, PageRequest, SubscriptionStore};
use crate::subscription::Subscription;

const SK: &str = "SUB";
const COUNTER_SK: &str = "COUNT";
/// How often a transaction that lost to a concurrent one is retried before giving up.
const TRANSACTION_RETRIES: u32 = 12;

/// Every subscription item's partition key starts so.
const PK_PREFIX: &str = "SUB#";

fn pk(id: &SubscriptionId) -> String {
    format!("{PK_PREFIX}{id}")
}

fn owner_pk(owner_id: &str) -> String {
    format!("OWNER#{owner_id}")
}

fn item(sub: &Subscription) -> Result<Item, StoreError> {
    let id = sub.id.to_string();
    let mut item = doc_item(pk(&sub.id), SK, sub)?;
    item.insert("version".into(), n(sub.version));
    item.insert("owner_id".into(), s(sub.owner_id.clone()));
    item.insert("gsi1pk".into(), s(owner_pk(&sub.owner_id)));
    item.insert("gsi1sk".into(), s(id.clone()));
    item.insert("gsi2pk".into(), s(format!("ORG#{}", sub.org_id)));
    item.insert("gsi2sk".into(), s(id));
    Ok(item)
}

fn always(_: &Item) -> bool {
    true
}

/// What a failed transaction means, from its cancellation reasons (index-aligned with the items).
#[derive(Debug, PartialEq, Eq)]
enum Cancelled {
    /// The item at this index failed its condition.
    Condition(usize),
    /// Lost to a concurrent transaction: retry.
    Contended,
}

fn cancelled(err: &TransactWriteItemsError) -> Option<Cancelled> {
    match err {
        TransactWriteItemsError::TransactionCanceledException(e) => {
            let reasons = e.cancellation_reasons();
            if let Some(i) = reasons
                .iter()
                .position(|r| r.code() == Some("ConditionalCheckFailed"))
            {
                Some(Cancelled::Condition(i))
            } else if reasons
                .iter()
                .any(|r| r.code() == Some("TransactionConflict"))
            {
                Some(Cancelled::Contended)
            } else {
                None
            }
        }
        TransactWriteItemsError::TransactionInProgressException(_) => Some(Cancelled::Contended),
        _ => None,
    }
}

impl DynamoTable {
    /// Runs a transaction, retrying while it loses to concurrent transactions; `Ok(None)` on
    /// success, `Ok(Some(i))` when item `i`'s condition failed.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Option<usize>, StoreError> {
        let mut attempt = 0;
        loop {
            let err = match self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await
            {
                Ok(_) => return Ok(None),
                Err(e) => e,
            };
            match err.as_service_error().and_then(cancelled) {
                Some(Cancelled::Condition(i)) => return Ok(Some(i)),
                Some(Cancelled::Contended) if attempt < TRANSACTION_RETRIES => {
                    tracing::debug!(attempt, "transaction lost to a concurrent one; retrying");
                    backoff(attempt).await;
                    attempt += 1;
                }
                Some(Cancelled::Contended) => {
                    return Err(StoreError::Conflict(
                        "transaction kept conflicting with concurrent writes".into(),
                    ));
                }
                None => return Err(store_error("TransactWriteItems", err)),
            }
        }
    }
}

#[async_trait]
impl SubscriptionStore for DynamoTable {
    async fn create(&self, sub: &Subscription, max_per_owner: u32) -> Result<(), StoreError> {
        if max_per_owner == 0 {
            return Err(StoreError::LimitReached { limit: 0 });
        }
        let counter = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(owner_pk(&sub.owner_id), COUNTER_SK)))
            .update_expression("ADD #n :one")
            .condition_expression("attribute_not_exists(#n) OR #n < :max")
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(max_per_owner))
            .build()
            .map_err(build_error)?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item(sub)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        let items = vec![
            TransactWriteItem::builder().update(counter).build(),
            TransactWriteItem::builder().put(put).build(),
        ];
        match self.transact(items).await? {
            None => Ok(()),
            Some(0) => Err(StoreError::LimitReached {
                limit: max_per_owner,
            }),
            Some(_) => Err(StoreError::Conflict(format!("{} exists", sub.id))),
        }
    }

    async fn get(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        self.get_item(pk(id), SK)
            .await?
            .as_ref()
            .map(doc)
            .transpose()
    }

    async fn list_by_owner(
        &self,
        owner_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Subscription>, StoreError> {
        let gsi1pk = owner_pk(owner_id);
        let spec = QuerySpec::index("gsi1", "gsi1pk = :p", gsi1pk.clone());
        let cursor_key = [
            ("pk", None),
            ("sk", Some(SK)),
            ("gsi1pk", Some(gsi1pk.as_str())),
            ("gsi1sk", None),
        ];
        self.query_page(&spec, page, &cursor_key, &always).await
    }

    async fn list_by_org(&self, org_id: &str) -> Result<Vec<Subscription>, StoreError> {
        let spec = QuerySpec::index("gsi2", "gsi2pk = :p", format!("ORG#{org_id}"));
        let every = Collect {
            start: None,
            want: None,
            keep: &always,
        };
        let items = self.query_collect(&spec, every).await?;
        items.iter().map(doc).collect()
    }

    async fn list_all(&self, page: &PageRequest) -> Result<Page<Subscription>, StoreError> {
        // No index holds every subscription (gsi1 is per owner, gsi2 per org): a Scan, filtered to
        // subscription items. A cursor is the table key of the last item returned, which resumes
        // the Scan right after it whatever the Scan's order.
        let cursor_key = [("pk", None), ("sk", Some(SK))];
        let mut start = match page.cursor.as_deref() {
            Some(c) => {
                let k = decode_cursor(c, &cursor_key)?;
                if !matches!(k.get("pk"), Some(AttributeValue::S(p)) if p.starts_with(PK_PREFIX)) {
                    return Err(StoreError::BadCursor);
                }
                Some(k)
            }
            None => None,
        };
        let want = page.size() + 1;
        let mut items = Vec::new();
        loop {
            let res = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("sk = :sk AND begins_with(pk, :p)")
                .expression_attribute_values(":sk", s(SK))
                .expression_attribute_values(":p", s(PK_PREFIX))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                // A page's worth per call: little re-read after the page's last item, and no call
                // reads more than the page needs. The limit counts items before the filter, so a
                // page may take several calls.
                .limit(i32::try_from(want).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(|e| store_error("Scan", e))?;
            items.extend(res.items().iter().cloned());
            if items.len() >= want {
                break;
            }
            match res.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        Page::from_lookahead(items, page.size(), |last| {
            encode_cursor(last, &["pk", "sk"])
        })?
        .try_map(doc)
    }

    async fn update(&self, sub: &Subscription) -> Result<(), StoreError> {
        let Some(prev) = sub.version.checked_sub(1) else {
            return Err(StoreError::Conflict(format!(
                "{}: version 0 cannot be an update",
                sub.id
            )));
        };
        let unchanged = Condition::new("attribute_exists(pk) AND #v = :prev")
            .name("#v", "version")
            .value(":prev", n(prev));
        if self.put_if(item(sub)?, unchanged).await?.written() {
            return Ok(());
        }
        match SubscriptionStore::get(self, &sub.id).await? {
            None => Err(StoreError::NotFound),
            Some(stored) => Err(StoreError::Conflict(format!(
                "{} changed (version {})",
                sub.id, stored.version
            ))),
        }
    }

    async fn delete(&self, owner_id: &str, id: &SubscriptionId) -> Result<bool, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk(id), SK)))
            .condition_expression("owner_id = :o")
            .expression_attribute_values(":o", s(owner_id))
            .build()
            .map_err(build_error)?;
        // Unconditional: a counter that drifted (e.g. restored data) only ever errs on the side of
        // allowing a create, never on blocking a delete.
        let counter = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(owner_pk(owner_id), COUNTER_SK)))
            .update_expression("ADD #n :minus_one")
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":minus_one", n(-1))
            .build()
            .map_err(build_error)?;
        let items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            TransactWriteItem::builder().update(counter).build(),
        ];
        Ok(self.transact(items).await?.is_none())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    use aws_sdk_dynamodb::types::CancellationReason;

    use super::*;

    fn cancel(codes: &[&str]) -> TransactWriteItemsError {
        let mut e = TransactionCanceledException::builder();
        for c in codes {
            e = e.cancellation_reasons(CancellationReason::builder().code(*c).build());
        }
        TransactWriteItemsError::TransactionCanceledException(e.build())
    }

    #[test]
    fn cancellation_reasons_tell_which_item_failed() {
        assert_eq!(
            cancelled(&cancel(&["ConditionalCheckFailed", "None"])),
            Some(Cancelled::Condition(0))
        );
        assert_eq!(
            cancelled(&cancel(&["None", "ConditionalCheckFailed"])),
            Some(Cancelled::Condition(1))
        );
        assert_eq!(
            cancelled(&cancel(&["TransactionConflict", "None"])),
            Some(Cancelled::Contended)
        );
        assert_eq!(cancelled(&cancel(&["ThrottlingError", "None"])), None);
    }
}
