use chrono::Duration;
use relay_shared::delivery::{AttemptRecord, AttemptStatus};
use relay_shared::error::StoreError;
use relay_shared::ids::SubscriptionId;
use relay_shared::ports::{AttemptLog, AttemptQuery, PageRequest};

use crate::fixtures::{attempt, millis, now};
use crate::harness::StoreEnv;

async fn all_pages(
    log: &dyn AttemptLog,
    query: AttemptQuery,
    limit: u32,
) -> (Vec<AttemptRecord>, Vec<usize>) {
    let mut items = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor = None;
    loop {
        let page = log
            .list(query, &PageRequest { limit, cursor })
            .await
            .unwrap();
        sizes.push(page.items.len());
        items.extend(page.items);
        cursor = page.next_cursor;
        if cursor.is_none() {
            return (items, sizes);
        }
        assert!(sizes.len() < 20, "pagination does not end");
    }
}

pub async fn newest_first_with_status_filter_and_pages(env: StoreEnv) {
    let log = env.stores.attempts.as_ref();
    let t = now();
    let keep = t + Duration::days(7);
    let base = millis(t);
    let sub = SubscriptionId::new_at(base);
    let other = SubscriptionId::new_at(base + 1);

    // 7 attempts; 0, 3 and 6 failed.
    let records: Vec<_> = (0..7u64)
        .map(|i| {
            attempt(
                sub,
                base + i * 1000,
                i as u32 + 1,
                if i % 3 == 0 {
                    AttemptStatus::Failed
                } else {
                    AttemptStatus::Succeeded
                },
            )
        })
        .collect();
    for r in records.iter().rev() {
        log.record(r, keep).await.unwrap();
    }
    log.record(&attempt(other, base, 1, AttemptStatus::Skipped), keep)
        .await
        .unwrap();

    let newest_first: Vec<_> = records.iter().rev().cloned().collect();
    let (items, sizes) = all_pages(log, AttemptQuery::of(sub), 3).await;
    assert_eq!(sizes, vec![3, 3, 1]);
    assert_eq!(items, newest_first);

    let failed: Vec<_> = newest_first
        .iter()
        .filter(|a| a.status == AttemptStatus::Failed)
        .cloned()
        .collect();
    let (items, sizes) = all_pages(log, AttemptQuery::of(sub).only(AttemptStatus::Failed), 2).await;
    assert_eq!(sizes, vec![2, 1]);
    assert_eq!(items, failed);

    let (items, _) = all_pages(log, AttemptQuery::of(sub).only(AttemptStatus::Skipped), 5).await;
    assert!(items.is_empty());
    let (items, _) = all_pages(log, AttemptQuery::of(other), 5).await;
    assert_eq!(items.len(), 1);
    let (items, sizes) = all_pages(log, AttemptQuery::of(SubscriptionId::new_at(1)), 5).await;
    assert!(items.is_empty());
    assert_eq!(sizes, vec![0]);

    let bad = log
        .list(
            AttemptQuery::of(sub),
            &PageRequest {
                limit: 3,
                cursor: Some("%%%".into()),
            },
        )
        .await;
    assert_eq!(bad, Err(StoreError::BadCursor));
}

/// The delivery log's filters (`GET …/deliveries?eventType&since&until`) and one attempt by id
/// (`GET …/deliveries/{attemptId}`).
pub async fn filters_on_type_and_time_and_get_by_id(env: StoreEnv) {
    use relay_shared::events::EventType;
    use relay_shared::ids::AttemptId;
    let log = env.stores.attempts.as_ref();
    let t = now();
    let keep = t + Duration::days(7);
    let base = millis(t);
    let sub = SubscriptionId::new_at(base + 7);
    // One a second; the odd ones are call events, the even ones presence.
    let records: Vec<AttemptRecord> = (0..6u64)
        .map(|i| AttemptRecord {
            event_type: if i % 2 == 1 {
                EventType::CallRinging
            } else {
                EventType::PresenceChanged
            },
            ..attempt(sub, base + i * 1000, 1, AttemptStatus::Succeeded)
        })
        .collect();
    for r in &records {
        log.record(r, keep).await.unwrap();
    }
    let at = |i: i64| t + Duration::seconds(i);
    let query = |q: AttemptQuery| async move { all_pages(log, q, 2).await.0 };
    let calls = AttemptQuery {
        event_type: Some(EventType::CallRinging),
        ..AttemptQuery::of(sub)
    };
    assert_eq!(
        query(calls).await,
        [&records[5], &records[3], &records[1]].map(Clone::clone)
    );
    // [since, until), millisecond bounds.
    let window = AttemptQuery {
        since: Some(at(1)),
        until: Some(at(4)),
        ..AttemptQuery::of(sub)
    };
    assert_eq!(
        query(window).await,
        [&records[3], &records[2], &records[1]].map(Clone::clone)
    );
    let late_calls = AttemptQuery {
        since: Some(at(2) + Duration::milliseconds(1)),
        ..calls
    };
    assert_eq!(
        query(late_calls).await,
        [&records[5], &records[3]].map(Clone::clone)
    );
    let before = AttemptQuery {
        until: Some(at(1)),
        ..AttemptQuery::of(sub)
    };
    assert_eq!(query(before).await, [records[0].clone()]);
    // By id: only under its own subscription.
    assert_eq!(
        log.get(&sub, &records[2].id).await.unwrap(),
        Some(records[2].clone())
    );
    assert_eq!(
        log.get(&SubscriptionId::new_at(base), &records[2].id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(log.get(&sub, &AttemptId::new_at(base)).await.unwrap(), None);
}

/// A cursor kept while the window changed (its key lies outside the new window) is `BadCursor` on
/// every backend, as DynamoDB refuses such a start key.
pub async fn a_cursor_of_another_window_is_refused(env: StoreEnv) {
    let log = env.stores.attempts.as_ref();
    let t = now();
    let base = millis(t);
    let sub = SubscriptionId::new_at(base + 9);
    for i in 0..3u64 {
        let r = attempt(sub, base + i * 1000, 1, AttemptStatus::Succeeded);
        log.record(&r, t + Duration::days(7)).await.unwrap();
    }
    let first = log
        .list(
            AttemptQuery::of(sub),
            &PageRequest {
                limit: 1,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert!(first.next_cursor.is_some());
    let long_ago = AttemptQuery {
        since: Some(t - Duration::days(10)),
        until: Some(t - Duration::days(9)),
        ..AttemptQuery::of(sub)
    };
    let moved = log
        .list(
            long_ago,
            &PageRequest {
                limit: 2,
                cursor: first.next_cursor.clone(),
            },
        )
        .await;
    assert_eq!(moved, Err(StoreError::BadCursor));
    // Inside the window, the same cursor goes on.
    let recent = AttemptQuery {
        since: Some(t - Duration::days(1)),
        ..AttemptQuery::of(sub)
    };
    let next = log
        .list(
            recent,
            &PageRequest {
                limit: 5,
                cursor: first.next_cursor,
            },
        )
        .await
        .unwrap();
    assert_eq!(next.items.len(), 2);
}
