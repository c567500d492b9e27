use chrono::Duration;
use relay_shared::ports::{Claim, Term};

use crate::fixtures::now;
use crate::harness::StoreEnv;

pub async fn claim_complete_release(env: StoreEnv) {
    let d = &env.stores.dedupe;
    let t = now();
    // A claim's lease from `from` to `until`, in seconds after `t`.
    let term = |from, until| Term::new(t + Duration::seconds(from), t + Duration::seconds(until));
    let keep = t + Duration::days(1);

    assert_eq!(
        d.claim("k1", term(0, 30), keep).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        d.claim("k1", term(1, 30), keep).await.unwrap(),
        Claim::InProgress
    );
    d.complete("k1", keep).await.unwrap();
    assert_eq!(d.claim("k1", term(2, 30), keep).await.unwrap(), Claim::Done);
    // Releasing a completed key does not undo it.
    d.release("k1").await.unwrap();
    assert_eq!(d.claim("k1", term(3, 30), keep).await.unwrap(), Claim::Done);

    // A released claim can be taken again at once.
    assert_eq!(
        d.claim("k2", term(0, 30), keep).await.unwrap(),
        Claim::Claimed
    );
    d.release("k2").await.unwrap();
    assert_eq!(
        d.claim("k2", term(1, 30), keep).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        d.claim("k2", term(2, 30), keep).await.unwrap(),
        Claim::InProgress
    );

    // Releasing an unknown key is a no-op.
    d.release("never-claimed").await.unwrap();
}

pub async fn expired_claims_are_reclaimable(env: StoreEnv) {
    let d = &env.stores.dedupe;
    let t = now();
    // A claim's lease from `from` to `until`, in seconds after `t`.
    let term = |from, until| Term::new(t + Duration::seconds(from), t + Duration::seconds(until));
    let keep = t + Duration::days(1);

    // The claimer crashed: after its lease runs out, a retry claims.
    assert_eq!(
        d.claim("k3", term(0, 30), keep).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        d.claim("k3", term(29, 60), keep).await.unwrap(),
        Claim::InProgress
    );
    assert_eq!(
        d.claim("k3", term(31, 61), keep).await.unwrap(),
        Claim::Claimed
    );
    // …and now that claim's lease holds.
    assert_eq!(
        d.claim("k3", term(32, 62), keep).await.unwrap(),
        Claim::InProgress
    );

    // A done record that expired (TTL not run yet) no longer dedupes.
    assert_eq!(
        d.claim("k4", term(0, 30), keep).await.unwrap(),
        Claim::Claimed
    );
    d.complete("k4", t + Duration::seconds(10)).await.unwrap();
    assert_eq!(d.claim("k4", term(9, 40), keep).await.unwrap(), Claim::Done);
    assert_eq!(
        d.claim("k4", term(11, 41), keep).await.unwrap(),
        Claim::Claimed
    );
}
