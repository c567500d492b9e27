//! Call state: `CALL#<callId>`/`CALL` with the record compressed in `z` ([`RECORD_CODEC`]),
//! `version` and `expires_at`. Writes are optimistic: version 1 requires no live item, version
//! v > 1 requires the stored version v - 1. Items written before the compression hold the record
//! as the JSON `doc` and still read.
//!
//! Why compressed: the ingest writes the record once per Webex event, and as JSON it passes
//! DynamoDB's 1 KiB write unit at the first event of a captured call (1035 B of `doc`; 1695 B
//! after its three events), which doubled the call state's share of an event's cost. Deflated
//! with a dictionary of the record's own field names it is 288–420 B for those three
//! (items of 379–511 B: one write unit each; test below).

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;

use super::codec::Codec;
use super::common::{doc, key, n, secs, Condition, Item, DOC, EXPIRES_AT};
use super::DynamoTable;
use crate::call_state::CallRecord;
use crate::error::StoreError;
use crate::ports::CallStateStore;

const SK: &str = "CALL";
/// The record, compressed: binary, [`RECORD_CODEC`]'s format.
const Z: &str = "z";

fn pk(call_id: &str) -> String {
    format!("CALL#{call_id}")
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("call state {what}: {e}"))
}

/// The item of `record` (without `version`, which the optimistic write adds).
fn record_item(record: &CallRecord) -> Result<Item, StoreError> {
    let json = serde_json::to_vec(record).map_err(|e| corrupt("encoding", e))?;
    let mut item = key(pk(&record.call_id), SK);
    item.insert(
        Z.into(),
        AttributeValue::B(Blob::new(RECORD_CODEC.pack(&json))),
    );
    // The record carries its own expiry (Unix seconds), extended as the call goes on.
    item.insert(EXPIRES_AT.into(), n(record.expires_at));
    Ok(item)
}

/// The record an item holds: compressed in `z`, or (written before) the JSON `doc`.
fn record_of(item: &Item) -> Result<CallRecord, StoreError> {
    match item.get(Z) {
        Some(AttributeValue::B(b)) => {
            let json = RECORD_CODEC.unpack(b.as_ref())?;
            serde_json::from_slice(&json).map_err(|e| corrupt("record", e))
        }
        Some(_) => Err(corrupt(Z, "not binary")),
        None if item.contains_key(DOC) => doc(item),
        None => Err(corrupt(Z, "missing")),
    }
}

/// The record's stored form ([`Codec`], shared with the event log's bodies: a format byte, then
/// raw deflate with [`RECORD_DICTIONARY_V1`] preset, or the JSON as it is if deflate would not
/// shrink it). A format once written is read for as long as records live; a better dictionary is
/// a new format.
const RECORD_CODEC: Codec = Codec {
    what: "call state",
    dictionary: RECORD_DICTIONARY_V1,
};

/// What a `CallRecord`'s JSON is made of (`crate::call_state`): its field names in the order
/// serde writes them, the values the captured calls repeat (stages, Webex event types and
/// states, call event types, outcomes) and the base64 prefixes of Webex ids. No value of any
/// real call. What is used most comes last. Never change it (a new one is a new format).
const RECORD_DICTIONARY_V1: &[u8] = concat!(
    r#""outcome":"answered","missed","unanswered","answeredElsewhere","#,
    r#"{"event":"call:answered","call:held","call:resumed","call:transferred","#,
    r#""personality":"originator","clickToDial","connected","held","remoteHeld","#,
    r#"{"reason":"callQueue","huntGroup","redirectingParty":{"name":"","number":"+1","#,
    r#""privacyEnabled":false,"callType":"location"}}]},"#,
    r#""leg":{"personality":"terminator","startedAt":"20","answeredAt":"20","#,
    r#""endedAt":"20","completedElsewhere":true,"redirections":["#,
    r#""derived":[{"event":"call:ringing","n":1,"seq":1,"at":"20","ringMs":"#,
    r#","talkMs":0,"outcome":"answeredElsewhere"},{"event":"call:ended","n":1,"seq":2,"at":"20"}]},"#,
    r#"{"stage":"updated","eventType":"updated","state":"connected","eventTimestamp":"20","#,
    r#""eventTime":"20","key":"tel:"},"#,
    r#"{"stage":"deleted","eventType":"disconnected","state":"disconnected","#,
    r#""eventTimestamp":"20","eventTime":"20","key":"tel:"},"#,
    r#"{"callId":"Y2lzY29zcGFyazovL3VzL0NBTEwv","callSessionId":"","#,
    r#""orgId":"Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi8","#,
    r#""latest":{"stage":"created","eventType":"received","state":"alerting","#,
    r#""eventTimestamp":"20","eventTime":"20","key":"tel:"},"#,
    r#""history":[{"stage":"created","eventType":"received","state":"alerting","#,
    r#""eventTimestamp":"20","eventTime":"20","key":"tel:"#,
)
.as_bytes();

