//! The delivery attempt log: `ATTEMPTS#<wh_id>`/`<att_id>` (ULID: time-ordered) with `doc`,
//! `status` and `expires_at`. Listed newest first (`ScanIndexForward = false`), optionally
//! filtered on `status` (a `FilterExpression`), a time window (an `sk` range: the ids carry the
//! attempt's time) and the event type (on the document).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::common::{check_cursor_in_range, doc, expiring_doc, is_expired, s, Item, QuerySpec};
use super::events::{last_id_instant, ulid_range};
use super::DynamoTable;
use crate::delivery::{AttemptRecord, AttemptStatus};
use crate::error::StoreError;
use crate::ids::{AttemptId, SubscriptionId};
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
        let cursor_key = [("pk", Some(partition.as_str())), ("sk", None)];
        if let Some(status) = query.status {
            spec.filter = Some("#st = :st");
            spec.names.push(("#st", "status"));
            spec.values.push((":st", s(status_str(status))));
        }
        if query.since.is_some() || query.until.is_some() {
            // Attempt ids carry the attempt's time (`at`, in ms): the window is a key range.
            let since = query.since.unwrap_or(DateTime::UNIX_EPOCH);
            let until = query.until.unwrap_or_else(last_id_instant);
            let (lo, hi) = ulid_range(AttemptId::PREFIX, since, until);
            spec.key_condition = "pk = :pk AND sk BETWEEN :lo AND :hi";
            check_cursor_in_range(page, &cursor_key, &lo, &hi)?;
            spec.values.push((":lo", s(lo)));
            spec.values.push((":hi", s(hi)));
        }
        let now = Utc::now();
        // The event type is only in the document (older items have no other attribute for it),
        // so it is checked here, with the exact time bounds.
        let needs_doc =
            query.event_type.is_some() || query.since.is_some() || query.until.is_some();
        let keep = move |item: &Item| {
            !is_expired(item, now)
                && (!needs_doc || doc::<AttemptRecord>(item).is_ok_and(|a| query.matches(&a)))
        };
        self.query_page(&spec, page, &cursor_key, &keep).await
    }

    async fn get(
        &self,
        subscription_id: &SubscriptionId,
        id: &AttemptId,
    ) -> Result<Option<AttemptRecord>, StoreError> {
        self.get_live(pk(subscription_id), &id.to_string(), Utc::now())
            .await?
            .map(|item| doc(&item))
            .transpose()
    }
}
