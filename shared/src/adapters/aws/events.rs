//! Outbound events kept for replay: `EVENTS#<orgId>`/`<evt_id>` (ULID: time-ordered) with `doc` and
//! `expires_at`. A time window (on `createdAt`) is a `sk BETWEEN` range over the ids' millisecond
//! timestamps, widened by how far an id's time may stray from its `createdAt`, refined on
//! `createdAt`.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::common::{
    check_cursor_in_range, doc, expiring_doc, is_expired, s, Collect, Item, QuerySpec,
};
use super::DynamoTable;
use crate::error::StoreError;
use crate::events::OutboundEvent;
use crate::ids::{ulid_range, EventId};
use crate::ports::{
    EventFilter, EventLog, EventQuery, Page, PageRequest, EVENT_ID_MAY_FOLLOW_CREATION,
    EVENT_ID_MAY_PRECEDE_CREATION,
};

fn pk(org_id: &str) -> String {
    format!("EVENTS#{org_id}")
}

/// The smallest and largest event id whose timestamp falls in `[since, until)` (millisecond
/// resolution; the exact bounds are applied on `createdAt`).
fn id_range(since: DateTime<Utc>, until: DateTime<Utc>) -> (String, String) {
    ulid_range(EventId::PREFIX, since, until)
}

/// The attribute that holds an event's or an attempt's type (its wire name), so that a listing of
/// one type filters in DynamoDB (a `FilterExpression`). Items written before it existed have only
/// the document: the filter lets them through and the adapter checks the document.
pub(super) const EVENT_TYPE: &str = "event_type";

/// The `FilterExpression` of a listing of one type (`#et`, `:et`): the items of that type, and those
/// written before the attribute existed (checked on the document).
pub(super) const OF_TYPE: &str = "(attribute_not_exists(#et) OR #et = :et)";

/// An item's size as DynamoDB counts it against its limit: attribute names plus values (strings
/// and binaries by their bytes, a number by its digits, nested values with their names).
fn item_bytes(item: &Item) -> usize {
    fn value_bytes(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
            AttributeValue::B(b) => b.as_ref().len(),
            AttributeValue::Ss(v) | AttributeValue::Ns(v) => v.iter().map(String::len).sum(),
            AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value_bytes(v)).sum::<usize>(),
            AttributeValue::M(m) => {
                3 + m
                    .iter()
                    .map(|(k, v)| 1 + k.len() + value_bytes(v))
                    .sum::<usize>()
            }
            _ => 1,
        }
    }
    item.iter().map(|(k, v)| k.len() + value_bytes(v)).sum()
}

#[async_trait]
impl EventLog for DynamoTable {
    async fn append(
        &self,
        event: &OutboundEvent,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sk = event.id.to_string();
        let mut item = expiring_doc(pk(&event.org_id), sk, event, expires_at)?;
        item.insert(EVENT_TYPE.into(), s(event.event_type.as_str()));
        // Refused here, as `TooLarge`, rather than as DynamoDB's ValidationException (which would
        // read as the store being unavailable, and be retried).
        StoreError::check_size(item_bytes(&item))?;
        self.put(item).await
    }

    async fn list(
        &self,
        org_id: &str,
        query: EventQuery,
    ) -> Result<Vec<OutboundEvent>, StoreError> {
        if query.is_empty() {
            return Ok(vec![]);
        }
        // The window is on `createdAt`; the key range is widened by how far an id's timestamp can
        // stray from it, and `createdAt` is then applied exactly.
        let (lo, hi) = id_range(
            query.since - EVENT_ID_MAY_PRECEDE_CREATION,
            query.until + EVENT_ID_MAY_FOLLOW_CREATION,
        );
        let spec = QuerySpec {
            index: None,
            key_condition: "pk = :pk AND sk BETWEEN :lo AND :hi",
            names: vec![],
            values: vec![(":pk", s(pk(org_id))), (":lo", s(lo)), (":hi", s(hi))],
            filter: None,
            forward: true,
        };
        let now = Utc::now();
        let keep = move |item: &Item| {
            !is_expired(item, now) && doc::<OutboundEvent>(item).is_ok_and(|e| query.covers(&e))
        };
        let items = self
            .query_collect(
                &spec,
                Collect {
                    start: None,
                    want: Some(query.limit as usize),
                    keep: &keep,
                },
            )
            .await?;
        items.iter().take(query.limit as usize).map(doc).collect()
    }

    async fn get(&self, org_id: &str, id: &EventId) -> Result<Option<OutboundEvent>, StoreError> {
        self.get_live(pk(org_id), &id.to_string(), Utc::now())
            .await?
            .map(|item| doc(&item))
            .transpose()
    }

    async fn page(
        &self,
        org_id: &str,
        filter: EventFilter,
        page: &PageRequest,
    ) -> Result<Page<OutboundEvent>, StoreError> {
        let partition = pk(org_id);
        let mut spec = QuerySpec::partition(partition.clone());
        spec.forward = false;
        let cursor_key = [("pk", Some(partition.as_str())), ("sk", None)];
        if let Some((lo, hi)) = filter.id_range() {
            spec.key_condition = "pk = :pk AND sk BETWEEN :lo AND :hi";
            check_cursor_in_range(page, &cursor_key, &lo, &hi)?;
            spec.values.push((":lo", s(lo)));
            spec.values.push((":hi", s(hi)));
        }
        if let Some(t) = filter.event_type {
            spec.filter = Some(OF_TYPE);
            spec.names.push(("#et", EVENT_TYPE));
            spec.values.push((":et", s(t.as_str())));
        }
        let now = Utc::now();
        let keep = move |item: &Item| {
            !is_expired(item, now) && doc::<OutboundEvent>(item).is_ok_and(|e| filter.matches(&e))
        };
        self.query_page(&spec, page, &cursor_key, &keep).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_covers_exactly_the_window() {
        let since = DateTime::from_timestamp_millis(1_000).unwrap();
        let until = DateTime::from_timestamp_millis(2_000).unwrap();
        let (lo, hi) = id_range(since, until);
        let inside = [EventId::new_at(1_000), EventId::new_at(1_999)];
        let outside = [EventId::new_at(999), EventId::new_at(2_000)];
        for id in inside {
            let id = id.to_string();
            assert!(lo <= id && id <= hi, "{id} in [{lo}, {hi}]");
        }
        for id in outside {
            let id = id.to_string();
            assert!(id < lo || id > hi, "{id} outside [{lo}, {hi}]");
        }
    }
}
