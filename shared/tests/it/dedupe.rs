use chrono::Duration;
use relay_shared::ports::Claim;

use crate::fixtures::now;
use crate::harness::StoreEnv;

pub async fn claim_complete_release(env: StoreEnv) {
    let d = &env.stores.dedupe;
    let t = now();
    let lease = t + Duration::seconds(30);
    let keep = t + Duration::days(1);

    assert_eq!(d.claim("k1", t, lease, keep).await.unwrap(), Claim::Claimed);
    assert_eq!(
        d.claim("k1", t + Duration::seconds(1), lease, keep)
            .await
            .unwrap(),
        Claim::InProgress
    );
    d.complete("k1", keep).await.unwrap();
    assert_eq!(
        d.claim("k1", t + Duration::seconds(2), lease, keep)
            .await
            .unwrap(),
        Claim::Done
    );
    // Releasing a completed key does not undo it.
    d.release("k1").await.unwrap();
    assert_eq!(
        d.claim("k1", t + Duration::seconds(3), lease, keep)
            .await
            .unwrap(),
        Claim::Done
    );

    // A released claim can be taken again at once.
    assert_eq!(d.claim("k2", t, lease, keep).await.unwrap(), Claim::Claimed);
    d.release("k2").await.unwrap();
    assert_eq!(
        d.claim("k2", t + Duration::seconds(1), lease, keep)
            .await
            .unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        d.claim("k2", t + Duration::seconds(2), lease, keep)
            .await
            .unwrap(),
        Claim::InProgress
    );

    // Releasing an unknown key is a no-op.
    d.release("never-claimed").await.unwrap();
}

pub async fn expired_claims_are_reclaimable(env: StoreEnv) {
    let d = &env.stores.dedupe;
    let t = now();
    let keep = t + Duration::days(1);

    // The claimer crashed: after its lease runs out, a retry claims.
    assert_eq!(
        d.claim("k3", t, t + Duration::seconds(30), keep)
            .await
            .unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        d.claim(
            "k3",
            t + Duration::seconds(29),
            t + Duration::seconds(60),
            keep
        )
        .await
        .unwrap(),
        Claim::InProgress
    );
    assert_eq!(
        d.claim(
            "k3",
            t + Duration::seconds(31),
            t + Duration::seconds(61),
            keep
        )
        .await
        .unwrap(),
        Claim::Claimed
    );
    // …and now that claim's lease holds.
    assert_eq!(
        d.claim(
            "k3",
            t + Duration::seconds(32),
            t + Duration::seconds(62),
            keep
        )
        .await
        .unwrap(),
        Claim::InProgress
    );

    // A done record that expired (TTL not run yet) no longer dedupes.
    assert_eq!(
        d.claim("k4", t, t + Duration::seconds(30), keep)
            .await
            .unwrap(),
        Claim::Claimed
    );
    d.complete("k4", t + Duration::seconds(10)).await.unwrap();
    assert_eq!(
        d.claim(
            "k4",
            t + Duration::seconds(9),
            t + Duration::seconds(40),
            keep
        )
        .await
        .unwrap(),
        Claim::Done
    );
    assert_eq!(
        d.claim(
            "k4",
            t + Duration::seconds(11),
            t + Duration::seconds(41),
            keep
        )
        .await
        .unwrap(),
        Claim::Claimed
    );
}
