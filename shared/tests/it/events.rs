use aws_sdk_dynamodb::types::AttributeValue::S;
use chrono::Duration;
use relay_shared::error::{StoreError, MAX_STORE_ITEM_BYTES};
use relay_shared::ports::EventQuery;

use crate::fixtures::{event, now};
use crate::harness::StoreEnv;

pub async fn window_query(env: StoreEnv) {
    let log = &env.stores.events;
    let t = now();
    let s = Duration::seconds;
    let keep = t + Duration::days(1);

    let events: Vec<_> = (0..10).map(|i| event("org-1", t + s(i))).collect();
    for e in events.iter().rev() {
        log.append(e, keep).await.unwrap();
    }
    log.append(&event("org-2", t + s(3)), keep).await.unwrap();
    log.append(&event("org-2", t + s(4)), keep).await.unwrap();

    // [since, until), oldest first.
    assert_eq!(
        log.list("org-1", EventQuery::new(t + s(2), t + s(6), 100))
            .await
            .unwrap(),
        events[2..6].to_vec()
    );
    assert_eq!(
        log.list("org-1", EventQuery::new(t + s(2), t + s(6), 2))
            .await
            .unwrap(),
        events[2..4].to_vec()
    );
    assert_eq!(
        log.list("org-1", EventQuery::new(t, t + s(10), 100))
            .await
            .unwrap(),
        events
    );
    // Sub-millisecond bounds.
    let ms = Duration::milliseconds(1);
    assert_eq!(
        log.list("org-1", EventQuery::new(t + s(2) + ms, t + s(6) + ms, 100))
            .await
            .unwrap(),
        events[3..7].to_vec()
    );
    assert!(log
        .list("org-1", EventQuery::new(t + s(10), t + s(20), 100))
        .await
        .unwrap()
        .is_empty());
    assert!(log
        .list("org-1", EventQuery::new(t + s(5), t + s(5), 100))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        log.list("org-2", EventQuery::new(t, t + s(10), 100))
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(log
        .list("org-3", EventQuery::new(t, t + s(10), 100))
        .await
        .unwrap()
        .is_empty());
}

/// Ingest stamps event ids with Webex's `eventTimestamp`, which precedes the ingest time (a late
/// or retried webhook): the window is on `created_at`, so such an event is still found.
pub async fn window_is_on_created_at_not_id_time(env: StoreEnv) {
    let log = &env.stores.events;
    let t = now();
    let mut late = event("org-late", t);
    late.id =
        relay_shared::ids::EventId::new_at((t - Duration::hours(2)).timestamp_millis() as u64);
    late.created_at = t + Duration::seconds(30);
    log.append(&late, t + Duration::days(1)).await.unwrap();
    let found = log
        .list(
            "org-late",
            EventQuery::new(t + Duration::seconds(20), t + Duration::seconds(40), 10),
        )
        .await
        .unwrap();
    assert_eq!(found, vec![late.clone()]);
    assert!(
        log.list("org-late", EventQuery::new(t - Duration::hours(3), t, 10))
            .await
            .unwrap()
            .is_empty(),
        "not by the id's time"
    );
}

/// DynamoDB's 400 KB item limit: an event whose item would exceed it is refused as `TooLarge`
/// (not a store outage), nothing is written; one just under it is stored and read back.
pub async fn an_event_over_the_item_limit_is_refused_cleanly(env: StoreEnv) {
    let log = &env.stores.events;
    let t = now();
    let keep = t + Duration::days(1);
    // Bodies that do not compress (the DynamoDB adapter stores them deflated): printable ASCII
    // from a fixed pseudo-random sequence, ≥ 6.5 bits of information a byte, so twice the limit
    // stays over it compressed, and under the limit stays under it plain.
    let sized = |i: i64, bytes: usize| {
        let mut e = event("org-1", t + Duration::seconds(i));
        let mut x = 0x9e37_79b9_7f4a_7c15_u64 ^ bytes as u64;
        e.body = (0..bytes)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b' ' + (x % 95) as u8)
            })
            .collect();
        e
    };
    let big = sized(1, 300 * 1024);
    log.append(&big, keep).await.unwrap();
    let too_big = sized(2, 2 * MAX_STORE_ITEM_BYTES);
    let err = log.append(&too_big, keep).await.unwrap_err();
    assert!(
        matches!(err, StoreError::TooLarge { max, .. } if max == MAX_STORE_ITEM_BYTES),
        "{err:?}"
    );
    assert_eq!(
        log.list("org-1", EventQuery::new(t, t + Duration::seconds(10), 10))
            .await
            .unwrap(),
        vec![big]
    );
}

