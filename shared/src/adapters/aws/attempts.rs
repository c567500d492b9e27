//! The delivery attempt log: `ATTEMPTS#<wh_id>`/`<att_id>` (ULID: time-ordered) with `doc`,
//! `status` and `expires_at`. Listed newest first (`ScanIndexForward = false`), optionally
//! filtered on `status`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::common::{
    decode_cursor, doc, is_expired, key, n, paginate, s, secs, store_error, to_doc, Collect, Item,
    QuerySpec,
};
use super::DynamoTable;
use crate::delivery::{AttemptRecord, AttemptStatus};
use crate::error::StoreError;
use crate::ids::SubscriptionId;
use crate::ports::{AttemptFilter, AttemptLog, Page, PageRequest};

fn pk(subscription_id: &SubscriptionId) -> String {
    format!("ATTEMPTS#{subscription_id}")
}

/// The status as the API spells it (`succeeded`, `failed`, `skipped`).
fn status_str(status: AttemptStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[async_trait]
impl AttemptLog for DynamoTable {
    async fn record(
        &self,
        attempt: &AttemptRecord,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut item = key(pk(&attempt.subscription_id), attempt.id.to_string());
        item.insert("doc".into(), to_doc(attempt)?);
        item.insert("status".into(), s(status_str(attempt.status)));
        item.insert("expires_at".into(), n(secs(expires_at)));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| store_error("PutItem", e))?;
        Ok(())
    }

    async fn list(
        &self,
        subscription_id: &SubscriptionId,
        filter: AttemptFilter,
        page: &PageRequest,
    ) -> Result<Page<AttemptRecord>, StoreError> {
        let partition = pk(subscription_id);
        let start = page
            .cursor
            .as_deref()
            .map(|c| decode_cursor(c, &[("pk", Some(&partition)), ("sk", None)]))
            .transpose()?;
        let limit = page.limit.max(1) as usize;
        let mut spec = QuerySpec::partition(partition.clone());
        spec.forward = false;
        if let Some(status) = filter.status {
            spec.filter = Some("#st = :st");
            spec.names.push(("#st", "status"));
            spec.values.push((":st", s(status_str(status))));
        }
        let now = Utc::now();
        let live = move |item: &Item| !is_expired(item, now);
        let items = self
            .query_collect(
                &spec,
                Collect {
                    start,
                    want: Some(limit + 1),
                    keep: &live,
                },
            )
            .await?;
        paginate(items, limit, &["pk", "sk"], doc)
    }
}
