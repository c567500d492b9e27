//! Helpers shared by the DynamoDB adapters: attribute access, error mapping, cursors, queries.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::DynamoTable;
use crate::error::StoreError;
use crate::ports::{Page, PageRequest, PAGE_SCAN_BUDGET};
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

/// A new item that expires: its key and `expires_at` (the table's TTL attribute).
pub(crate) fn expiring_item(
    pk: impl Into<String>,
    sk: impl Into<String>,
    expires_at: DateTime<Utc>,
) -> Item {
    let mut item = key(pk, sk);
    item.insert(EXPIRES_AT.to_owned(), n(secs(expires_at)));
    item
}

/// A new item holding `value` as its JSON `doc`.
pub(crate) fn doc_item<T: Serialize>(
    pk: impl Into<String>,
    sk: impl Into<String>,
    value: &T,
) -> Result<Item, StoreError> {
    let mut item = key(pk, sk);
    item.insert(DOC.to_owned(), to_doc(value)?);
    Ok(item)
}

/// A new expiring item holding `value` as its JSON `doc` (attempts, events, idempotent responses).
pub(crate) fn expiring_doc<T: Serialize>(
    pk: impl Into<String>,
    sk: impl Into<String>,
    value: &T,
    expires_at: DateTime<Utc>,
) -> Result<Item, StoreError> {
    let mut item = doc_item(pk, sk, value)?;
    item.insert(EXPIRES_AT.to_owned(), n(secs(expires_at)));
    Ok(item)
}

/// An item's size as DynamoDB counts it for capacity and its 400 KB limit
/// (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html>):
/// the sum over attributes of the name's UTF-8 length plus the value's size. One write unit
/// covers up to 1024 bytes, one strongly consistent read unit up to 4096 (see [`write_units`],
/// [`read_units`]); the cost model's "≤ 1 KiB per item" checks use this.
pub fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + attribute_size(value))
        .sum()
}

/// One value's size by DynamoDB's rule: strings their UTF-8 bytes, binaries their raw bytes (not
/// the base64 on the wire), numbers ≈ one byte per two significant digits plus one, booleans and
/// null one byte, lists and maps 3 bytes plus one per element plus their elements (map keys
/// counted like attribute names), sets the sum of their members.
pub fn attribute_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(v) => v.len(),
        AttributeValue::N(v) => number_size(v),
        AttributeValue::B(v) => v.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(v) => 3 + v.iter().map(|e| 1 + attribute_size(e)).sum::<usize>(),
        AttributeValue::M(v) => {
            3 + v
                .iter()
                .map(|(k, e)| 1 + k.len() + attribute_size(e))
                .sum::<usize>()
        }
        // A variant newer than this code: count it as nothing rather than guess.
        _ => 0,
    }
}

/// A number's size: leading and trailing zeroes (and sign, point, exponent) do not count.
fn number_size(v: &str) -> usize {
    let mantissa = v.split(['e', 'E']).next().unwrap_or(v);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    significant.div_ceil(2) + 1
}

/// Write units a write of an item of `size` bytes consumes (1 per started KiB, at least 1).
pub fn write_units(size: usize) -> f64 {
    size.div_ceil(1024).max(1) as f64
}

/// Read units a strongly consistent read of `size` bytes consumes (1 per started 4 KiB, at least
/// 1; an eventually consistent read costs half).
pub fn read_units(size: usize, consistent: bool) -> f64 {
    let units = size.div_ceil(4096).max(1) as f64;
    if consistent {
        units
    } else {
        units / 2.0
    }
}

/// Placeholder pairs as the map a request takes; `None` for none (DynamoDB refuses an empty map).
fn placeholders<V: Clone + Into<T>, T>(pairs: &[(&str, V)]) -> Option<HashMap<String, T>> {
    (!pairs.is_empty()).then(|| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone().into()))
            .collect()
    })
}

/// A `ConditionExpression` with the attribute names and values its placeholders stand for.
pub(crate) struct Condition<'a> {
    expression: &'a str,
    names: Vec<(&'a str, &'a str)>,
    values: Vec<(&'a str, AttributeValue)>,
    /// Ask for the item as it stood when the condition fails (`Conditional::Refused`).
    return_old: bool,
}

