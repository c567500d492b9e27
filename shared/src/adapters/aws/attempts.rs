//! The delivery attempt log: `ATTEMPTS#<wh_id>`/`<att_id>` (ULID: time-ordered) with `doc`,
//! `status`, `event_type` and `expires_at`. The `doc` leaves out what the key and those attributes
//! hold (`id`, `subscriptionId`, `status`, `eventType`, and `deliveryId` when it is the usual
//! `msg_<event>_<webhook>`), and a sent header's value that the record itself gives (`webhook-id`,
//! `webhook-timestamp`, `x-servicehook-event`, `-timestamp`, `-uuid`) is stored as `null`, so that
//! a telephony attempt's item stays well within one write unit; a read puts them back (documents
//! written whole before still read). Listed newest first (`ScanIndexForward = false`; oldest
//! first on request, for the stats' catch-up),
//! optionally filtered on `status` and the event type (a `FilterExpression`; items written before
//! `event_type` existed are checked on the document) and a time window (an `sk` range: the ids
//! carry the attempt's time).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::common::{check_cursor_in_range, expiring_doc, get_s, is_expired, s, Item, QuerySpec};
use super::events::{EVENT_TYPE, OF_TYPE};
use super::DynamoTable;
use crate::delivery::{AttemptRecord, AttemptStatus};
use crate::error::StoreError;
use crate::ids::{delivery_id, AttemptId, EventId, SubscriptionId};
use crate::ports::{AttemptLog, AttemptQuery, Page, PageRequest};

fn pk(subscription_id: &SubscriptionId) -> String {
    format!("ATTEMPTS#{subscription_id}")
}

/// The key of attempt `id`'s record: what an attempt claim names (aws/dedupe.rs).
pub(super) fn key_of(subscription_id: &SubscriptionId, id: &AttemptId) -> (String, String) {
    (pk(subscription_id), id.to_string())
}

/// The `doc` fields the item holds elsewhere ([`attempt_of`] restores them).
const KEPT_ELSEWHERE: [&str; 4] = ["id", "subscriptionId", "status", "eventType"];

/// The value a header sent on `attempt` has when it is the usual one, computed from the record.
fn derived_header(name: &str, attempt: &AttemptRecord) -> Option<String> {
    Some(match name {
        "webhook-id" => attempt.delivery_id.clone(),
        "webhook-timestamp" => attempt.at.timestamp().to_string(),
        "x-servicehook-event" => attempt.event_type.as_str().to_owned(),
        "x-servicehook-timestamp" => attempt
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "x-servicehook-uuid" => attempt.subscription_id.to_string(),
        _ => return None,
    })
}

const HEADERS: &str = "requestHeaders";

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("attempt `doc` does not decode: {e}"))
}

/// The item of `attempt`: its `doc` without what the key and the attributes hold.
fn attempt_item(attempt: &AttemptRecord, expires_at: DateTime<Utc>) -> Result<Item, StoreError> {
    let mut value = serde_json::to_value(attempt).map_err(corrupt)?;
    if let Some(fields) = value.as_object_mut() {
        for name in KEPT_ELSEWHERE {
            fields.remove(name);
        }
        if attempt.delivery_id == delivery_id(&attempt.event_id, &attempt.subscription_id) {
            fields.remove("deliveryId");
        }
        if !attempt.request_headers.is_empty() {
            let headers = attempt.request_headers.iter().map(|(name, value)| {
                let usual = derived_header(name, attempt).is_some_and(|d| &d == value);
                serde_json::json!([name, (!usual).then_some(value)])
            });
            fields.insert(HEADERS.into(), headers.collect());
        }
    }
    let sk = attempt.id.to_string();
    let mut item = expiring_doc(pk(&attempt.subscription_id), sk, &value, expires_at)?;
    item.insert("status".into(), s(status_str(attempt.status)));
    item.insert(EVENT_TYPE.into(), s(attempt.event_type.as_str()));
    Ok(item)
}

