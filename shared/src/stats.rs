//! Delivery statistics per webhook (`GET /api/hooks/webhooks/{id}/stats`), computed from the
//! attempt log ([`AttemptLog`]): nothing is written per attempt. A read adds up five-minute
//! buckets; those that are *closed* (their end plus [`RECORDING_GRACE`] has passed, so no attempt
//! of theirs can still be recorded) are materialised by the read that first sees them closed
//! ([`StatsStore::materialise`]: the bucket, then a watermark "materialised up to T"), so the next
//! read takes them as they are and reads only the attempt records since the watermark. The open
//! buckets are counted live from the records, every read. The records are read oldest first and
//! what a page has read past is materialised at once, so that a long catch-up is done over
//! several reads, each bounded ([`RECORD_BUDGET`]).
//!
//! Durations are counted in a fixed log-scale histogram ([`DURATION_BOUNDS_MS`]), so percentiles
//! are approximate: a reported percentile is the upper bound of the bin that holds it (the
//! Prometheus `le` convention) — exact up to 6 ms, at most a third above the true value beyond.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::{Deserialize, Serialize};

use crate::delivery::{AttemptRecord, AttemptStatus};
use crate::error::StoreError;
use crate::ids::SubscriptionId;
use crate::ports::{AttemptLog, AttemptQuery, PageRequest, StatsStore, PAGE_SCAN_BUDGET};

/// The length of one bucket.
pub const BUCKET: Duration = Duration::minutes(5);
/// How long a materialised bucket (and the watermark, from its last move) is kept (its TTL,
/// after its start): the longest window is a day, plus room for clock skew and DynamoDB's lazy
/// TTL.
pub const BUCKET_TTL: Duration = Duration::days(2);
/// How long after its end a bucket is closed: the longest an attempt can take to be recorded. An
/// attempt record carries the attempt's start (`at`) and is written after the request, so it can
/// appear up to the delivery timeout after `at` — at most 900 s (`DELIVERY_TIMEOUT_SECONDS`'
/// bound, whatever a deployment sets: the API does not read the worker's setting) — plus a minute
/// for the worker's own calls around it and clock skew between containers.
pub const RECORDING_GRACE: Duration = Duration::seconds(900 + 60);

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

impl AttemptSample {
    /// The attempt record as the stats count it; `None` for a skipped attempt (no request made).
    pub fn of(record: &AttemptRecord) -> Option<Self> {
        let succeeded = match record.status {
            AttemptStatus::Succeeded => true,
            AttemptStatus::Failed => false,
            AttemptStatus::Skipped => return None,
        };
        Some(Self {
            subscription_id: record.subscription_id,
            at: record.at,
            succeeded,
            duration_ms: record.duration_ms,
        })
    }
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

    /// Counts `sample` in.
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

/// The materialised part of a webhook's stats ([`StatsStore::materialised`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Materialised {
    /// Every bucket that starts before this instant (a bucket boundary) is materialised, an
    /// empty one by its absence; `None`: nothing yet (or expired).
    pub upto: Option<DateTime<Utc>>,
    /// The materialised buckets asked for, oldest first. One at or after `upto` is a leftover of
    /// a read that stopped before moving the watermark: readers ignore it (they count that time
    /// from the records again).
    pub buckets: Vec<StatsBucket>,
}

/// The end of the latest bucket closed at `now`: a bucket `[s, s + BUCKET)` is closed once
/// `s + BUCKET + RECORDING_GRACE <= now`.
pub fn closed_until(now: DateTime<Utc>) -> DateTime<Utc> {
    bucket_start(now - RECORDING_GRACE)
}

/// The most records of *closed* buckets one stats read reads ([`webhook_stats`]) before it
/// stops: 20 pages of [`PAGE_SCAN_BUDGET`]. At the default rate limit (100 attempts a minute, not
/// a bound: `MAX_RATE_LIMIT_PER_MINUTE` allows more) that is 1 h 40 min of attempts and ≈ 2,000
/// RRU. Not counted against it, and read by every GET: the open buckets' records (the last
/// 16–21 minutes, ≈ 2,100 at 100 a minute; at most the webhook's rate × (`BUCKET` +
/// [`RECORDING_GRACE`]), made and skipped attempts alike). A read stops only after it has
/// materialised at least one bucket, so it may also read past the budget to the end of the
/// bucket it is in (at most one bucket's records, rate × 5 min): one read reads at most
/// budget + one bucket + one page + the open buckets' records, and every read makes progress. The bound is for the API function's 29 s timeout at its
/// 128 MB (a small fraction of a vCPU: each record is parsed from its item and its `doc`), with a
/// wide margin, not measured on Lambda — a read cut short by the timeout keeps its progress
/// anyway. It bounds the catch-up of a webhook whose records since the watermark are many (the
/// first GET after a deploy, after two days without one, or a busy webhook not read for hours):
/// each GET goes on where the last one stopped, so a whole day at the highest rate (≈ 144,000
/// records) takes 15.
pub const RECORD_BUDGET: usize = 20 * PAGE_SCAN_BUDGET;

/// How a stats read pages through the attempt log: the page size (items asked per `Query`) and
/// the record budget. Tests make both small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    pub page: u32,
    pub budget: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            page: PAGE_SCAN_BUDGET as u32,
            budget: RECORD_BUDGET,
        }
    }
}