impl<'a> Condition<'a> {
    pub fn new(expression: &'a str) -> Self {
        Self {
            expression,
            names: vec![],
            values: vec![],
            return_old: false,
        }
    }

    pub fn name(mut self, placeholder: &'a str, attribute: &'a str) -> Self {
        self.names.push((placeholder, attribute));
        self
    }

    pub fn value(mut self, placeholder: &'a str, value: AttributeValue) -> Self {
        self.values.push((placeholder, value));
        self
    }

    pub fn returning_old(mut self) -> Self {
        self.return_old = true;
        self
    }
}

/// How a conditional write ended.
pub(crate) enum Conditional {
    Written,
    /// The condition failed. With the item as it stood, if the condition asked for it and the
    /// server returned it.
    Refused(Option<Item>),
}

impl Conditional {
    pub fn written(&self) -> bool {
        matches!(self, Conditional::Written)
    }
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

/// Refuses a cursor whose sort key lies outside `[lo, hi]` (`StoreError::BadCursor`): a cursor
/// of the same partition but another window (the caller changed `since`/`until` and kept it), which
/// DynamoDB would refuse as a ValidationException, read as the store being unavailable.
pub(crate) fn check_cursor_in_range(
    page: &PageRequest,
    cursor_key: &[(&str, Option<&str>)],
    lo: &str,
    hi: &str,
) -> Result<(), StoreError> {
    let Some(cursor) = page.cursor.as_deref() else {
        return Ok(());
    };
    let start = decode_cursor(cursor, cursor_key)?;
    let sk = get_s(&start, SK)?;
    if sk < lo || sk > hi {
        return Err(StoreError::BadCursor);
    }
    Ok(())
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

    /// `<index>pk = :p` (`key_condition`) on a GSI, in index order.
    pub fn index(index: &'a str, key_condition: &'a str, partition: String) -> Self {
        Self {
            index: Some(index),
            key_condition,
            names: vec![],
            values: vec![(":p", s(partition))],
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
        Ok(self.query_run(spec, collect, None).await?.0)
    }

    /// [`query_collect`](Self::query_collect), reading at most `budget` items (as DynamoDB counts
    /// them: before the `FilterExpression` and `keep`). Stopped by the budget with more to read,
    /// it returns the key to go on from too.
    async fn query_run(
        &self,
        spec: &QuerySpec<'_>,
        collect: Collect<'_>,
        budget: Option<usize>,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let mut out = Vec::new();
        let mut start = collect.start;
        let mut scanned = 0usize;
        // Once anything is filtered out (a FilterExpression, or `keep` refused an item), what is
        // still missing says nothing about how much must be read: full pages then, or a sparse
        // filter would walk the partition in tiny Queries.
        let mut sparse = spec.filter.is_some();
        loop {
            let missing = collect
                .want
                .filter(|_| !sparse)
                .map(|w| w.saturating_sub(out.len()).max(1));
            let left = budget.map(|b| b.saturating_sub(scanned).max(1));
            let limit = match (missing, left) {
                (Some(m), Some(l)) => Some(m.min(l)),
                (m, l) => m.or(l),
            };
            let res = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(spec.index.map(str::to_owned))
                .key_condition_expression(spec.key_condition)
                .set_expression_attribute_names(placeholders(&spec.names))
                .set_expression_attribute_values(placeholders(&spec.values))
                .set_filter_expression(spec.filter.map(str::to_owned))
                .scan_index_forward(spec.forward)
                // Strongly consistent on the table; GSIs only offer eventual consistency.
                .set_consistent_read(spec.index.is_none().then_some(true))
                .set_exclusive_start_key(start.take())
                .set_limit(limit.map(|l| i32::try_from(l).unwrap_or(i32::MAX)))
                .send()
                .await
                .map_err(|e| store_error("Query", e))?;
            let before = out.len();
            out.extend(res.items().iter().filter(|i| (collect.keep)(i)).cloned());
            sparse |= out.len() - before < res.items().len();
            scanned += usize::try_from(res.scanned_count())
                .unwrap_or(0)
                .max(res.items().len());
            if collect.want.is_some_and(|w| out.len() >= w) {
                return Ok((out, None));
            }
            match res.last_evaluated_key() {
                Some(k) if !k.is_empty() => {
                    if budget.is_some_and(|b| scanned >= b) {
                        return Ok((out, Some(k.clone())));
                    }
                    start = Some(k.clone());
                }
                _ => return Ok((out, None)),
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

    /// [`get_item`](Self::get_item), if the item's `expires_at` has not passed at `now`.
    pub(crate) async fn get_live(
        &self,
        pk: String,
        sk: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Item>, StoreError> {
        Ok(self.get_item(pk, sk).await?.filter(|i| !is_expired(i, now)))
    }

    /// One page of the JSON documents of `spec`'s items that `keep` accepts, after `page.cursor`,
    /// reading at most [`PAGE_SCAN_BUDGET`] items: a page stopped by it may be shorter than
    /// asked (even empty) and go on from where the reading stopped. `cursor_key` lists the key
    /// attributes a cursor holds, each with the value it must have where that is known (see
    /// [`decode_cursor`]).
    pub(crate) async fn query_page<T: DeserializeOwned>(
        &self,
        spec: &QuerySpec<'_>,
        page: &PageRequest,
        cursor_key: &[(&str, Option<&str>)],
        keep: &(dyn Fn(&Item) -> bool + Sync),
    ) -> Result<Page<T>, StoreError> {
        self.query_page_with(spec, page, cursor_key, keep, doc)
            .await
    }

    /// [`query_page`](Self::query_page) of items that are not a JSON `doc`: `decode` reads each
    /// kept item (the event log's compressed bodies).
    pub(crate) async fn query_page_with<T>(
        &self,
        spec: &QuerySpec<'_>,
        page: &PageRequest,
        cursor_key: &[(&str, Option<&str>)],
        keep: &(dyn Fn(&Item) -> bool + Sync),
        decode: fn(&Item) -> Result<T, StoreError>,
    ) -> Result<Page<T>, StoreError> {
        let start = page
            .cursor
            .as_deref()
            .map(|c| decode_cursor(c, cursor_key))
            .transpose()?;
        let want = Some(page.size() + 1);
        let (items, stopped_at) = self
            .query_run(spec, Collect { start, want, keep }, Some(PAGE_SCAN_BUDGET))
            .await?;
        let key_attrs: Vec<&str> = cursor_key.iter().map(|(name, _)| *name).collect();
        let page = match stopped_at {
            Some(key) => Page {
                next_cursor: Some(encode_cursor(&key, &key_attrs)?),
                items,
            },
            None => {
                Page::from_lookahead(items, page.size(), |last| encode_cursor(last, &key_attrs))?
            }
        };
        page.try_map(decode)
    }

    /// An unconditional PutItem.
    pub(crate) async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| store_error("PutItem", e))?;
        Ok(())
    }

    /// Unconditional puts of `items` by `BatchWriteItem`, 25 per call ([`BATCH_WRITE_SIZE`]),
    /// the unprocessed ones retried with [`backoff`] a few times before `Unavailable` (`what`
    /// names them in the error). DynamoDB refuses a batch holding one key twice: the caller's to
    /// avoid.
    pub(crate) async fn batch_put(&self, items: Vec<Item>, what: &str) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            let mut requests = Vec::with_capacity(BATCH_WRITE_SIZE);
            for item in items.by_ref().take(BATCH_WRITE_SIZE) {
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(build_error)?;
                requests.push(WriteRequest::builder().put_request(put).build());
            }
            let mut attempt = 0;
            loop {
                let res = self
                    .client
                    .batch_write_item()
                    .request_items(self.table.clone(), requests)
                    .send()
                    .await
                    .map_err(|e| store_error("BatchWriteItem", e))?;
                requests = res
                    .unprocessed_items()
                    .and_then(|u| u.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                if attempt >= UNPROCESSED_RETRIES {
                    return Err(StoreError::Unavailable(format!(
                        "BatchWriteItem: {} {what} items still unprocessed after retries",
                        requests.len()
                    )));
                }
                backoff(attempt).await;
                attempt += 1;
            }
        }
        Ok(())
    }

    /// An optimistic write: `item` with `version`, put if the stored item has `version - 1` or,
    /// for version 1, if `absent` (the item's "not there yet" condition) holds. Otherwise, and
    /// for version 0, `StoreError::Conflict` naming `what`.
    pub(crate) async fn put_next_version(
        &self,
        mut item: Item,
        version: u64,
        absent: Condition<'_>,
        what: &str,
    ) -> Result<(), StoreError> {
        let Some(prev) = version.checked_sub(1) else {
            return Err(StoreError::Conflict(format!(
                "{what}: version 0 cannot be written"
            )));
        };
        item.insert("version".into(), n(version));
        let unchanged = if prev == 0 {
            absent
        } else {
            Condition::new("#v = :prev")
                .name("#v", "version")
                .value(":prev", n(prev))
        };
        match self.put_if(item, unchanged).await? {
            Conditional::Written => Ok(()),
            Conditional::Refused(_) => Err(StoreError::Conflict(format!("{what} changed"))),
        }
    }

    /// A PutItem of `item` if `condition` holds.
    pub(crate) async fn put_if(
        &self,
        item: Item,
        condition: Condition<'_>,
    ) -> Result<Conditional, StoreError> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition.expression)
            .set_expression_attribute_names(placeholders(&condition.names))
            .set_expression_attribute_values(placeholders(&condition.values))
            .set_return_values_on_condition_check_failure(
                condition
                    .return_old
                    .then_some(ReturnValuesOnConditionCheckFailure::AllOld),
            )
            .send()
            .await;
        match res {
            Ok(_) => Ok(Conditional::Written),
            Err(e) if is_conditional_failure(&e) => {
                Ok(Conditional::Refused(match e.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(c)) => {
                        c.item().filter(|i| !i.is_empty()).cloned()
                    }
                    _ => None,
                }))
            }
            Err(e) => Err(store_error("PutItem", e)),
        }
    }

    /// A DeleteItem of `key` if `condition` holds; `false` when it did not.
    pub(crate) async fn delete_if(
        &self,
        key: Item,
        condition: Condition<'_>,
    ) -> Result<bool, StoreError> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .condition_expression(condition.expression)
            .set_expression_attribute_names(placeholders(&condition.names))
            .set_expression_attribute_values(placeholders(&condition.values))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(store_error("DeleteItem", e)),
        }
    }
}

