use chrono::Duration;
use relay_shared::ids::SubscriptionId;
use relay_shared::stats::{
    bin_of, bucket_start, window_start, AttemptSample, WindowStats, BINS, BUCKET,
};

use crate::fixtures::{millis, now};
use crate::harness::StoreEnv;

fn sample(
    sub: SubscriptionId,
    at: chrono::DateTime<chrono::Utc>,
    ok: bool,
    ms: u64,
) -> AttemptSample {
    AttemptSample {
        subscription_id: sub,
        at,
        succeeded: ok,
        duration_ms: ms,
    }
}

/// Each attempt lands in its five-minute bucket: counters, histogram bins and the last times; a
/// listing returns the buckets from `since` on, oldest first, one webhook's only.
pub async fn buckets_count_per_five_minutes(env: StoreEnv) {
    let stats = env.stores.stats.as_ref();
    let t = now();
    let sub = SubscriptionId::new_at(millis(t));
    let other = SubscriptionId::new_at(millis(t) + 1);
    let here = bucket_start(t);
    let before = here - BUCKET;
    for s in [
        sample(sub, here, true, 10),
        sample(sub, here + Duration::seconds(2), true, 11),
        sample(sub, here + Duration::seconds(1), false, 2_500),
        sample(sub, before + Duration::seconds(7), false, 0),
        sample(other, here, true, 5),
    ] {
        stats.record(&s).await.unwrap();
    }
    let buckets = stats.buckets(&sub, before).await.unwrap();
    assert_eq!(buckets.len(), 2);
    let (old, new) = (&buckets[0], &buckets[1]);
    assert_eq!((old.start, new.start), (before, here));
    assert_eq!((new.successes, new.failures), (2, 1));
    assert_eq!((old.successes, old.failures), (0, 1));
    assert_eq!(new.histogram.len(), BINS);
    assert_eq!(new.histogram[bin_of(10)], 1);
    assert_eq!(new.histogram[bin_of(11)], 1);
    assert_eq!(new.histogram[bin_of(2_500)], 1);
    assert_eq!(new.histogram.iter().sum::<u64>(), 3);
    assert_eq!(new.last_success_at, Some(here + Duration::seconds(2)));
    assert_eq!(new.last_failure_at, Some(here + Duration::seconds(1)));
    assert_eq!(old.last_success_at, None);
    // From a later `since`: only the current bucket.
    assert_eq!(
        stats.buckets(&sub, here).await.unwrap(),
        std::slice::from_ref(new)
    );
    let hour = WindowStats::of(&buckets, window_start(t, Duration::hours(1)));
    assert_eq!(
        (hour.attempts, hour.p50_ms, hour.p95_ms),
        (4, Some(10), Some(2_500))
    );
    assert!(stats
        .buckets(&SubscriptionId::new_at(1), before)
        .await
        .unwrap()
        .is_empty());
}

/// Concurrent workers counting into one bucket lose nothing (one atomic update each).
pub async fn concurrent_counts_are_never_lost(env: StoreEnv) {
    let stats = env.stores.stats.clone();
    let t = now();
    let sub = SubscriptionId::new_at(millis(t) + 2);
    let at = bucket_start(t);
    let tasks: Vec<_> = (0..20u64)
        .map(|i| {
            let stats = stats.clone();
            tokio::spawn(async move {
                stats
                    .record(&sample(sub, at, i % 4 != 0, i * 10))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let b = stats.buckets(&sub, at).await.unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!((b[0].successes, b[0].failures), (15, 5));
    assert_eq!(b[0].histogram.iter().sum::<u64>(), 20);
}

/// An attempt that started earlier but is recorded after a later one (a slow receiver, or two
/// workers) never moves the last success or failure back; racing records settle on the latest.
pub async fn last_times_never_go_backwards(env: StoreEnv) {
    let stats = env.stores.stats.clone();
    let t = now();
    let sub = SubscriptionId::new_at(millis(t) + 3);
    let here = bucket_start(t);
    for s in [
        sample(sub, here + Duration::seconds(10), true, 5),
        sample(sub, here + Duration::seconds(5), true, 30_000),
        sample(sub, here + Duration::seconds(20), false, 5),
        sample(sub, here + Duration::seconds(3), false, 30_000),
    ] {
        stats.record(&s).await.unwrap();
    }
    let b = stats.buckets(&sub, here).await.unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].last_success_at, Some(here + Duration::seconds(10)));
    assert_eq!(b[0].last_failure_at, Some(here + Duration::seconds(20)));
    assert_eq!((b[0].successes, b[0].failures), (2, 2));
    // Racing out-of-order records: the latest of them is what stays.
    let tasks: Vec<_> = (0..16i64)
        .map(|i| {
            let stats = stats.clone();
            let at = here + Duration::seconds(30 + (i * 7) % 16);
            tokio::spawn(async move { stats.record(&sample(sub, at, true, 1)).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let b = stats.buckets(&sub, here).await.unwrap();
    assert_eq!(b[0].last_success_at, Some(here + Duration::seconds(45)));
}