/// `GET /api/hooks/events`: newest first, paged, by type and by `createdAt` window (an id's time
/// may precede its `createdAt`: the window is on `createdAt`), and one event by id.
pub async fn paged_newest_first_filtered_and_got_by_id(env: StoreEnv) {
    use crate::fixtures::millis;
    use relay_shared::events::{EventType, OutboundEvent};
    use relay_shared::ids::EventId;
    use relay_shared::ports::{EventFilter, PageRequest};
    let log = &env.stores.events;
    let t = now();
    let s = Duration::seconds;
    let keep = t + Duration::days(1);
    let mut events: Vec<OutboundEvent> = (0..5).map(|i| event("org-p", t + s(i))).collect();
    events[2].event_type = EventType::TelephonyCreated;
    // Stamped with Webex's time, an hour before it was logged.
    let early = OutboundEvent {
        id: EventId::new_at(millis(t - Duration::hours(1))),
        ..event("org-p", t + s(10))
    };
    for e in events.iter().chain([&early]) {
        log.append(e, keep).await.unwrap();
    }
    log.append(&event("org-q", t), keep).await.unwrap();
    let all_pages = |filter: EventFilter| async move {
        let (mut out, mut cursor) = (Vec::new(), None);
        loop {
            let page = log
                .page("org-p", filter, &PageRequest { limit: 2, cursor })
                .await
                .unwrap();
            assert!(page.items.len() <= 2);
            out.extend(page.items);
            cursor = page.next_cursor;
            if cursor.is_none() {
                return out;
            }
        }
    };
    let newest_first: Vec<_> = events.iter().rev().cloned().collect();
    let all = all_pages(EventFilter::default()).await;
    assert_eq!(all[..5], newest_first[..], "by id, newest first");
    assert_eq!(all[5], early);
    let calls = EventFilter {
        event_type: Some(EventType::TelephonyCreated),
        ..EventFilter::default()
    };
    assert_eq!(all_pages(calls).await, [events[2].clone()]);
    let window = EventFilter {
        since: Some(t + s(1)),
        until: Some(t + s(4)),
        ..EventFilter::default()
    };
    assert_eq!(
        all_pages(window).await,
        [&events[3], &events[2], &events[1]].map(Clone::clone)
    );
    let later = EventFilter {
        since: Some(t + s(9)),
        ..EventFilter::default()
    };
    assert_eq!(
        all_pages(later).await,
        std::slice::from_ref(&early),
        "on createdAt"
    );
    let bad = log
        .page(
            "org-p",
            EventFilter::default(),
            &PageRequest {
                limit: 2,
                cursor: Some("%%%".into()),
            },
        )
        .await;
    assert_eq!(bad, Err(StoreError::BadCursor));
    // A cursor kept while the window changed: its key lies outside the new window.
    let first = log
        .page(
            "org-p",
            EventFilter::default(),
            &PageRequest {
                limit: 1,
                cursor: None,
            },
        )
        .await
        .unwrap();
    let long_ago = EventFilter {
        since: Some(t - Duration::days(10)),
        until: Some(t - Duration::days(9)),
        ..EventFilter::default()
    };
    let moved = log
        .page(
            "org-p",
            long_ago,
            &PageRequest {
                limit: 2,
                cursor: first.next_cursor,
            },
        )
        .await;
    // DynamoDB would refuse the start key; both adapters say so first, alike.
    assert_eq!(moved, Err(StoreError::BadCursor));
    assert_eq!(
        log.get("org-p", &events[1].id).await.unwrap(),
        Some(events[1].clone())
    );
    assert_eq!(log.get("org-q", &events[1].id).await.unwrap(), None);
}

