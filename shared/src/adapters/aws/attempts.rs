//! The delivery attempt log: `ATTEMPTS#<wh_id>`/`<att_id>` (ULID: time-ordered) with `doc`,
//! `status` and `expires_at`. Listed newest first (`ScanIndexForward = false`), optionally
//! filtered on `status`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::common::{expiring_doc, is_expired, s, Item, QuerySpec};
use super::DynamoTable;
use crate::delivery::{AttemptRecord, AttemptStatus};
use crate::error::StoreError;
use crate::ids::SubscriptionId;
use crate::ports::{AttemptLog, AttemptQuery, Page, PageRequest};

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
        let sk = attempt.id.to_string();
        let mut item = expiring_doc(pk(&attempt.subscription_id), sk, attempt, expires_at)?;
        item.insert("status".into(), s(status_str(attempt.status)));
        self.put(item).await
    }

    async fn list(
        &self,
        query: AttemptQuery,
        page: &PageRequest,
    ) -> Result<Page<AttemptRecord>, StoreError> {
        let partition = pk(&query.subscription_id);
        let mut spec = QuerySpec::partition(partition.clone());
        spec.forward = false;
        if let Some(status) = query.status {
            spec.filter = Some("#st = :st");
            spec.names.push(("#st", "status"));
            spec.values.push((":st", s(status_str(status))));
        }
        let now = Utc::now();
        let live = move |item: &Item| !is_expired(item, now);
        let cursor_key = [("pk", Some(partition.as_str())), ("sk", None)];
        self.query_page(&spec, page, &cursor_key, &live).await
    }
}
