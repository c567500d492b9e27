//! Outbound events kept for replay: `EVENTS#<orgId>`/`<evt_id>` (ULID: time-ordered). A time
//! window (on `createdAt`) is a `sk BETWEEN` range over the ids' millisecond timestamps, widened
//! by how far an id's time may stray from its `createdAt`, refined on `createdAt`.
//!
//! An item holds the event in parts: the org and id are its key, `event_type` the type's wire
//! name, `created_at` the exact RFC 3339 instant (as serde writes it), `body` the body compressed
//! ([`BODY_CODEC`]), `expires_at`. Spelling out none of the key parts again, and the body in about
//! 30 % of its bytes, keeps a telephony event's item under one write unit (1 KiB; the captured
//! seed001 events: 660–676 bytes, where the plain JSON `doc` was 1.9–2.0 KiB, 2 WRU, and more with a
//! longer org). Items written before (the whole event as JSON in `doc`) are still read.

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};

use super::codec::Codec;
use super::common::{
    check_cursor_in_range, doc, expiring_item, get_s, is_expired, item_size, s, Collect, Item,
    QuerySpec, DOC, PK, SK,
};
use super::DynamoTable;
use crate::error::StoreError;
use crate::events::{EventType, OutboundEvent};
use crate::ids::{ulid_range, EventId};
use crate::ports::{
    EventFilter, EventLog, EventQuery, Page, PageRequest, EVENT_ID_MAY_FOLLOW_CREATION,
    EVENT_ID_MAY_PRECEDE_CREATION,
};

const PK_PREFIX: &str = "EVENTS#";

fn pk(org_id: &str) -> String {
    format!("{PK_PREFIX}{org_id}")
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

/// The event's `created_at`, RFC 3339 exactly as serde writes a `DateTime<Utc>` (every digit of
/// the fraction it has, `Z`), so it reads back equal.
const CREATED_AT: &str = "created_at";

/// The body, compressed: binary, [`BODY_CODEC`]'s format.
const BODY: &str = "body";

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("event log item: {what}: {e}"))
}