/// The attempt an item holds, its `doc` completed from the key and the attributes.
fn attempt_of(item: &Item) -> Result<AttemptRecord, StoreError> {
    let mut value: serde_json::Value =
        serde_json::from_str(get_s(item, "doc")?).map_err(corrupt)?;
    let fields = value
        .as_object_mut()
        .ok_or_else(|| corrupt("not an object"))?;
    let from_item = |name: &str| -> Result<String, StoreError> {
        Ok(match name {
            "id" => get_s(item, "sk")?.to_owned(),
            "subscriptionId" => {
                let pk = get_s(item, "pk")?;
                pk.strip_prefix("ATTEMPTS#").unwrap_or(pk).to_owned()
            }
            "status" => get_s(item, "status")?.to_owned(),
            _ => get_s(item, EVENT_TYPE)?.to_owned(),
        })
    };
    for name in KEPT_ELSEWHERE {
        if !fields.contains_key(name) {
            fields.insert(name.into(), from_item(name)?.into());
        }
    }
    if !fields.contains_key("deliveryId") {
        let id = |name: &str| fields.get(name).and_then(|v| v.as_str()).unwrap_or("");
        let event: EventId = id("eventId").parse().map_err(corrupt)?;
        let sub: SubscriptionId = id("subscriptionId").parse().map_err(corrupt)?;
        fields.insert("deliveryId".into(), delivery_id(&event, &sub).into());
    }
    // The headers last: a value left out (`null`) comes from the rest of the record.
    let headers: Vec<(String, Option<String>)> = match fields.remove(HEADERS) {
        Some(h) => serde_json::from_value(h).map_err(corrupt)?,
        None => Vec::new(),
    };
    let mut attempt: AttemptRecord = serde_json::from_value(value).map_err(corrupt)?;
    attempt.request_headers = headers
        .into_iter()
        .map(|(name, value)| {
            let value = value
                .or_else(|| derived_header(&name, &attempt))
                .ok_or_else(|| corrupt(format!("header {name} without a value")))?;
            Ok((name, value))
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(attempt)
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
        self.put(attempt_item(attempt, expires_at)?).await
    }

    async fn list(
        &self,
        query: AttemptQuery,
        page: &PageRequest,
    ) -> Result<Page<AttemptRecord>, StoreError> {
        let partition = pk(&query.subscription_id);
        let mut spec = QuerySpec::partition(partition.clone());
        spec.forward = query.oldest_first;
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
                && (!needs_doc || attempt_of(item).is_ok_and(|a| query.matches(&a)))
        };
        self.query_page_with(&spec, page, &cursor_key, &keep, attempt_of)
            .await
    }

    async fn get(
        &self,
        subscription_id: &SubscriptionId,
        id: &AttemptId,
    ) -> Result<Option<AttemptRecord>, StoreError> {
        self.get_live(pk(subscription_id), &id.to_string(), Utc::now())
            .await?
            .map(|item| attempt_of(&item))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::ErrorClass;
    use crate::events::EventType;

    fn telephony_attempt() -> AttemptRecord {
        let (event_id, sub) = (EventId::new_at(1), SubscriptionId::new_at(2));
        AttemptRecord {
            id: AttemptId::new_at(3),
            delivery_id: delivery_id(&event_id, &sub),
            event_id,
            subscription_id: sub,
            event_type: EventType::TelephonyCreated,
            attempt: 2,
            at: Utc::now(),
            duration_ms: 41,
            status: AttemptStatus::Failed,
            status_code: Some(503),
            error_class: Some(ErrorClass::HttpStatus),
            error: Some("HTTP 503".into()),
            response_snippet: Some("busy".into()),
            request_headers: Vec::new(),
            request_body: None,
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            request_id: Some("req-1".into()),
        }
    }

    /// The `doc` leaves out what the key and the attributes hold, and the usual header values;
    /// a read restores them.
    #[test]
    fn the_doc_holds_only_what_the_item_does_not_and_reads_back_whole() {
        let mut a = telephony_attempt();
        let at = a.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        a.request_headers = [
            ("content-type", "application/json".to_owned()),
            ("webhook-id", a.delivery_id.clone()),
            ("webhook-timestamp", a.at.timestamp().to_string()),
            ("webhook-signature", "v1,<redacted>".to_owned()),
            ("x-servicehook-event", "telephony:created".to_owned()),
            ("x-servicehook-timestamp", at),
            ("x-servicehook-uuid", a.subscription_id.to_string()),
            // Not the usual value (another event type): kept as sent.
            ("x-servicehook-event", "telephony:updated".to_owned()),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v))
        .collect();
        let item = attempt_item(&a, Utc::now()).unwrap();
        let stored: serde_json::Value = serde_json::from_str(get_s(&item, "doc").unwrap()).unwrap();
        for name in KEPT_ELSEWHERE.iter().chain(&["deliveryId"]) {
            assert!(stored.get(name).is_none(), "{name} in {stored}");
        }
        let kept: Vec<Option<&str>> = stored["requestHeaders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h[1].as_str())
            .collect();
        assert_eq!(
            kept,
            [
                Some("application/json"),
                None,
                None,
                Some("v1,<redacted>"),
                None,
                None,
                None,
                Some("telephony:updated")
            ]
        );
        assert_eq!(attempt_of(&item).unwrap(), a);
        // Another delivery id than the usual one is kept as it is.
        let odd = AttemptRecord {
            delivery_id: "msg_custom".into(),
            ..a.clone()
        };
        assert_eq!(
            attempt_of(&attempt_item(&odd, Utc::now()).unwrap()).unwrap(),
            odd
        );
    }

    /// An item written before (the whole record in `doc`) still reads.
    #[test]
    fn an_item_with_the_whole_doc_still_reads() {
        let a = telephony_attempt();
        let mut item =
            expiring_doc(pk(&a.subscription_id), a.id.to_string(), &a, Utc::now()).unwrap();
        item.insert("status".into(), s(status_str(a.status)));
        assert_eq!(attempt_of(&item).unwrap(), a);
    }
}
