//! Delivery statistics per webhook (`GET /api/hooks/webhooks/{id}/stats`): the worker counts each
//! attempt it makes into a five-minute bucket ([`StatsStore`](crate::ports::StatsStore)), and the
//! API adds up the buckets of a window. Reading the attempt log instead would cost up to 144k
//! records for a busy webhook's day; a day of buckets is at most 288 small items.
//!
//! Durations are counted in a fixed log-scale histogram ([`DURATION_BOUNDS_MS`]), so percentiles
//! are approximate: a reported percentile is the upper bound of the bin that holds it (the
//! Prometheus `le` convention) — exact up to 6 ms, at most a third above the true value beyond.

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::{Deserialize, Serialize};

use crate::delivery::{AttemptRecord, AttemptStatus};
use crate::ids::SubscriptionId;
use crate::ports::StatsStore;

/// The length of one bucket.
pub const BUCKET: Duration = Duration::minutes(5);
/// How long a bucket is kept (its TTL, after its start): the longest window is a day, plus room
/// for clock skew and DynamoDB's lazy TTL.
pub const BUCKET_TTL: Duration = Duration::days(2);

/// The histogram bins' inclusive upper bounds in milliseconds: bin `i` counts the durations `d`
/// with `DURATION_BOUNDS_MS[i - 1] < d <= DURATION_BOUNDS_MS[i]` (bin 0: `d <= 1`), and one more
/// bin counts everything above the last bound. 1–2–2.5–3–4–5–6–8 per decade from 10 ms (each
/// bound at most 4/3 of the one before), up to 1 000 s: above the longest delivery timeout
/// (`DELIVERY_TIMEOUT_SECONDS` ≤ 900), so a made attempt never lands in the overflow bin. Bins are
/// only ever appended (the DynamoDB adapter names them `h<index>`).
pub const DURATION_BOUNDS_MS: [u64; 58] = [
    1, 2, 3, 4, 5, 6, 8, //
    10, 12, 15, 20, 25, 30, 40, 50, 60, 80, //
    100, 120, 150, 200, 250, 300, 400, 500, 600, 800, //
    1_000, 1_200, 1_500, 2_000, 2_500, 3_000, 4_000, 5_000, 6_000, 8_000, //
    10_000, 12_000, 15_000, 20_000, 25_000, 30_000, 40_000, 50_000, 60_000, 80_000, //
    100_000, 120_000, 150_000, 200_000, 250_000, 300_000, 400_000, 500_000, 600_000,
    800_000, //
    1_000_000,
];

/// How many bins the histogram has (the bounds', and one for the overflow).
pub const BINS: usize = DURATION_BOUNDS_MS.len() + 1;

/// The bin a duration is counted in.
pub fn bin_of(duration_ms: u64) -> usize {
    DURATION_BOUNDS_MS.partition_point(|&bound| bound < duration_ms)
}

/// The start of the bucket `at` falls in.
pub fn bucket_start(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(BUCKET).unwrap_or(at)
}

/// One made attempt, as the stats count it (a skipped one is not counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptSample {
    pub subscription_id: SubscriptionId,
    pub at: DateTime<Utc>,
    pub succeeded: bool,
    pub duration_ms: u64,
}

/// One webhook's attempts in one five-minute bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsBucket {
    pub start: DateTime<Utc>,
    pub successes: u64,
    pub failures: u64,
    /// Attempts per duration bin ([`bin_of`]); `BINS` long.
    pub histogram: Vec<u64>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
}

impl StatsBucket {
    pub fn empty(start: DateTime<Utc>) -> Self {
        Self {
            start,
            successes: 0,
            failures: 0,
            histogram: vec![0; BINS],
            last_success_at: None,
            last_failure_at: None,
        }
    }

    /// Counts `sample` in (the in-memory adapter; DynamoDB adds atomically).
    pub fn add(&mut self, sample: &AttemptSample) {
        if sample.succeeded {
            self.successes += 1;
            self.last_success_at = self.last_success_at.max(Some(sample.at));
        } else {
            self.failures += 1;
            self.last_failure_at = self.last_failure_at.max(Some(sample.at));
        }
        self.histogram.resize(BINS, 0);
        self.histogram[bin_of(sample.duration_ms)] += 1;
    }
}

/// Counts a made attempt (skipped ones are not) in the webhook's stats: best effort, as the
/// worker calls it after the attempt-log write. A failed write is logged and loses that one count;
/// it never fails the job.
pub async fn count_attempt(store: &dyn StatsStore, record: &AttemptRecord) {
    let succeeded = match record.status {
        AttemptStatus::Succeeded => true,
        AttemptStatus::Failed => false,
        AttemptStatus::Skipped => return,
    };
    let sample = AttemptSample {
        subscription_id: record.subscription_id,
        at: record.at,
        succeeded,
        duration_ms: record.duration_ms,
    };
    if let Err(e) = store.record(&sample).await {
        tracing::warn!(subscription_id = %record.subscription_id, attempt = record.attempt, error = %e, "could not count the attempt in the webhook's stats");
    }
}

