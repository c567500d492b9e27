//! Retention: TTL deletion is lazy (never, on DynamoDB Local), so every reader of an item with
//! `expires_at` must skip expired items itself. The event and attempt logs do on both backends
//! (`logs_skip_expired_items`, in the conformance list); the call state on DynamoDB
//! (`call_state_skips_expired_records`; the in-memory call store is bounded by count instead).

use chrono::Duration;
use relay_shared::delivery::AttemptStatus;
use relay_shared::ids::SubscriptionId;
use relay_shared::ports::{AttemptQuery, EventFilter, EventQuery, PageRequest};

use crate::fixtures::{attempt, call, event, millis, now};
use crate::harness::{self, StoreEnv};

/// The event log and the attempt log: an item recorded with an `expires_at` already passed (a
/// retention shorter than its age) is skipped by every reader, and does not count towards a page.
pub async fn logs_skip_expired_items(env: StoreEnv) {
    let t = now();
    let past = t - Duration::seconds(5);
    let future = t + Duration::hours(1);

    // Attempt log: expired attempts are not listed, and do not count towards a page.
    let sub = SubscriptionId::new_at(millis(t));
    let live: Vec<_> = (0..3)
        .map(|i| attempt(sub, millis(t) + i * 10, 1, AttemptStatus::Failed))
        .collect();
    let mut stale_ids = Vec::new();
    for (i, a) in live.iter().enumerate() {
        env.stores.attempts.record(a, future).await.unwrap();
        let stale = attempt(sub, millis(t) + i as u64 * 10 + 5, 1, AttemptStatus::Failed);
        env.stores.attempts.record(&stale, past).await.unwrap();
        stale_ids.push(stale.id);
    }
    // Looked up by id: absent once expired, present while not.
    for id in &stale_ids {
        assert_eq!(env.stores.attempts.get(&sub, id).await.unwrap(), None);
    }
    assert_eq!(
        env.stores.attempts.get(&sub, &live[0].id).await.unwrap(),
        Some(live[0].clone())
    );
    let page = env
        .stores
        .attempts
        .list(
            AttemptQuery::of(sub),
            &PageRequest {
                limit: 3,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items, live.iter().rev().cloned().collect::<Vec<_>>());
    assert_eq!(page.next_cursor, None);

    // Event log.
    let kept = event("org-1", t);
    env.stores.events.append(&kept, future).await.unwrap();
    let gone = event("org-1", t + Duration::seconds(1));
    env.stores.events.append(&gone, past).await.unwrap();
    assert_eq!(
        env.stores.events.get("org-1", &gone.id).await.unwrap(),
        None
    );
    assert_eq!(
        env.stores.events.get("org-1", &kept.id).await.unwrap(),
        Some(kept.clone())
    );
    let page = env
        .stores
        .events
        .page(
            "org-1",
            EventFilter::default(),
            &PageRequest {
                limit: 10,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        page.items,
        vec![kept.clone()],
        "the paged listing skips it too"
    );
    assert_eq!(
        env.stores
            .events
            .list("org-1", EventQuery::new(t, t + Duration::seconds(10), 10))
            .await
            .unwrap(),
        vec![kept]
    );
}

#[tokio::test]
async fn call_state_skips_expired_records() {
    let Some(env) = harness::stores::aws("aws::expiry::call_state_skips_expired_records").await
    else {
        return;
    };
    let t = now();
    let past = t - Duration::seconds(5);

    // Call state: an expired record reads as absent, and version 1 may replace it.
    let mut expired = call("call-old", 1, "created", t);
    expired.expires_at = past.timestamp();
    env.stores.calls.put(&expired).await.unwrap();
    assert_eq!(env.stores.calls.get("call-old").await.unwrap(), None);
    let fresh = call("call-old", 1, "created", t);
    env.stores.calls.put(&fresh).await.unwrap();
    assert_eq!(env.stores.calls.get("call-old").await.unwrap(), Some(fresh));
}