/// The item of `event`.
fn event_item(event: &OutboundEvent, expires_at: DateTime<Utc>) -> Item {
    let mut item = expiring_item(pk(&event.org_id), event.id.to_string(), expires_at);
    item.insert(EVENT_TYPE.into(), s(event.event_type.as_str()));
    item.insert(
        CREATED_AT.into(),
        s(event
            .created_at
            .to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    );
    item.insert(
        BODY.into(),
        AttributeValue::B(Blob::new(BODY_CODEC.pack(event.body.as_bytes()))),
    );
    item
}

/// The event an item holds: written in parts (this module's layout), or whole as the JSON `doc`
/// (before the body was compressed). Without `with_body`, the body is left empty and not
/// decompressed (the filters a listing applies look only at the type and time).
fn event_of(item: &Item, with_body: bool) -> Result<OutboundEvent, StoreError> {
    if item.contains_key(DOC) {
        return doc(item);
    }
    let org_id = get_s(item, PK)?
        .strip_prefix(PK_PREFIX)
        .ok_or_else(|| corrupt("pk", "not an EVENTS# key"))?
        .to_owned();
    let id: EventId = get_s(item, SK)?.parse().map_err(|e| corrupt("sk", e))?;
    let event_type =
        EventType::parse(get_s(item, EVENT_TYPE)?).ok_or_else(|| corrupt(EVENT_TYPE, "unknown"))?;
    let created_at = DateTime::parse_from_rfc3339(get_s(item, CREATED_AT)?)
        .map_err(|e| corrupt(CREATED_AT, e))?
        .to_utc();
    let body = if with_body {
        match item.get(BODY) {
            Some(AttributeValue::B(b)) => BODY_CODEC.unpack_text(b.as_ref())?,
            Some(_) => return Err(corrupt(BODY, "not binary")),
            None => return Err(corrupt(BODY, "missing")),
        }
    } else {
        String::new()
    };
    Ok(OutboundEvent {
        id,
        event_type,
        org_id,
        created_at,
        body,
    })
}

fn whole_event(item: &Item) -> Result<OutboundEvent, StoreError> {
    event_of(item, true)
}

/// The body's stored form ([`Codec`]: a format byte, then raw deflate with [`DICTIONARY_V1`]
/// preset, or the UTF-8 bytes as they are). A format, once written, is read for as long as items
/// live (`EVENT_RETENTION_DAYS`).
///
/// Measured on the captured telephony bodies (tests/fixtures/seed001: 1535, 1536, 1413 bytes;
/// compressed bytes, before the format byte): deflate level 9 without dictionary 807, 809, 742;
/// brotli quality 11 (no dictionary) 725, 728, 667; deflate with this dictionary 464, 463, 448 (
/// level 6 the same). The Webex ids (base64 of `ciscospark://us/<KIND>/<uuid>`), the field
/// names and the fixed values are most of a body, and only the dictionary makes them cheap in one
/// small body.
pub(crate) const BODY_CODEC: Codec = Codec {
    what: "event body",
    dictionary: DICTIONARY_V1,
};

/// What a telephony body is made of (docs/telephony-ingest.md; a `telephony_calls` webhook's
/// envelope, tests/fixtures/seed001): field names in the order they are sent, fixed values,
/// the base64 prefixes of Webex ids (`ciscospark://us/WEBHOOK/`, `ORGANIZATION/`, `PEOPLE/`,
/// `APPLICATION/`, `CALL/`). No value of any real call. What is used most comes last (the
/// closest matches cost the fewest bits). Never change it: items compressed with it would
/// no longer read (a new dictionary is a new format).
const DICTIONARY_V1: &[u8] = concat!(
    r#"{"payload":"user-presence","items":[{"personId":"Y2lzY29zcGFyazovL3VzL1BFT1BMRS8","#,
    r#""status":"active","lastActivity":"2025-"}],"#,
    r#""personality":"clickToDial","state":"remoteHeld","held","connected","originator","#,
    r#""answered":"2025-","personId":"Y2lzY29zcGFyazovL3VzL1BFT1BMRS8","#,
    r#""callType":"internal"},"callType":"location"}}],"completedElsewhere":true,"#,
    r#""disconnected":"2025-","appearance":1,"redirections":[{"reason":"callQueue","#,
    r#""redirectingParty":{"name":"","number":"+1","privacyEnabled":false,"#,
    r#"{"Payload":"telephony","timestamp":"2025-","items":{"#,
    r#""id":"Y2lzY29zcGFyazovL3VzL1dFQkhPT0sv","name":"","targetUrl":"https://","#,
    r#""resource":"telephony_calls","event":"updated","#,
    r#""orgId":"Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi8","#,
    r#""createdBy":"Y2lzY29zcGFyazovL3VzL1BFT1BMRS8","#,
    r#""appId":"Y2lzY29zcGFyazovL3VzL0FQUExJQ0FUSU9OL","#,
    r#""ownedBy":"creator","status":"active","created":"20","#,
    r#""actorId":"Y2lzY29zcGFyazovL3VzL1BFT1BMRS8","#,
    r#""data":{"eventType":"received","eventTimestamp":"2025-","#,
    r#""callId":"Y2lzY29zcGFyazovL3VzL0NBTEwv","callSessionId":"","#,
    r#""personality":"terminator","state":"alerting","muteCapable":false,"muted":false,"#,
    r#""remoteParty":{"name":"","number":"+1","privacyEnabled":false,"#,
    r#""callType":"external"},"created":"2025-"#,
    r#""completedElsewhere":false}},"orgId":"Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi8"#,
)
.as_bytes();

#[async_trait]
impl EventLog for DynamoTable {
    async fn append(
        &self,
        event: &OutboundEvent,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let item = event_item(event, expires_at);
        // Refused here, as `TooLarge`, rather than as DynamoDB's ValidationException (which would
        // read as the store being unavailable, and be retried). On the stored (compressed) item.
        StoreError::check_size(item_size(&item))?;
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
            !is_expired(item, now) && event_of(item, false).is_ok_and(|e| query.covers(&e))
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
        items
            .iter()
            .take(query.limit as usize)
            .map(whole_event)
            .collect()
    }

    async fn get(&self, org_id: &str, id: &EventId) -> Result<Option<OutboundEvent>, StoreError> {
        self.get_live(pk(org_id), &id.to_string(), Utc::now())
            .await?
            .map(|item| whole_event(&item))
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
            !is_expired(item, now) && event_of(item, false).is_ok_and(|e| filter.matches(&e))
        };
        self.query_page_with(&spec, page, &cursor_key, &keep, whole_event)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::telephony_body;
    use crate::webex::{parse_json, TelephonyEnvelope};

    /// The captured telephony bodies, rebuilt as the ingest builds them (their `items` parsed,
    /// `telephony_body` at the captured timestamp: byte for byte the capture, seed_roundtrip.rs).
    fn seed_events() -> Vec<OutboundEvent> {
        let org = "Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi8xNzExMTdkNi04YjgyLTQ0Y2EtOThlOS1hYzExNTdmMmNkMWQ";
        [
            (
                EventType::TelephonyUpdated,
                include_str!("../../../../tests/fixtures/seed001/updated.json"),
            ),
            (
                EventType::TelephonyCreated,
                include_str!("../../../../tests/fixtures/seed001/created.json"),
            ),
            (
                EventType::TelephonyDeleted,
                include_str!("../../../../tests/fixtures/seed001/deleted.json"),
            ),
        ]
        .into_iter()
        .map(|(event_type, text)| {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            let items = serde_json::to_string(&v["items"]).unwrap();
            let env: TelephonyEnvelope = parse_json(items.as_bytes()).unwrap();
            let at = DateTime::parse_from_rfc3339(v["timestamp"].as_str().unwrap())
                .unwrap()
                .to_utc();
            let body = telephony_body(&env, at);
            assert_eq!(body, serde_json::to_string(&v).unwrap());
            OutboundEvent {
                id: EventId::derived(at.timestamp_millis() as u64, body.as_bytes()),
                event_type,
                org_id: env.org_id.clone(),
                // Nanoseconds, as `Utc::now()` gives them: read back exactly.
                created_at: at + chrono::Duration::nanoseconds(123_456),
                body,
            }
        })
        .inspect(|e| assert_eq!(e.org_id, org))
        .collect()
    }

    #[test]
    fn seed_telephony_items_fit_one_write_unit_and_read_back_exactly() {
        let expires = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        for event in seed_events() {
            let item = event_item(&event, expires);
            let size = item_size(&item);
            let plain = item_size(
                &super::super::common::expiring_doc(
                    pk(&event.org_id),
                    event.id.to_string(),
                    &event,
                    expires,
                )
                .unwrap(),
            );
            println!(
                "{}: {} body bytes, item {size} bytes (plain doc item {plain})",
                event.event_type,
                event.body.len()
            );
            // With a margin: a call with longer names, more redirections still fits.
            assert!(size <= 768, "{}: {size} bytes", event.event_type);
            assert_eq!(whole_event(&item).unwrap(), event);
            let head = event_of(&item, false).unwrap();
            assert_eq!(
                head,
                OutboundEvent {
                    body: String::new(),
                    ..event.clone()
                }
            );
        }
    }

    #[test]
    fn bodies_round_trip_and_damage_is_corrupt() {
        for body in ["", "{}", "é ✓ 😀", &seed_events()[0].body] {
            assert_eq!(
                BODY_CODEC
                    .unpack_text(&BODY_CODEC.pack(body.as_bytes()))
                    .unwrap(),
                body
            );
        }
        let packed = BODY_CODEC.pack(seed_events()[1].body.as_bytes());
        assert_eq!(packed[0], 1);
        match BODY_CODEC.unpack_text(&packed[..packed.len() / 2]) {
            Err(StoreError::Corrupt(m)) => assert!(m.starts_with("event body "), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_item_written_before_compression_still_reads() {
        let event = seed_events().remove(0);
        let expires = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut legacy = super::super::common::expiring_doc(
            pk(&event.org_id),
            event.id.to_string(),
            &event,
            expires,
        )
        .unwrap();
        assert_eq!(whole_event(&legacy).unwrap(), event);
        legacy.insert(EVENT_TYPE.into(), s(event.event_type.as_str()));
        assert_eq!(event_of(&legacy, false).unwrap(), event);
    }

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