/// A type filter that matches little reads a bounded page (at most `PAGE_SCAN_BUDGET` stored
/// items), shorter than asked — even empty — with a cursor to go on from; followed to the end, the
/// pages hold exactly the matching events. On DynamoDB an item written before the `event_type`
/// attribute existed (only the document says its type) is still found and still filtered.
pub async fn a_sparse_type_filter_reads_bounded_pages(env: StoreEnv) {
    use relay_shared::events::{EventType, OutboundEvent};
    use relay_shared::ports::{EventFilter, PageRequest, PAGE_SCAN_BUDGET};
    let log = env.stores.events.clone();
    let t = now();
    let keep = t + Duration::days(1);
    let call = OutboundEvent {
        event_type: EventType::TelephonyCreated,
        ..event("org-s", t)
    };
    log.append(&call, keep).await.unwrap();
    // Newer than the call: a full budget of other events (and some) before it.
    let mut writes = tokio::task::JoinSet::new();
    for i in 0..(PAGE_SCAN_BUDGET as i64 + 20) {
        let log = log.clone();
        writes.spawn(async move {
            let e = event("org-s", t + Duration::milliseconds(1 + i));
            log.append(&e, keep).await.unwrap();
        });
    }
    while let Some(done) = writes.join_next().await {
        done.unwrap();
    }
    // Written as the adapter did before `event_type` was an attribute: a call and a presence
    // event, older than everything else.
    let mut legacy = Vec::new();
    if let Some((client, table)) = &env.dynamodb {
        for (ms, event_type) in [
            (2, EventType::TelephonyCreated),
            (1, EventType::PresenceChanged),
        ] {
            let e = OutboundEvent {
                event_type,
                ..event("org-s", t - Duration::milliseconds(ms))
            };
            let s = |v: String| aws_sdk_dynamodb::types::AttributeValue::S(v);
            client
                .put_item()
                .table_name(table)
                .item("pk", s("EVENTS#org-s".into()))
                .item("sk", s(e.id.to_string()))
                .item("doc", s(serde_json::to_string(&e).unwrap()))
                .item(
                    "expires_at",
                    aws_sdk_dynamodb::types::AttributeValue::N(keep.timestamp().to_string()),
                )
                .send()
                .await
                .unwrap();
            legacy.push(e);
        }
    }
    let calls = EventFilter {
        event_type: Some(EventType::TelephonyCreated),
        ..EventFilter::default()
    };
    let first = log
        .page(
            "org-s",
            calls,
            &PageRequest {
                limit: 10,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert!(first.items.is_empty(), "the budget ran out before the call");
    let mut found = Vec::new();
    let mut cursor = first.next_cursor.clone();
    assert!(cursor.is_some(), "a cursor to go on from");
    let mut pages = 1;
    while cursor.is_some() {
        let page = log
            .page("org-s", calls, &PageRequest { limit: 10, cursor })
            .await
            .unwrap();
        found.extend(page.items);
        cursor = page.next_cursor;
        pages += 1;
        assert!(pages <= 4, "pagination does not end");
    }
    let mut expected = vec![call];
    expected.extend(
        legacy
            .into_iter()
            .filter(|e| e.event_type == EventType::TelephonyCreated),
    );
    assert_eq!(found, expected);
    // Unfiltered, a page is as long as asked.
    let all = log
        .page(
            "org-s",
            EventFilter::default(),
            &PageRequest {
                limit: 10,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(all.items.len(), 10);
    assert!(all.next_cursor.is_some());
}

/// The captured telephony events (tests/fixtures/seed001), built as the ingest builds them
/// (`telephony_body` of the parsed `items` at the captured timestamp: the capture byte for byte),
/// logged at a nanosecond instant.
fn seed001_events() -> Vec<relay_shared::events::OutboundEvent> {
    use relay_shared::events::{telephony_body, EventType, OutboundEvent};
    use relay_shared::ids::EventId;
    use relay_shared::webex::{parse_json, TelephonyEnvelope};
    let logged = now() + Duration::nanoseconds(123_456_789);
    [
        (
            EventType::TelephonyUpdated,
            include_str!("../../../tests/fixtures/seed001/updated.json"),
        ),
        (
            EventType::TelephonyCreated,
            include_str!("../../../tests/fixtures/seed001/created.json"),
        ),
        (
            EventType::TelephonyDeleted,
            include_str!("../../../tests/fixtures/seed001/deleted.json"),
        ),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (event_type, text))| {
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        let items = serde_json::to_string(&v["items"]).unwrap();
        let env: TelephonyEnvelope = parse_json(items.as_bytes()).unwrap();
        let at = chrono::DateTime::parse_from_rfc3339(v["timestamp"].as_str().unwrap())
            .unwrap()
            .to_utc();
        let body = telephony_body(&env, at);
        assert_eq!(body, serde_json::to_string(&v).unwrap(), "the capture");
        let created_at = logged + Duration::milliseconds(i as i64);
        OutboundEvent {
            id: EventId::new_at(crate::fixtures::millis(created_at)),
            event_type,
            org_id: env.org_id.clone(),
            created_at,
            body,
        }
    })
    .collect()
}

/// Replay reads the captured telephony events back byte for byte (get, list and page), and on
/// DynamoDB each stored item is at most one write unit by DynamoDB's size rule (the body is kept
/// compressed).
pub async fn seed_events_replay_byte_exact_in_one_write_unit_each(env: StoreEnv) {
    use relay_shared::ports::{EventFilter, PageRequest};
    let log = &env.stores.events;
    let events = seed001_events();
    let org = events[0].org_id.clone();
    let keep = now() + Duration::days(1);
    for e in &events {
        log.append(e, keep).await.unwrap();
    }
    for e in &events {
        let got = log.get(&org, &e.id).await.unwrap().expect("logged");
        assert_eq!(got.body.as_bytes(), e.body.as_bytes());
        assert_eq!(&got, e);
    }
    let since = events[0].created_at - Duration::seconds(1);
    let listed = log
        .list(
            &org,
            EventQuery::new(since, since + Duration::minutes(1), 10),
        )
        .await
        .unwrap();
    assert_eq!(listed, events);
    let page = log
        .page(
            &org,
            EventFilter::default(),
            &PageRequest {
                limit: 10,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items, events.iter().rev().cloned().collect::<Vec<_>>());
    if let Some((client, table)) = &env.dynamodb {
        for e in &events {
            let item = client
                .get_item()
                .table_name(table)
                .key("pk", S(format!("EVENTS#{org}")))
                .key("sk", S(e.id.to_string()))
                .send()
                .await
                .unwrap()
                .item
                .expect("stored");
            let size = relay_shared::adapters::aws::item_size(&item);
            assert!(
                size <= 1024,
                "{}: a {size}-byte item (more than 1 WRU)",
                e.event_type
            );
            assert!(
                matches!(
                    item.get("body"),
                    Some(aws_sdk_dynamodb::types::AttributeValue::B(_))
                ),
                "the body is binary (compressed)"
            );
            assert!(!item.contains_key("doc"));
        }
    }
}

/// An event log item written before the body was compressed (the whole event as JSON in `doc`,
/// with `event_type`) is still read by get, list and page, beside new items. DynamoDB only (the
/// memory adapter has no stored form).
pub async fn items_written_before_compression_still_read(env: StoreEnv) {
    use relay_shared::ports::{EventFilter, PageRequest};
    let Some((client, table)) = &env.dynamodb else {
        return;
    };
    let log = &env.stores.events;
    let mut events = seed001_events();
    let org = events[0].org_id.clone();
    let keep = now() + Duration::days(1);
    let old = events.remove(0);
    client
        .put_item()
        .table_name(table)
        .item("pk", S(format!("EVENTS#{org}")))
        .item("sk", S(old.id.to_string()))
        .item("doc", S(serde_json::to_string(&old).unwrap()))
        .item("event_type", S(old.event_type.as_str().into()))
        .item(
            "expires_at",
            aws_sdk_dynamodb::types::AttributeValue::N(keep.timestamp().to_string()),
        )
        .send()
        .await
        .unwrap();
    for e in &events {
        log.append(e, keep).await.unwrap();
    }
    assert_eq!(log.get(&org, &old.id).await.unwrap(), Some(old.clone()));
    let since = old.created_at - Duration::seconds(1);
    let all: Vec<_> = std::iter::once(old.clone()).chain(events).collect();
    assert_eq!(
        log.list(
            &org,
            EventQuery::new(since, since + Duration::minutes(1), 10)
        )
        .await
        .unwrap(),
        all
    );
    let of_type = EventFilter {
        event_type: Some(old.event_type),
        ..EventFilter::default()
    };
    let page = log
        .page(
            &org,
            of_type,
            &PageRequest {
                limit: 10,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items, vec![old]);
}

/// What the cost model counts with `OpCounter`, on the event log: a seed telephony event's append
/// consumes 1 WRU and a strongly consistent get 1 RRU as DynamoDB (Local) reports it (the
/// interceptor asks for `ReturnConsumedCapacity`); calls made concurrently are one round trip,
/// one after another's answer a round each (deterministically: the counter's HTTP client answers
/// no request in the poll that sent it). DynamoDB only.
pub async fn op_counter_sums_capacity_and_counts_round_trips(env: StoreEnv) {
    use relay_shared::adapters::aws::{Capacity, DynamoTable, OpCounter};
    use relay_shared::ports::EventLog;
    let Some((client, table)) = &env.dynamodb else {
        return;
    };
    let ops = OpCounter::default();
    let counted = aws_sdk_dynamodb::Client::from_conf(
        client
            .config()
            .to_builder()
            .interceptor(ops.clone())
            .http_client(ops.http_client())
            .build(),
    );
    let log = DynamoTable::new(counted, table.clone());
    let events = seed001_events();
    let org = events[0].org_id.clone();
    let keep = now() + Duration::days(1);
    log.append(&events[0], keep).await.unwrap();
    assert_eq!(
        ops.take_capacity(),
        Capacity {
            write: 1.0,
            read: 0.0
        }
    );
    assert_eq!(ops.take_rounds(), 1);
    // Two appends and a get at once: one round; their capacity adds up.
    let (a, b, c) = tokio::join!(
        log.append(&events[1], keep),
        log.append(&events[2], keep),
        EventLog::get(&log, &org, &events[0].id),
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(c.unwrap().as_ref(), Some(&events[0]));
    assert_eq!(
        ops.take_capacity(),
        Capacity {
            write: 2.0,
            read: 1.0
        }
    );
    assert_eq!(ops.take_rounds(), 1);
    // One after another: a round each.
    for e in &events {
        EventLog::get(&log, &org, &e.id).await.unwrap().unwrap();
    }
    assert_eq!(ops.take_rounds(), 3);
    assert_eq!(ops.take_capacity().read, 3.0);
    assert_eq!(ops.take().get("GetItem"), Some(&4));
}
