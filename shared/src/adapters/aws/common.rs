//! Helpers shared by the DynamoDB adapters: attribute access, error mapping, cursors, queries.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::DynamoTable;
use crate::error::StoreError;
use crate::retry::{Backoff, Jitter};

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) const PK: &str = "pk";
pub(crate) const SK: &str = "sk";
pub(crate) const DOC: &str = "doc";
pub(crate) const EXPIRES_AT: &str = "expires_at";

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

/// Unix seconds (what the TTL attribute holds).
pub(crate) fn secs(at: DateTime<Utc>) -> i64 {
    at.timestamp()
}

/// Unix milliseconds (lease ends, where a second is too coarse).
pub(crate) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        Some(_) => Err(StoreError::Corrupt(format!(
            "attribute `{name}` is not a string"
        ))),
        None => Err(StoreError::Corrupt(format!(
            "attribute `{name}` is missing"
        ))),
    }
}

pub(crate) fn get_n<T: FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| {
            StoreError::Corrupt(format!("attribute `{name}` is not a valid number: {v}"))
        }),
        Some(_) => Err(StoreError::Corrupt(format!(
            "attribute `{name}` is not a number"
        ))),
        None => Err(StoreError::Corrupt(format!(
            "attribute `{name}` is missing"
        ))),
    }
}

/// Has the item's `expires_at` passed at `now`? Items without one never expire.
pub(crate) fn is_expired(item: &Item, now: DateTime<Utc>) -> bool {
    match item.get(EXPIRES_AT) {
        Some(AttributeValue::N(v)) => v.parse::<i64>().is_ok_and(|exp| exp <= secs(now)),
        _ => false,
    }
}

/// The JSON document in `doc`.
pub(crate) fn doc<T: DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    let raw = get_s(item, DOC)?;
    serde_json::from_str(raw)
        .map_err(|e| StoreError::Corrupt(format!("`doc` does not decode: {e}")))
}

pub(crate) fn to_doc<T: Serialize>(value: &T) -> Result<AttributeValue, StoreError> {
    serde_json::to_string(value)
        .map(s)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode document: {e}")))
}

/// The DynamoDB error code of a failed call, if the service answered.
pub(crate) fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}

pub(crate) fn is_conditional_failure<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    error_code(err) == Some("ConditionalCheckFailedException")
}

/// Maps an SDK error that is not an expected condition failure.
pub(crate) fn store_error<E, R>(op: &str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match error_code(&err) {
        // A plain write raced a transaction on the same item: the caller re-reads and retries.
        Some("TransactionConflictException") => StoreError::Conflict(format!(
            "DynamoDB {op}: item is being changed by a transaction"
        )),
        Some("ConditionalCheckFailedException") => {
            StoreError::Conflict(format!("DynamoDB {op}: condition failed"))
        }
        _ => StoreError::Unavailable(format!("DynamoDB {op}: {}", DisplayErrorContext(&err))),
    }
}

pub(crate) fn build_error(err: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Unavailable(format!("building a DynamoDB request: {err}"))
}

/// An opaque cursor: base64url JSON of the key attributes (all strings) of the last item returned.
pub(crate) fn encode_cursor(item: &Item, key_attrs: &[&str]) -> Result<String, StoreError> {
    let mut map = BTreeMap::new();
    for name in key_attrs {
        map.insert(*name, get_s(item, name)?);
    }
    let json = serde_json::to_vec(&map).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

/// Decodes a cursor into an `ExclusiveStartKey`. `expected` lists every key attribute with, where
/// it is known, the value it must have (the queried partition), so that a cursor from another
/// query is refused rather than passed to DynamoDB.
pub(crate) fn decode_cursor(
    cursor: &str,
    expected: &[(&str, Option<&str>)],
) -> Result<Item, StoreError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::BadCursor)?;
    let map: BTreeMap<String, String> =
        serde_json::from_slice(&bytes).map_err(|_| StoreError::BadCursor)?;
    if map.len() != expected.len() {
        return Err(StoreError::BadCursor);
    }
    let mut out = Item::new();
    for (name, want) in expected {
        let value = map.get(*name).ok_or(StoreError::BadCursor)?;
        if want.is_some_and(|w| w != value) || value.is_empty() {
            return Err(StoreError::BadCursor);
        }
        out.insert((*name).to_owned(), s(value.clone()));
    }
    Ok(out)
}

/// A Query, described once and run page by page.
pub(crate) struct QuerySpec<'a> {
    pub index: Option<&'a str>,
    pub key_condition: &'a str,
    pub names: Vec<(&'a str, &'a str)>,
    pub values: Vec<(&'a str, AttributeValue)>,
    pub filter: Option<&'a str>,
    pub forward: bool,
}

impl<'a> QuerySpec<'a> {
    /// `pk = :pk` on the table, oldest (smallest `sk`) first.
    pub fn partition(pk: String) -> Self {
        Self {
            index: None,
            key_condition: "pk = :pk",
            names: vec![],
            values: vec![(":pk", s(pk))],
            filter: None,
            forward: true,
        }
    }
}

