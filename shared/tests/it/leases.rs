use chrono::Duration;
use relay_shared::ports::Term;

use crate::fixtures::now;
use crate::harness::StoreEnv;

pub async fn contention_and_expiry(env: StoreEnv) {
    let l = &env.stores.leases;
    let t = now();
    let s = Duration::seconds;
    // A lease from `from` to `until`, in seconds after `t`.
    let term = |from, until| Term::new(t + s(from), t + s(until));

    assert!(l.acquire("poller", "a", term(0, 30)).await.unwrap());
    assert!(!l.acquire("poller", "b", term(1, 31)).await.unwrap());
    // The holder renews.
    assert!(l.acquire("poller", "a", term(10, 40)).await.unwrap());
    assert!(!l.acquire("poller", "b", term(35, 65)).await.unwrap());
    // Another lease name is independent.
    assert!(l.acquire("other", "b", term(35, 65)).await.unwrap());

    // Expired: someone else takes it.
    assert!(l.acquire("poller", "b", term(41, 70)).await.unwrap());
    assert!(!l.acquire("poller", "a", term(42, 72)).await.unwrap());
    // Releasing a lease you do not hold changes nothing.
    l.release("poller", "a").await.unwrap();
    assert!(!l.acquire("poller", "a", term(43, 73)).await.unwrap());
    l.release("poller", "b").await.unwrap();
    assert!(l.acquire("poller", "a", term(44, 74)).await.unwrap());

    // Two contenders at the same instant: exactly one wins.
    let (x, y) = tokio::join!(
        l.acquire("race", "x", term(0, 30)),
        l.acquire("race", "y", term(0, 30))
    );
    assert!(
        x.unwrap() ^ y.unwrap(),
        "exactly one contender holds the lease"
    );
}
