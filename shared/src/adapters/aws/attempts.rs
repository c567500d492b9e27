//! The delivery attempt log: `ATTEMPTS#<wh_id>`/`<att_id>` (ULID: time-ordered) with `doc`,
//! `status`, `event_type` and `expires_at`. Listed newest first (`ScanIndexForward = false`),
//! optionally filtered on `status` and the event type (a `FilterExpression`; items written before
//! `event_type` existed are checked on the document) and a time window (an `sk` range: the ids
//! carry the attempt's time).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::common::{check_cursor_in_range, doc, expiring_doc, is_expired, s, Item, QuerySpec};
use super::events::{EVENT_TYPE, OF_TYPE};
use super::DynamoTable;
use crate::delivery::{AttemptRecord, AttemptStatus};
use crate::error::StoreError;
use crate::ids::{AttemptId, SubscriptionId};
use crate::ports::{AttemptLog, AttemptQuery, Page, PageRequest};

fn pk(subscription_id: &SubscriptionId) -> String {
    format!("ATTEMPTS#{subscription_id}")
}

/// The key of attempt `id`'s record: what an attempt claim names (aws/dedupe.rs).
pub(super) fn key_of(subscription_id: &SubscriptionId, id: &AttemptId) -> (String, String) {
    (pk(subscription_id), id.to_string())
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
        item.insert(EVENT_TYPE.into(), s(attempt.event_type.as_str()));
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
        let filter = [
            query.status.map(|_| "#st = :st"),
            query.event_type.map(|_| OF_TYPE),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" AND ");
        spec.filter = (!filter.is_empty()).then_some(filter.as_str());
        if let Some(status) = query.status {
            spec.names.push(("#st", "status"));
            spec.values.push((":st", s(status_str(status))));
        }
        if let Some(t) = query.event_type {
            spec.names.push(("#et", EVENT_TYPE));
            spec.values.push((":et", s(t.as_str())));
        }
        if let Some((lo, hi)) = query.id_range() {
            spec.key_condition = "pk = :pk AND sk BETWEEN :lo AND :hi";
            check_cursor_in_range(page, &cursor_key, &lo, &hi)?;
            spec.values.push((":lo", s(lo)));
            spec.values.push((":hi", s(hi)));
        }
        let now = Utc::now();
        // The event type again on the document (items older than `event_type` pass the filter),
        // and the exact time bounds.
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