/// A webhook's figures over the last hour and day, and what reading them took.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookStats {
    pub hour: WindowStats,
    pub day: WindowStats,
    /// Materialised buckets read (of the day's, at most 288).
    pub buckets_read: usize,
    /// Attempt records read: those since the watermark (or the day's start).
    pub attempts_read: usize,
    /// Buckets materialised by this read (closed since the last one, with attempts).
    pub buckets_written: usize,
    /// The watermark as this read left it (`None`: still none).
    pub materialised_upto: Option<DateTime<Utc>>,
    /// `Some(t)`: the read stopped at its record budget ([`ReadLimits::budget`]) with the records
    /// from `t` on still unread, so `hour` and `day` miss those attempts — the newest ones, as
    /// the records are read oldest first. What it read before `t` is materialised (up to the
    /// closed buckets), and the next read goes on from there. `None`: the figures are exact.
    pub unread_from: Option<DateTime<Utc>>,
}

impl WebhookStats {
    /// Do `hour` and `day` count every attempt of their windows?
    pub fn is_complete(&self) -> bool {
        self.unread_from.is_none()
    }
}

/// The figures of `GET …/stats` at `now` ([`webhook_stats_with`] with the default limits).
pub async fn webhook_stats(
    stats: &dyn StatsStore,
    attempts: &dyn AttemptLog,
    subscription_id: &SubscriptionId,
    now: DateTime<Utc>,
) -> Result<WebhookStats, StoreError> {
    webhook_stats_with(stats, attempts, subscription_id, now, ReadLimits::default()).await
}

/// The figures of `GET …/stats` at `now`: the day's materialised buckets and the watermark (one
/// Query), plus the webhook's attempt records since the watermark, **oldest first**, one page at
/// a time, counted into buckets. After each page the closed buckets it has read past (every
/// record before the page's last one has been read: the ids carry `at`, and the listing is in id
/// order) are materialised and the watermark moved past them, so a read cut short — by the
/// function's timeout, a failed page, or `limits.budget` — keeps what it did, and the next one
/// starts there. Writes are best effort: a failed one is logged, the read writes nothing more
/// (the watermark must not pass a bucket that was not written) and the next read counts that
/// time from the records again.
pub async fn webhook_stats_with(
    stats: &dyn StatsStore,
    attempts: &dyn AttemptLog,
    subscription_id: &SubscriptionId,
    now: DateTime<Utc>,
    limits: ReadLimits,
) -> Result<WebhookStats, StoreError> {
    let day_start = window_start(now, Duration::hours(24));
    let stored = stats.materialised(subscription_id, day_start).await?;
    // From the watermark on the records count, before it the materialised buckets.
    let from = stored.upto.map_or(day_start, |t| t.max(day_start));
    let mut buckets: BTreeMap<DateTime<Utc>, StatsBucket> = stored
        .buckets
        .iter()
        .filter(|b| b.start < from)
        .map(|b| (b.start, b.clone()))
        .collect();
    let buckets_read = stored.buckets.len();
    let closed = closed_until(now);
    let mut counted: BTreeMap<DateTime<Utc>, StatsBucket> = BTreeMap::new();
    let mut attempts_read = 0;
    // The records of closed buckets read: only these count against `limits.budget`. The open
    // buckets' records (at or after `closed`) are read by every GET anyway, can never be
    // materialised, and are bounded by the webhook's rate × (`BUCKET` + `RECORDING_GRACE`):
    // counting them would let a busy webhook's open buckets alone use up the budget, and every
    // GET would stop there, materialise nothing and answer 503 forever.
    let mut closed_read = 0;
    let mut buckets_written = 0;
    let mut mark = stored.upto;
    // Materialised by this read up to here (from `from`); `None` after a failed write.
    let mut written_to = Some(from);
    // Every record before this instant has been read.
    let mut read_to = from;
    let query = AttemptQuery {
        since: Some(from),
        oldest_first: true,
        ..AttemptQuery::of(*subscription_id)
    };
    let mut page = PageRequest {
        limit: limits.page,
        cursor: None,
    };
    let unread_from = loop {
        let found = attempts.list(query, &page).await?;
        attempts_read += found.items.len();
        closed_read += found.items.iter().filter(|a| a.at < closed).count();
        if let Some(last) = found.items.last() {
            read_to = read_to.max(last.at);
        }
        for sample in found.items.iter().filter_map(AttemptSample::of) {
            let start = bucket_start(sample.at);
            counted
                .entry(start)
                .or_insert_with(|| StatsBucket::empty(start))
                .add(&sample);
        }
        // The closed buckets wholly read: those before the last record's bucket, or all of
        // them once the listing is through.
        let whole_to = match found.next_cursor {
            Some(_) => bucket_start(read_to).min(closed),
            None => closed,
        };
        if let Some(done) = written_to.filter(|&done| done < whole_to) {
            let ready: Vec<StatsBucket> = counted
                .range(done..whole_to)
                .map(|(_, b)| b.clone())
                .collect();
            match stats.materialise(subscription_id, &ready, whole_to).await {
                Ok(()) => {
                    buckets_written += ready.len();
                    written_to = Some(whole_to);
                    mark = mark.max(Some(whole_to));
                }
                Err(e) => {
                    written_to = None;
                    tracing::warn!(subscription_id = %subscription_id, error = %e, "could not materialise the webhook's closed stats buckets (the next read counts them from the attempt log again)")
                }
            }
        }
        match found.next_cursor {
            None => break None,
            // Stop at the budget only once this read has materialised something (or a write
            // failed: nothing more can be kept), so that each GET makes progress even when one
            // closed bucket alone holds more records than the budget: it reads that bucket
            // through.
            Some(_) if closed_read >= limits.budget && written_to != Some(from) => {
                break Some(read_to)
            }
            Some(cursor) => page.cursor = Some(cursor),
        }
    };
    buckets.extend(counted);
    let hour_start = window_start(now, Duration::hours(1));
    Ok(WebhookStats {
        hour: WindowStats::of(buckets.values(), hour_start),
        day: WindowStats::of(buckets.values(), day_start),
        buckets_read,
        attempts_read,
        buckets_written,
        materialised_upto: mark,
        unread_from,
    })
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
