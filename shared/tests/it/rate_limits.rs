use chrono::{Duration, DurationRound};
use relay_shared::ids::SubscriptionId;
use relay_shared::ports::RateWindow;

use crate::fixtures::{millis, now};
use crate::harness::StoreEnv;

pub async fn limit_and_independent_windows(env: StoreEnv) {
    let r = &env.stores.rate_limits;
    let window = now().duration_trunc(Duration::minutes(1)).unwrap();
    let a = SubscriptionId::new_at(millis(window));
    let b = SubscriptionId::new_at(millis(window) + 1);

    for _ in 0..3 {
        assert!(r.try_acquire(&a, RateWindow::new(window, 3)).await.unwrap());
    }
    assert!(!r.try_acquire(&a, RateWindow::new(window, 3)).await.unwrap());
    assert!(!r.try_acquire(&a, RateWindow::new(window, 3)).await.unwrap());
    // The next window, and another subscription, count separately.
    assert!(r
        .try_acquire(&a, RateWindow::new(window + Duration::minutes(1), 3))
        .await
        .unwrap());
    assert!(r.try_acquire(&b, RateWindow::new(window, 3)).await.unwrap());
    // A limit of zero admits nothing.
    assert!(!r
        .try_acquire(&b, RateWindow::new(window + Duration::minutes(2), 0))
        .await
        .unwrap());
}

pub async fn concurrent_acquires_never_exceed(env: StoreEnv) {
    let window = now().duration_trunc(Duration::minutes(1)).unwrap();
    let sub = SubscriptionId::new_at(millis(window));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let r = env.stores.rate_limits.clone();
            tokio::spawn(async move {
                r.try_acquire(&sub, RateWindow::new(window, 5))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut admitted = 0;
    for t in tasks {
        admitted += usize::from(t.await.unwrap());
    }
    assert_eq!(admitted, 5);
}

/// The API's quota counters (`test#<webhook>`, `test#org#<org>`, …) are independent of each other
/// and of the subscription's delivery counter.
pub async fn named_counters_are_independent(env: StoreEnv) {
    let r = &env.stores.rate_limits;
    let window = now().duration_trunc(Duration::minutes(1)).unwrap();
    let sub = SubscriptionId::new_at(millis(window) + 7);
    let per_webhook = format!("test#{sub}");
    assert!(r
        .try_acquire_named(&per_webhook, RateWindow::new(window, 1))
        .await
        .unwrap());
    assert!(!r
        .try_acquire_named(&per_webhook, RateWindow::new(window, 1))
        .await
        .unwrap());
    assert!(r
        .try_acquire_named("test#org#some org/with:chars", RateWindow::new(window, 1))
        .await
        .unwrap());
    assert!(r
        .try_acquire(&sub, RateWindow::new(window, 1))
        .await
        .unwrap());
}

/// Delivery slots: the n-th reservation gets the n-th slot after `earliest`; a later `earliest`
/// (the backlog drained) starts again from there; concurrent reservations never share a slot.
pub async fn slots_are_consecutive_and_never_shared(env: StoreEnv) {
    let r = &env.stores.rate_limits;
    let t0 = now().duration_trunc(Duration::milliseconds(1)).unwrap();
    let sub = SubscriptionId::new_at(millis(t0) + 11);
    let step = Duration::seconds(6);
    assert_eq!(r.next_free_slot(&sub).await.unwrap(), None);
    for i in 0..3 {
        assert_eq!(
            r.reserve_slots(&sub, t0, step, 1).await.unwrap(),
            t0 + step * i
        );
    }
    assert_eq!(r.next_free_slot(&sub).await.unwrap(), Some(t0 + step * 3));
    // A block of slots (a replay's jobs) moves the next free slot past all of them.
    assert_eq!(
        r.reserve_slots(&sub, t0, step, 5).await.unwrap(),
        t0 + step * 3
    );
    assert_eq!(r.next_free_slot(&sub).await.unwrap(), Some(t0 + step * 8));
    let later = t0 + Duration::minutes(10);
    assert_eq!(r.reserve_slots(&sub, later, step, 1).await.unwrap(), later);

    let other = SubscriptionId::new_at(millis(t0) + 12);
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let r = env.stores.rate_limits.clone();
            tokio::spawn(async move { r.reserve_slots(&other, t0, step, 1).await.unwrap() })
        })
        .collect();
    let mut slots = Vec::new();
    for t in tasks {
        slots.push(t.await.unwrap());
    }
    slots.sort();
    assert_eq!(slots, (0..10).map(|i| t0 + step * i).collect::<Vec<_>>());
}

/// A token given back (a duplicate copy that made no attempt) can be taken again; a give-back
/// never goes below zero nor creates a window.
pub async fn a_token_given_back_is_counted_again(env: StoreEnv) {
    let r = &env.stores.rate_limits;
    let window = now().duration_trunc(Duration::minutes(1)).unwrap();
    let sub = SubscriptionId::new_at(millis(window) + 7);
    let w = RateWindow::new(window, 2);
    // Nothing counted yet: a give-back leaves the window empty (still 2 to take).
    r.give_back(&sub, w).await.unwrap();
    assert!(r.try_acquire(&sub, w).await.unwrap());
    assert!(r.try_acquire(&sub, w).await.unwrap());
    assert!(!r.try_acquire(&sub, w).await.unwrap());
    r.give_back(&sub, w).await.unwrap();
    assert!(
        r.try_acquire(&sub, w).await.unwrap(),
        "the given-back token"
    );
    assert!(!r.try_acquire(&sub, w).await.unwrap());
    // Down to zero and no further.
    for _ in 0..3 {
        r.give_back(&sub, w).await.unwrap();
    }
    assert!(r.try_acquire(&sub, w).await.unwrap());
    assert!(r.try_acquire(&sub, w).await.unwrap());
    assert!(!r.try_acquire(&sub, w).await.unwrap());
}