/// Which items to collect and how many.
pub(crate) struct Collect<'a> {
    pub start: Option<Item>,
    /// Stop once this many items are collected (`None`: read every page).
    pub want: Option<usize>,
    /// A client-side filter (e.g. expiry), applied after any `FilterExpression`.
    pub keep: &'a (dyn Fn(&Item) -> bool + Sync),
}

impl DynamoTable {
    /// Runs `spec` from `collect.start`, page after page, until `collect.want` kept items are
    /// collected or the partition is exhausted. May return more than `want` (callers truncate).
    pub(crate) async fn query_collect(
        &self,
        spec: &QuerySpec<'_>,
        collect: Collect<'_>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start = collect.start;
        loop {
            let names: HashMap<String, String> = spec
                .names
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            let values: HashMap<String, AttributeValue> = spec
                .values
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect();
            // Without a filter, ask for exactly what is still missing (+0: callers already asked for
            // one more than they return); with one, read full pages.
            let limit = match (collect.want, spec.filter) {
                (Some(w), None) => {
                    Some(i32::try_from(w.saturating_sub(out.len()).max(1)).unwrap_or(i32::MAX))
                }
                _ => None,
            };
            let res = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(spec.index.map(str::to_owned))
                .key_condition_expression(spec.key_condition)
                .set_expression_attribute_names((!names.is_empty()).then_some(names))
                .set_expression_attribute_values(Some(values))
                .set_filter_expression(spec.filter.map(str::to_owned))
                .scan_index_forward(spec.forward)
                // Strongly consistent on the table; GSIs only offer eventual consistency.
                .set_consistent_read(spec.index.is_none().then_some(true))
                .set_exclusive_start_key(start.take())
                .set_limit(limit)
                .send()
                .await
                .map_err(|e| store_error("Query", e))?;
            out.extend(res.items().iter().filter(|i| (collect.keep)(i)).cloned());
            if collect.want.is_some_and(|w| out.len() >= w) {
                return Ok(out);
            }
            match res.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(out),
            }
        }
    }

    /// A strongly consistent GetItem.
    pub(crate) async fn get_item(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let res = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        Ok(res.item().filter(|i| !i.is_empty()).cloned())
    }
}

/// Short, growing, jittered pauses between retries of refused work (transaction conflicts,
/// unprocessed batch items): 10 ms doubling to 640 ms, each spread over up to twice itself.
const REFUSED_WORK: Backoff = Backoff::new(Duration::from_millis(10))
    .capped(Duration::from_millis(640))
    .jittered(Jitter::UpToDouble);

pub(crate) async fn backoff(attempt: u32) {
    REFUSED_WORK.sleep(attempt).await;
}

/// Results of a page query: at most `limit` items and, if more follow, a cursor after the last.
pub(crate) fn paginate<T>(
    mut items: Vec<Item>,
    limit: usize,
    key_attrs: &[&str],
    decode: impl Fn(&Item) -> Result<T, StoreError>,
) -> Result<crate::ports::Page<T>, StoreError> {
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items
            .last()
            .map(|last| encode_cursor(last, key_attrs))
            .transpose()?
    } else {
        None
    };
    let items = items.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
    Ok(crate::ports::Page { items, next_cursor })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_refuses_other_partitions() {
        let item: Item = HashMap::from([
            ("pk".to_owned(), s("SUB#wh_1")),
            ("sk".to_owned(), s("SUB")),
            ("gsi1pk".to_owned(), s("OWNER#u")),
            ("gsi1sk".to_owned(), s("wh_1")),
            ("doc".to_owned(), s("{}")),
        ]);
        let attrs = ["pk", "sk", "gsi1pk", "gsi1sk"];
        let c = encode_cursor(&item, &attrs).unwrap();
        let expected = [
            ("pk", None),
            ("sk", Some("SUB")),
            ("gsi1pk", Some("OWNER#u")),
            ("gsi1sk", None),
        ];
        let key = decode_cursor(&c, &expected).unwrap();
        assert_eq!(key.len(), 4);
        assert_eq!(key["gsi1sk"], s("wh_1"));
        let other = [
            ("pk", None),
            ("sk", Some("SUB")),
            ("gsi1pk", Some("OWNER#v")),
            ("gsi1sk", None),
        ];
        assert_eq!(decode_cursor(&c, &other), Err(StoreError::BadCursor));
        assert_eq!(decode_cursor("%%%", &expected), Err(StoreError::BadCursor));
        assert_eq!(
            decode_cursor(&URL_SAFE_NO_PAD.encode("[1]"), &expected),
            Err(StoreError::BadCursor)
        );
    }

    #[test]
    fn expiry_is_checked_in_seconds() {
        let now = DateTime::from_timestamp(1_000, 0).unwrap();
        let item: Item = HashMap::from([(EXPIRES_AT.to_owned(), n(1_000))]);
        assert!(is_expired(&item, now));
        let item: Item = HashMap::from([(EXPIRES_AT.to_owned(), n(1_001))]);
        assert!(!is_expired(&item, now));
        assert!(!is_expired(&Item::new(), now));
    }
}