/// The figures of one window (`"1h"`, `"24h"`), as the API shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowStats {
    pub attempts: u64,
    pub successes: u64,
    pub failures: u64,
    /// `successes / attempts`, `None` without attempts.
    pub success_rate: Option<f64>,
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
}

/// The buckets a window of `length` ending at `now` adds up: the one `now` is in and those
/// before it, `length / BUCKET` in all (so a window reaches back between `length - BUCKET` and
/// `length`). Returns the first bucket's start.
pub fn window_start(now: DateTime<Utc>, length: Duration) -> DateTime<Utc> {
    bucket_start(now) + BUCKET - length
}

impl WindowStats {
    /// Adds up the buckets that start at or after `since`.
    pub fn of<'a>(
        buckets: impl IntoIterator<Item = &'a StatsBucket>,
        since: DateTime<Utc>,
    ) -> Self {
        let mut histogram = vec![0u64; BINS];
        let (mut successes, mut failures) = (0u64, 0u64);
        let (mut last_success_at, mut last_failure_at) = (None, None);
        for b in buckets.into_iter().filter(|b| b.start >= since) {
            successes += b.successes;
            failures += b.failures;
            for (sum, n) in histogram.iter_mut().zip(&b.histogram) {
                *sum += n;
            }
            last_success_at = last_success_at.max(b.last_success_at);
            last_failure_at = last_failure_at.max(b.last_failure_at);
        }
        let attempts = successes + failures;
        Self {
            attempts,
            successes,
            failures,
            success_rate: (attempts > 0).then(|| successes as f64 / attempts as f64),
            p50_ms: percentile(&histogram, 50),
            p95_ms: percentile(&histogram, 95),
            last_success_at,
            last_failure_at,
        }
    }
}

/// The `pct`-th percentile (nearest rank) of the histogram, as its bin's upper bound (the last
/// bound for the overflow bin); `None` for an empty histogram.
pub fn percentile(histogram: &[u64], pct: u64) -> Option<u64> {
    let total: u64 = histogram.iter().sum();
    if total == 0 {
        return None;
    }
    // Nearest rank: the smallest value with at least pct % of the samples at or below it.
    let rank = (total * pct).div_ceil(100).max(1);
    let mut seen = 0;
    for (i, n) in histogram.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some(DURATION_BOUNDS_MS[i.min(DURATION_BOUNDS_MS.len() - 1)]);
        }
    }
    DURATION_BOUNDS_MS.last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_sample(duration_ms: u64) -> Vec<u64> {
        let mut histogram = vec![0; BINS];
        histogram[bin_of(duration_ms)] += 1;
        histogram
    }

    #[test]
    fn bins_are_inclusive_upper_bounds_and_log_scale() {
        assert_eq!(bin_of(0), 0);
        assert_eq!(bin_of(1), 0);
        assert_eq!(bin_of(2), 1);
        assert_eq!(bin_of(7), 6);
        assert_eq!(bin_of(8), 6);
        assert_eq!(bin_of(1_000_000), DURATION_BOUNDS_MS.len() - 1);
        assert_eq!(bin_of(1_000_001), BINS - 1);
        // The longest delivery timeout (900 s) is within the bounds, at the same resolution.
        assert!(bin_of(900_000) < BINS - 1);
        assert_eq!(percentile(&one_sample(300_000), 95), Some(300_000));
        assert_eq!(percentile(&one_sample(900_000), 95), Some(1_000_000));
        for pair in DURATION_BOUNDS_MS.windows(2) {
            assert!(pair[0] < pair[1]);
            if pair[0] >= 6 {
                assert!(pair[1] * 3 <= pair[0] * 4, "{pair:?} wider than a third");
            }
        }
    }

    #[test]
    fn windows_add_up_their_buckets() {
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let sub = SubscriptionId::new_at(1);
        let mut old = StatsBucket::empty(bucket_start(t0));
        let mut new = StatsBucket::empty(bucket_start(t0 + Duration::hours(2)));
        for (i, ms) in [10u64, 20, 30, 40, 50, 60, 70, 80, 90, 1_000]
            .iter()
            .enumerate()
        {
            let bucket = if i < 5 { &mut old } else { &mut new };
            bucket.add(&AttemptSample {
                subscription_id: sub,
                at: bucket.start + Duration::seconds(i as i64),
                succeeded: i % 3 != 0,
                duration_ms: *ms,
            });
        }
        let now = t0 + Duration::hours(2) + Duration::minutes(1);
        let day = WindowStats::of([&old, &new], window_start(now, Duration::hours(24)));
        assert_eq!((day.attempts, day.successes, day.failures), (10, 6, 4));
        assert_eq!(day.success_rate, Some(0.6));
        assert_eq!((day.p50_ms, day.p95_ms), (Some(50), Some(1_000)));
        assert_eq!(day.last_failure_at, Some(new.start + Duration::seconds(9)));
        let hour = WindowStats::of([&old, &new], window_start(now, Duration::hours(1)));
        assert_eq!((hour.attempts, hour.p50_ms), (5, Some(80)));
        let none = WindowStats::of([], now);
        assert_eq!((none.success_rate, none.p95_ms), (None, None));
    }
}
