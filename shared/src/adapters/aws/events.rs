//! Outbound events kept for replay: `EVENTS#<orgId>`/`<evt_id>` (ULID: time-ordered) with `doc` and
//! `expires_at`. A time window (on `createdAt`) is a `sk BETWEEN` range over the ids' millisecond
//! timestamps, widened by how far an id's time may stray from its `createdAt`, refined on
//! `createdAt`.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use ulid::Ulid;

use super::common::{
    check_cursor_in_range, doc, expiring_doc, is_expired, s, Collect, Item, QuerySpec,
};
use super::DynamoTable;
use crate::error::StoreError;
use crate::events::OutboundEvent;
use crate::ids::EventId;
use crate::ports::{EventFilter, EventLog, EventQuery, Page, PageRequest};

/// How much earlier than its `createdAt` an event id's timestamp may be: ingest stamps ids with
/// Webex's `eventTimestamp` (so a retried webhook keeps its id), which precedes the ingest time by
/// Webex's delivery delay, retries included.
const ID_MAY_PRECEDE_CREATION: chrono::Duration = chrono::Duration::hours(24);
/// And how much later (clock skew between Webex and us).
const ID_MAY_FOLLOW_CREATION: chrono::Duration = chrono::Duration::minutes(5);

fn pk(org_id: &str) -> String {
    format!("EVENTS#{org_id}")
}

/// The smallest and largest event id whose timestamp falls in `[since, until)` (millisecond
/// resolution; the exact bounds are applied on `createdAt`).
fn id_range(since: DateTime<Utc>, until: DateTime<Utc>) -> (String, String) {
    ulid_range(EventId::PREFIX, since, until)
}

/// The smallest and largest `<prefix><ULID>` id whose timestamp falls in `[since, until)`
/// (millisecond resolution): a `sk BETWEEN` range over time-ordered ids (events, attempts).
pub(super) fn ulid_range(
    prefix: &str,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> (String, String) {
    let lo_ms = u64::try_from(since.timestamp_millis()).unwrap_or(0);
    // The last millisecond that still has instants before `until`.
    let hi_ms = (until - chrono::Duration::nanoseconds(1)).timestamp_millis();
    let hi_ms = u64::try_from(hi_ms).unwrap_or(0).min((1 << 48) - 1);
    let lo = Ulid::from_parts(lo_ms, 0);
    let hi = Ulid::from_parts(hi_ms, u128::MAX);
    (format!("{prefix}{lo}"), format!("{prefix}{hi}"))
}

/// The latest instant an id can stand for (a ULID's timestamp has 48 bits of milliseconds).
pub(super) fn last_id_instant() -> DateTime<Utc> {
    DateTime::from_timestamp_millis((1 << 48) - 1).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

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
        let item = expiring_doc(pk(&event.org_id), sk, event, expires_at)?;
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
            query.since - ID_MAY_PRECEDE_CREATION,
            query.until + ID_MAY_FOLLOW_CREATION,
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
        if filter.since.is_some() || filter.until.is_some() {
            // As `list`: the key range widened by how far an id may stray from `createdAt`.
            let since = filter
                .since
                .and_then(|t| t.checked_sub_signed(ID_MAY_PRECEDE_CREATION))
                .unwrap_or(DateTime::UNIX_EPOCH);
            let until = filter
                .until
                .and_then(|t| t.checked_add_signed(ID_MAY_FOLLOW_CREATION))
                .unwrap_or_else(last_id_instant);
            let (lo, hi) = id_range(since, until);
            spec.key_condition = "pk = :pk AND sk BETWEEN :lo AND :hi";
            check_cursor_in_range(page, &cursor_key, &lo, &hi)?;
            spec.values.push((":lo", s(lo)));
            spec.values.push((":hi", s(hi)));
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