#[async_trait]
impl CallStateStore for DynamoTable {
    async fn get(&self, call_id: &str) -> Result<Option<CallRecord>, StoreError> {
        self.get_live(pk(call_id), SK, Utc::now())
            .await?
            .as_ref()
            .map(record_of)
            .transpose()
    }

    async fn put(&self, record: &CallRecord) -> Result<(), StoreError> {
        let item = record_item(record)?;
        // An expired item that TTL has not removed yet counts as absent (`get` does not return it).
        let absent = Condition::new("attribute_not_exists(pk) OR expires_at <= :now")
            .value(":now", n(secs(Utc::now())));
        let what = format!("call {}", record.call_id);
        self.put_next_version(item, record.version, absent, &what)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::aws::common::{doc_item, item_size};
    use crate::webex::TelephonyEnvelope;

    /// The seed call's record after each of its captured events, in captured order (what the
    /// ingest writes), with the version the write carries.
    fn seed_records() -> Vec<CallRecord> {
        let mut stored: Option<CallRecord> = None;
        let mut out = Vec::new();
        for fixture in [
            include_str!("../../../../tests/fixtures/seed001/updated.json"),
            include_str!("../../../../tests/fixtures/seed001/created.json"),
            include_str!("../../../../tests/fixtures/seed001/deleted.json"),
        ] {
            let v: serde_json::Value = serde_json::from_str(fixture).unwrap();
            let envelope: TelephonyEnvelope = serde_json::from_value(v["items"].clone()).unwrap();
            let mut applied = crate::call_events::apply(stored.take(), &envelope, 1_900_000_000);
            applied.record.version += 1;
            out.push(applied.record.clone());
            stored = Some(applied.record);
        }
        out
    }

    #[test]
    fn seed_call_items_fit_one_write_unit_and_read_back() {
        for record in seed_records() {
            let mut item = record_item(&record).unwrap();
            item.insert("version".into(), n(record.version));
            let size = item_size(&item);
            assert!(size <= 1024, "call state item of {size} B: {record:?}");
            assert_eq!(record_of(&item).unwrap(), record);
        }
    }

    #[test]
    fn a_record_written_before_compression_still_reads() {
        let record = seed_records().pop().unwrap();
        let mut legacy = doc_item(pk(&record.call_id), SK, &record).unwrap();
        legacy.insert(EXPIRES_AT.into(), n(record.expires_at));
        assert_eq!(record_of(&legacy).unwrap(), record);
    }

    #[test]
    fn both_formats_round_trip_and_damage_is_corrupt() {
        for json in [&b"{}"[..], br#"{"callId":"Y2lzY29zcGFyazovL3VzL0NBTEwvx"}"#] {
            assert_eq!(RECORD_CODEC.unpack(&RECORD_CODEC.pack(json)).unwrap(), json);
        }
        assert_eq!(RECORD_CODEC.pack(b"{}"), b"\x00{}");
        let mut packed = RECORD_CODEC.pack(&serde_json::to_vec(&seed_records()[2]).unwrap());
        assert_eq!(packed[0], 1);
        packed.truncate(packed.len() / 2);
        assert!(matches!(
            RECORD_CODEC.unpack(&packed),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            RECORD_CODEC.unpack(b"\x07x"),
            Err(StoreError::Corrupt(_))
        ));
    }
}
