//! The local stack's bounded embedded store (memory only: DynamoDB expires items by TTL instead).
//! Within capacity it behaves as the unbounded store; beyond it the oldest entries go.

use chrono::Duration;
use relay_shared::adapters::memory::bounded_memory_stores;
use relay_shared::delivery::AttemptStatus;
use relay_shared::ids::SubscriptionId;
use relay_shared::ports::{AttemptQuery, Claim, PageRequest, Term};

use crate::fixtures::{attempt, call, now};

#[tokio::test]
async fn bounded_stores_forget_the_oldest_entries_beyond_capacity() {
    let stores = bounded_memory_stores(3);
    let t = now();

    // Calls: the three most recently written are kept; rewriting call-0 keeps it.
    for i in 0..3 {
        let id = format!("call-{i}");
        stores.calls.put(&call(&id, 1, "created", t)).await.unwrap();
    }
    stores
        .calls
        .put(&call("call-0", 2, "updated", t))
        .await
        .unwrap();
    stores
        .calls
        .put(&call("call-3", 1, "created", t))
        .await
        .unwrap();
    assert_eq!(stores.calls.get("call-1").await.unwrap(), None);
    for kept in ["call-0", "call-2", "call-3"] {
        assert!(stores.calls.get(kept).await.unwrap().is_some(), "{kept}");
    }

    // Dedupe: 2 × capacity keys.
    let (lease, expiry) = (
        Term::new(t, t + Duration::seconds(60)),
        t + Duration::hours(1),
    );
    let dedupe = &stores.dedupe;
    for i in 0..7 {
        let key = format!("k{i}");
        assert_eq!(
            dedupe.claim(&key, lease, expiry).await.unwrap(),
            Claim::Claimed
        );
        stores.dedupe.complete(&key, expiry).await.unwrap();
    }
    assert_eq!(
        dedupe.claim("k6", lease, expiry).await.unwrap(),
        Claim::Done
    );
    assert_eq!(
        dedupe.claim("k1", lease, expiry).await.unwrap(),
        Claim::Done
    );
    // k0 was the oldest of seven and is forgotten, so it can be claimed again.
    assert_eq!(
        dedupe.claim("k0", lease, expiry).await.unwrap(),
        Claim::Claimed
    );

    // Attempts: the newest `capacity` per subscription, newest first.
    let (a, b) = (SubscriptionId::new_at(1), SubscriptionId::new_at(2));
    for ms in 1..=5u64 {
        let rec = attempt(a, 1_000 + ms, 1, AttemptStatus::Failed);
        stores
            .attempts
            .record(&rec, t + Duration::days(1))
            .await
            .unwrap();
    }
    let rec = attempt(b, 2_000, 1, AttemptStatus::Succeeded);
    stores
        .attempts
        .record(&rec, t + Duration::days(1))
        .await
        .unwrap();
    let page = PageRequest {
        limit: 10,
        cursor: None,
    };
    let kept = stores
        .attempts
        .list(AttemptQuery::of(a), &page)
        .await
        .unwrap();
    let at: Vec<i64> = kept.items.iter().map(|r| r.at.timestamp_millis()).collect();
    assert_eq!(at, [1_005, 1_004, 1_003]);
    let other = stores
        .attempts
        .list(AttemptQuery::of(b), &page)
        .await
        .unwrap();
    assert_eq!(
        other.items.len(),
        1,
        "another subscription's log is separate"
    );
}