/// Short, growing, jittered pauses between retries of refused work (transaction conflicts,
/// unprocessed batch items): 10 ms doubling to 640 ms, each spread over up to twice itself.
const REFUSED_WORK: Backoff = Backoff::new(Duration::from_millis(10))
    .capped(Duration::from_millis(640))
    .jittered(Jitter::UpToDouble);

/// `BatchWriteItem`'s limit.
pub(crate) const BATCH_WRITE_SIZE: usize = 25;
/// Rounds of retrying a batch's `UnprocessedItems` before giving up.
const UNPROCESSED_RETRIES: u32 = 8;

pub(crate) async fn backoff(attempt: u32) {
    REFUSED_WORK.sleep(attempt).await;
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
    fn item_size_follows_dynamodbs_rule() {
        let item: Item = HashMap::from([
            ("pk".to_owned(), s("EV#o")),                              // 2 + 4
            ("n".to_owned(), n(1_764_000_000)),                        // 1 + (4 digits: 2 + 1)
            ("z".to_owned(), n("-0012.3400")),                         // 1 + (1234: 2 + 1)
            ("b".to_owned(), AttributeValue::B(vec![0u8; 10].into())), // 1 + 10
            ("t".to_owned(), AttributeValue::Bool(true)),              // 1 + 1
            (
                "m".to_owned(),
                AttributeValue::M(HashMap::from([("ab".to_owned(), s("xyz"))])),
            ), // 1 + 3 + (1 + 2 + 3)
            ("l".to_owned(), AttributeValue::L(vec![])),               // 1 + 3
            ("é".to_owned(), s("ü")),                                  // 2 + 2
        ]);
        assert_eq!(item_size(&item), 6 + 4 + 4 + 11 + 2 + 10 + 4 + 4);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
        assert_eq!(write_units(0), 1.0);
        assert_eq!(read_units(4096, true), 1.0);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(read_units(100, false), 0.5);
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
