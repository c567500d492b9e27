use chrono::Duration;

use crate::fixtures::now;
use crate::harness::StoreEnv;

pub async fn contention_and_expiry(env: StoreEnv) {
    let l = &env.stores.leases;
    let t = now();
    let s = Duration::seconds;

    assert!(l.acquire("poller", "a", t, t + s(30)).await.unwrap());
    assert!(!l.acquire("poller", "b", t + s(1), t + s(31)).await.unwrap());
    // The holder renews.
    assert!(l
        .acquire("poller", "a", t + s(10), t + s(40))
        .await
        .unwrap());
    assert!(!l
        .acquire("poller", "b", t + s(35), t + s(65))
        .await
        .unwrap());
    // Another lease name is independent.
    assert!(l.acquire("other", "b", t + s(35), t + s(65)).await.unwrap());

    // Expired: someone else takes it.
    assert!(l
        .acquire("poller", "b", t + s(41), t + s(70))
        .await
        .unwrap());
    assert!(!l
        .acquire("poller", "a", t + s(42), t + s(72))
        .await
        .unwrap());
    // Releasing a lease you do not hold changes nothing.
    l.release("poller", "a").await.unwrap();
    assert!(!l
        .acquire("poller", "a", t + s(43), t + s(73))
        .await
        .unwrap());
    l.release("poller", "b").await.unwrap();
    assert!(l
        .acquire("poller", "a", t + s(44), t + s(74))
        .await
        .unwrap());

    // Two contenders at the same instant: exactly one wins.
    let (x, y) = tokio::join!(
        l.acquire("race", "x", t, t + s(30)),
        l.acquire("race", "y", t, t + s(30))
    );
    assert!(
        x.unwrap() ^ y.unwrap(),
        "exactly one contender holds the lease"
    );
}
