//! Delivery statistics counted from the attempt log (`relay_shared::stats::webhook_stats`), with
//! closed five-minute buckets materialised on read behind a watermark (`StatsStore`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use relay_shared::delivery::{AttemptRecord, AttemptStatus};
use relay_shared::error::StoreError;
use relay_shared::ids::{AttemptId, SubscriptionId};
use relay_shared::ports::{AttemptLog, AttemptQuery, Page, PageRequest};
use relay_shared::stats::{
    bin_of, bucket_start, closed_until, webhook_stats, webhook_stats_with, window_start,
    AttemptSample, ReadLimits, StatsBucket, WindowStats, BINS, BUCKET,
};

use crate::fixtures::{attempt, millis, now};
use crate::harness::StoreEnv;

/// The attempt log as a stats read pages through it: every page's records (their `at`), and a
/// failure of the `fail_at`-th listing (1-based: a read cut short after `fail_at - 1` pages, as
/// by the function's timeout or a throttled `Query`).
struct Pages {
    inner: Arc<dyn AttemptLog>,
    calls: AtomicUsize,
    fail_at: Option<usize>,
    pages: std::sync::Mutex<Vec<Vec<DateTime<Utc>>>>,
}

impl Pages {
    fn new(inner: Arc<dyn AttemptLog>, fail_at: Option<usize>) -> Self {
        Self {
            inner,
            calls: AtomicUsize::new(0),
            fail_at,
            pages: Default::default(),
        }
    }

    /// The pages read since the last call, each record's `at`.
    fn take(&self) -> Vec<Vec<DateTime<Utc>>> {
        std::mem::take(&mut *self.pages.lock().unwrap())
    }

    /// How many records the listings returned since the last call (what a stats read reads).
    fn read(&self) -> usize {
        self.take().iter().map(Vec::len).sum()
    }
}

#[async_trait]
impl AttemptLog for Pages {
    async fn record(&self, a: &AttemptRecord, expires_at: DateTime<Utc>) -> Result<(), StoreError> {
        self.inner.record(a, expires_at).await
    }

    async fn list(
        &self,
        query: AttemptQuery,
        page: &PageRequest,
    ) -> Result<Page<AttemptRecord>, StoreError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_at == Some(call) {
            return Err(StoreError::Unavailable(format!("page {call} refused")));
        }
        let found = self.inner.list(query, page).await?;
        let ats = found.items.iter().map(|a| a.at).collect();
        self.pages.lock().unwrap().push(ats);
        Ok(found)
    }

    async fn get(
        &self,
        subscription_id: &SubscriptionId,
        id: &AttemptId,
    ) -> Result<Option<AttemptRecord>, StoreError> {
        self.inner.get(subscription_id, id).await
    }
}

fn made(
    sub: SubscriptionId,
    at: DateTime<Utc>,
    status: AttemptStatus,
    duration_ms: u64,
) -> AttemptRecord {
    AttemptRecord {
        duration_ms,
        ..attempt(sub, millis(at), 1, status)
    }
}

/// The figures as the worker's per-attempt buckets gave them before (each made attempt added to
/// its five-minute bucket, a window adding up its buckets): the reference the log must match.
fn as_before(records: &[AttemptRecord], now: DateTime<Utc>) -> (WindowStats, WindowStats) {
    let mut buckets: BTreeMap<DateTime<Utc>, StatsBucket> = BTreeMap::new();
    for s in records.iter().filter_map(AttemptSample::of) {
        let start = bucket_start(s.at);
        buckets
            .entry(start)
            .or_insert_with(|| StatsBucket::empty(start))
            .add(&s);
    }
    (
        WindowStats::of(buckets.values(), window_start(now, Duration::hours(1))),
        WindowStats::of(buckets.values(), window_start(now, Duration::hours(24))),
    )
}

/// Attempts over a day, in a dozen buckets: a read gives the figures the per-attempt buckets
/// gave, materialises the closed buckets, and the next read takes those as they are and reads
/// only the records since the watermark (the open buckets' and the new ones).
pub async fn the_attempt_log_gives_the_figures_and_a_second_read_only_whats_new(env: StoreEnv) {
    let stats = env.stores.stats.as_ref();
    let log = Pages::new(env.stores.attempts.clone(), None);
    let t = now();
    let sub = SubscriptionId::new_at(millis(t) + 10);
    let other = SubscriptionId::new_at(millis(t) + 11);
    use AttemptStatus::{Failed, Skipped, Succeeded};
    let mut records = vec![
        // Before the day: outside both windows, and not read.
        made(sub, t - Duration::hours(25), Succeeded, 5),
        made(sub, t - Duration::hours(23), Succeeded, 40),
        made(
            sub,
            t - Duration::hours(23) + Duration::seconds(1),
            Failed,
            2_500,
        ),
        made(sub, t - Duration::hours(3), Succeeded, 120),
        made(sub, t - Duration::minutes(70), Failed, 30_000),
        made(sub, t - Duration::minutes(50), Succeeded, 8),
        made(
            sub,
            t - Duration::minutes(50) + Duration::seconds(2),
            Succeeded,
            9,
        ),
        made(sub, t - Duration::minutes(40), Skipped, 0),
        made(sub, t - Duration::minutes(31), Failed, 600),
        // Within the grace: open.
        made(sub, t - Duration::minutes(12), Succeeded, 250),
        made(sub, t - Duration::minutes(2), Failed, 1),
        made(sub, t, Succeeded, 15),
    ];
    for a in &records {
        log.record(a, t + Duration::days(2)).await.unwrap();
    }
    log.record(
        &made(other, t - Duration::minutes(30), Succeeded, 1),
        t + Duration::days(2),
    )
    .await
    .unwrap();

    let at = t + Duration::seconds(1);
    let day_start = window_start(at, Duration::hours(24));
    let first = webhook_stats(stats, &log, &sub, at).await.unwrap();
    let (hour, day) = as_before(&records, at);
    assert_eq!((&first.hour, &first.day), (&hour, &day));
    assert_eq!((day.attempts, day.successes, day.failures), (10, 6, 4));
    assert_eq!(hour.attempts, 6);
    assert_eq!(day.last_success_at, Some(t));
    assert_eq!(day.last_failure_at, Some(t - Duration::minutes(2)));
    let in_day = records.iter().filter(|a| a.at >= day_start).count();
    assert_eq!((first.attempts_read, log.read()), (in_day, in_day));
    assert_eq!(first.buckets_read, 0);
    let mark = closed_until(at);
    let closed: std::collections::BTreeSet<_> = records
        .iter()
        .filter(|a| a.status != Skipped && a.at >= day_start && a.at < mark)
        .map(|a| bucket_start(a.at))
        .collect();
    assert_eq!(first.buckets_written, closed.len());

    // Again: the materialised buckets, and only the records since the watermark.
    let second = webhook_stats(stats, &log, &sub, at).await.unwrap();
    assert_eq!((&second.hour, &second.day), (&hour, &day));
    let since_mark = records.iter().filter(|a| a.at >= mark).count();
    assert_eq!((second.attempts_read, log.read()), (since_mark, since_mark));
    assert!(since_mark < in_day / 2, "{since_mark} of {in_day}");
    assert_eq!(
        (second.buckets_read, second.buckets_written),
        (closed.len(), 0)
    );

    // Half an hour on, with new attempts: the new ones and the then-open ones are read, the
    // figures are still those of the per-attempt buckets.
    let new = [
        made(sub, t + Duration::minutes(1), Failed, 70),
        made(sub, t + Duration::minutes(20), Succeeded, 3),
    ];
    for a in &new {
        log.record(a, t + Duration::days(2)).await.unwrap();
    }
    records.extend(new);
    let later = t + Duration::minutes(30);
    let third = webhook_stats(stats, &log, &sub, later).await.unwrap();
    let (hour, day) = as_before(&records, later);
    assert_eq!((&third.hour, &third.day), (&hour, &day));
    assert_eq!(day.attempts, 12);
    let since_mark = records.iter().filter(|a| a.at >= mark).count();
    assert_eq!((third.attempts_read, log.read()), (since_mark, since_mark));
    let fourth = webhook_stats(stats, &log, &sub, later).await.unwrap();
    assert_eq!((&fourth.hour, &fourth.day), (&hour, &day));
    let open = records
        .iter()
        .filter(|a| a.at >= closed_until(later))
        .count();
    assert_eq!((fourth.attempts_read, log.read()), (open, open));

    // The other webhook's figures are its own.
    let theirs = webhook_stats(stats, &log, &other, at).await.unwrap();
    assert_eq!((theirs.day.attempts, theirs.attempts_read), (1, 1));
}

/// The store: materialised buckets read back with their counts, bins and last times, from
/// `since` on, with the watermark; the watermark never moves back; one webhook's only.
pub async fn materialised_buckets_and_the_watermark(env: StoreEnv) {
    let stats = env.stores.stats.as_ref();
    let t = now();
    let sub = SubscriptionId::new_at(millis(t) + 20);
    let here = bucket_start(t) - BUCKET * 4;
    let before = here - BUCKET;
    let mut old = StatsBucket::empty(before);
    let mut new = StatsBucket::empty(here);
    for (at, ok, ms) in [
        (here, true, 10),
        (here + Duration::seconds(2), true, 11),
        (here + Duration::seconds(1), false, 2_500),
        (before + Duration::seconds(7), false, 0),
    ] {
        let b = if at < here { &mut old } else { &mut new };
        b.add(&AttemptSample {
            subscription_id: sub,
            at,
            succeeded: ok,
            duration_ms: ms,
        });
    }
    assert!(stats
        .materialised(&sub, before)
        .await
        .unwrap()
        .buckets
        .is_empty());
    stats
        .materialise(&sub, &[old.clone(), new.clone()], here + BUCKET)
        .await
        .unwrap();
    let found = stats.materialised(&sub, before).await.unwrap();
    assert_eq!(found.upto, Some(here + BUCKET));
    assert_eq!(found.buckets, vec![old.clone(), new.clone()]);
    let b = &found.buckets[1];
    assert_eq!(b.histogram.len(), BINS);
    assert_eq!(b.histogram[bin_of(2_500)], 1);
    assert_eq!(b.last_success_at, Some(here + Duration::seconds(2)));
    assert_eq!(found.buckets[0].last_success_at, None);
    // From a later `since`, inside the older bucket: only the newer one.
    let from_within = stats
        .materialised(&sub, before + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(from_within.buckets, vec![new.clone()]);
    // An older watermark (a slower concurrent read) does not move it back.
    stats.materialise(&sub, &[], here).await.unwrap();
    assert_eq!(
        stats.materialised(&sub, before).await.unwrap().upto,
        Some(here + BUCKET)
    );
    stats
        .materialise(&sub, &[], here + BUCKET * 3)
        .await
        .unwrap();
    assert_eq!(
        stats.materialised(&sub, before).await.unwrap().upto,
        Some(here + BUCKET * 3)
    );
    let nobody = stats
        .materialised(&SubscriptionId::new_at(1), before)
        .await
        .unwrap();
    assert_eq!((nobody.upto, nobody.buckets.len()), (None, 0));
}

/// A read that wrote a bucket but not the watermark (it stopped in between) leaves a bucket the
/// watermark does not cover: the next read ignores it and counts that time from the records.
pub async fn a_bucket_past_the_watermark_is_counted_again(env: StoreEnv) {
    let stats = env.stores.stats.as_ref();
    let log = env.stores.attempts.as_ref();
    let t = now();
    let sub = SubscriptionId::new_at(millis(t) + 30);
    let at = t - Duration::hours(1);
    let a = made(sub, at, AttemptStatus::Succeeded, 20);
    log.record(&a, t + Duration::days(1)).await.unwrap();
    let mut leftover = StatsBucket::empty(bucket_start(at));
    for _ in 0..5 {
        leftover.add(&AttemptSample::of(&a).unwrap());
    }
    stats
        .materialise(&sub, &[leftover], bucket_start(at) - BUCKET * 2)
        .await
        .unwrap();
    let read = webhook_stats(stats, log, &sub, t).await.unwrap();
    assert_eq!((read.day.attempts, read.attempts_read), (1, 1));
    assert_eq!(read.buckets_written, 1);
    // The rewrite put the right figures: the next read takes them.
    let again = webhook_stats(stats, log, &sub, t).await.unwrap();
    assert_eq!((again.day.attempts, again.attempts_read), (1, 0));
}

/// Concurrent reads materialise the same buckets and agree on the figures.
pub async fn concurrent_reads_agree(env: StoreEnv) {
    let t = now();
    let sub = SubscriptionId::new_at(millis(t) + 40);
    for i in 0..20i64 {
        let status = if i % 4 == 0 {
            AttemptStatus::Failed
        } else {
            AttemptStatus::Succeeded
        };
        let a = made(sub, t - Duration::minutes(3 * i), status, 10 * i as u64);
        env.stores
            .attempts
            .record(&a, t + Duration::days(1))
            .await
            .unwrap();
    }
    let reads: Vec<_> = (0..4)
        .map(|_| {
            let stores = env.stores.clone();
            tokio::spawn(async move {
                webhook_stats(stores.stats.as_ref(), stores.attempts.as_ref(), &sub, t)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut figures = Vec::new();
    for r in reads {
        let r = r.await.unwrap();
        figures.push((r.hour, r.day));
    }
    assert!(figures.windows(2).all(|w| w[0] == w[1]), "{figures:?}");
    assert_eq!((figures[0].1.attempts, figures[0].1.failures), (20, 5));
    let after = webhook_stats(
        env.stores.stats.as_ref(),
        env.stores.attempts.as_ref(),
        &sub,
        t,
    )
    .await
    .unwrap();
    assert_eq!((after.hour.clone(), after.day.clone()), figures[0].clone());
}

/// Records `records`, 32 at a time.
async fn record_all(
    log: &Arc<dyn AttemptLog>,
    records: &[AttemptRecord],
    expires_at: DateTime<Utc>,
) {
    for chunk in records.chunks(32) {
        let mut writes = tokio::task::JoinSet::new();
        for a in chunk {
            let (log, a) = (log.clone(), a.clone());
            writes.spawn(async move { log.record(&a, expires_at).await });
        }
        while let Some(done) = writes.join_next().await {
            done.unwrap().unwrap();
        }
    }
}

/// `n` attempts of `sub` spread evenly over the 22 hours before `t`, oldest first: failed,
/// skipped and succeeded ones of many durations.
fn busy_day(sub: SubscriptionId, t: DateTime<Utc>, n: usize) -> Vec<AttemptRecord> {
    let step = Duration::milliseconds(22 * 3_600_000 / n as i64);
    (0..n)
        .map(|i| {
            let status = match i {
                _ if i % 50 == 3 => AttemptStatus::Skipped,
                _ if i % 7 == 0 => AttemptStatus::Failed,
                _ => AttemptStatus::Succeeded,
            };
            let at = t - Duration::hours(22) + step * i as i32;
            made(sub, at, status, (i as u64 * 37) % 5_000)
        })
        .collect()
}

/// The attempt log lists oldest first on request, a cursor going on in that order, within a
/// window too.
pub async fn the_attempt_log_lists_oldest_first_on_request(env: StoreEnv) {
    let t = now();
    let sub = SubscriptionId::new_at(millis(t) + 50);
    let records = busy_day(sub, t, 11);
    record_all(&env.stores.attempts, &records, t + Duration::days(1)).await;
    let since = records[2].at;
    for (query, want) in [
        (AttemptQuery::of(sub), &records[..]),
        (
            AttemptQuery {
                since: Some(since),
                ..AttemptQuery::of(sub)
            },
            &records[2..],
        ),
    ] {
        let query = AttemptQuery {
            oldest_first: true,
            ..query
        };
        let mut page = PageRequest {
            limit: 3,
            cursor: None,
        };
        let mut ids = Vec::new();
        loop {
            let found = env.stores.attempts.list(query, &page).await.unwrap();
            assert!(found.items.len() <= 3);
            ids.extend(found.items.iter().map(|a| a.id));
            match found.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(ids, want.iter().map(|a| a.id).collect::<Vec<_>>());
    }
}

/// A webhook with many records since its watermark (2,000 over the day) and a small budget
/// (300 records a read, pages of 50): each read reads its budget oldest first from where the
/// last one stopped, materialises what it read past and leaves the watermark there; its figures
/// are short of the window's (the API answers 503, not them); after a few reads they are exact,
/// and the next read reads only the open buckets' records.
pub async fn a_long_catch_up_goes_on_where_the_last_read_stopped(env: StoreEnv) {
    let stats = env.stores.stats.as_ref();
    let log = Pages::new(env.stores.attempts.clone(), None);
    let t = now();
    let sub = SubscriptionId::new_at(millis(t) + 60);
    let records = busy_day(sub, t, 2_000);
    record_all(&env.stores.attempts, &records, t + Duration::days(2)).await;
    let at = t + Duration::seconds(1);
    let day_start = window_start(at, Duration::hours(24));
    let limits = ReadLimits {
        page: 50,
        budget: 300,
    };
    let (hour, day) = as_before(&records, at);
    let mut mark: Option<DateTime<Utc>> = None;
    let mut reads = 0;
    let last = loop {
        reads += 1;
        assert!(reads <= 10, "no end to the catch-up");
        let r = webhook_stats_with(stats, &log, &sub, at, limits)
            .await
            .unwrap();
        let pages = log.take();
        let ats: Vec<_> = pages.concat();
        // Oldest first, from the watermark the last read left.
        assert!(ats.windows(2).all(|w| w[0] <= w[1]));
        assert!(
            mark.is_none_or(|m| ats[0] >= m),
            "read {reads} began before the watermark"
        );
        assert_eq!(ats.len(), r.attempts_read);
        let stored = stats.materialised(&sub, day_start).await.unwrap();
        assert_eq!(
            stored.upto, r.materialised_upto,
            "the watermark as the read left it"
        );
        assert!(r.materialised_upto > mark, "read {reads} made no progress");
        mark = r.materialised_upto;
        if r.is_complete() {
            break r;
        }
        assert_eq!((pages.len(), r.attempts_read), (6, 300));
        assert_eq!(r.unread_from, ats.last().copied());
        // What it left materialised is the whole of the buckets it read past.
        assert_eq!(mark, Some(bucket_start(*ats.last().unwrap())));
        assert!(
            r.day.attempts < day.attempts,
            "an incomplete read short of the figures"
        );
    };
    assert_eq!((&last.hour, &last.day), (&hour, &day));
    assert!(reads >= 2000 / 300, "{reads} reads");
    assert_eq!(mark, Some(closed_until(at)));
    // Caught up: the next read takes the materialised day and reads only the open buckets.
    let next = webhook_stats_with(stats, &log, &sub, at, limits)
        .await
        .unwrap();
    assert_eq!((&next.hour, &next.day), (&hour, &day));
    let open = records.iter().filter(|a| a.at >= closed_until(at)).count();
    assert_eq!((next.attempts_read, next.buckets_written), (open, 0));
    let closed_with_attempts: std::collections::BTreeSet<_> = records
        .iter()
        .filter(|a| a.status != AttemptStatus::Skipped && a.at < closed_until(at))
        .map(|a| bucket_start(a.at))
        .collect();
    assert_eq!(next.buckets_read, closed_with_attempts.len());
}

/// A read cut short after k pages (the (k+1)-th listing fails, as a timeout would end it)
/// answers the error, but keeps what its k pages read past: the buckets before the last record
/// read are materialised and the watermark is there; the next read goes on from it and gives
/// the exact figures.
pub async fn a_read_cut_short_after_k_pages_keeps_its_progress(env: StoreEnv) {
    let stats = env.stores.stats.as_ref();
    let t = now();
    let at = t + Duration::seconds(1);
    let day_start = window_start(at, Duration::hours(24));
    let limits = ReadLimits {
        page: 40,
        budget: usize::MAX,
    };
    for (k, n) in [(0usize, 70u64), (1, 71), (4, 72)] {
        let sub = SubscriptionId::new_at(millis(t) + n);
        let records = busy_day(sub, t, 600);
        record_all(&env.stores.attempts, &records, t + Duration::days(2)).await;
        let cut = Pages::new(env.stores.attempts.clone(), Some(k + 1));
        let err = webhook_stats_with(stats, &cut, &sub, at, limits)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        let stored = stats.materialised(&sub, day_start).await.unwrap();
        let expected_mark = (k > 0).then(|| bucket_start(records[k * 40 - 1].at));
        assert_eq!(stored.upto, expected_mark, "after {k} pages");
        let before_mark: std::collections::BTreeSet<_> = records
            .iter()
            .filter(|a| a.status != AttemptStatus::Skipped)
            .filter(|a| expected_mark.is_some_and(|m| a.at < m))
            .map(|a| bucket_start(a.at))
            .collect();
        let kept: Vec<_> = stored.buckets.iter().map(|b| b.start).collect();
        assert_eq!(kept, before_mark.into_iter().collect::<Vec<_>>());

        // The next read goes on from the watermark.
        let log = Pages::new(env.stores.attempts.clone(), None);
        let next = webhook_stats_with(stats, &log, &sub, at, limits)
            .await
            .unwrap();
        let since_mark = records
            .iter()
            .filter(|a| expected_mark.is_none_or(|m| a.at >= m))
            .count();
        assert_eq!((next.attempts_read, log.read()), (since_mark, since_mark));
        assert!(next.is_complete());
        let (hour, day) = as_before(&records, at);
        assert_eq!((&next.hour, &next.day), (&hour, &day));
    }
}

/// `n` attempts of `sub` from `from`, one every `step`: failed, skipped and succeeded ones.
fn attempts_from(
    sub: SubscriptionId,
    from: DateTime<Utc>,
    step: Duration,
    n: i32,
) -> Vec<AttemptRecord> {
    (0..n)
        .map(|i| {
            let status = match i {
                _ if i % 25 == 7 => AttemptStatus::Skipped,
                _ if i % 4 == 0 => AttemptStatus::Failed,
                _ => AttemptStatus::Succeeded,
            };
            made(sub, from + step * i, status, (i as u64 * 37) % 5_000)
        })
        .collect()
}

/// The open buckets' records do not count against the budget (they are read by every GET and
/// can never be materialised): a webhook whose open buckets alone hold three times the budget
/// still gets exact figures from every read. And a closed bucket that alone holds more than the
/// budget is read through and materialised: every read makes progress, and the catch-up ends.
pub async fn a_read_makes_progress_whatever_the_budget(env: StoreEnv) {
    let stats = env.stores.stats.as_ref();
    let t = now();
    let at = t + Duration::seconds(1);
    let closed = closed_until(at);
    let limits = ReadLimits {
        page: 20,
        budget: 50,
    };
    // 150 attempts in the last 15 minutes: all in open buckets.
    let open_from = at - Duration::minutes(15);
    assert!(open_from >= closed);
    let sub = SubscriptionId::new_at(millis(t) + 80);
    let records = attempts_from(sub, open_from, Duration::seconds(6), 150);
    record_all(&env.stores.attempts, &records, t + Duration::days(2)).await;
    let (hour, day) = as_before(&records, at);
    let log = Pages::new(env.stores.attempts.clone(), None);
    for read in 1..=2 {
        let r = webhook_stats_with(stats, &log, &sub, at, limits)
            .await
            .unwrap();
        assert!(
            r.is_complete(),
            "read {read} stopped at {:?}",
            r.unread_from
        );
        assert_eq!((r.attempts_read, log.read()), (150, 150));
        assert_eq!((&r.hour, &r.day), (&hour, &day));
        assert_eq!(r.materialised_upto, Some(closed));
    }

    // 120 attempts in one closed bucket two hours ago, then the same 150 open ones.
    let sub = SubscriptionId::new_at(millis(t) + 81);
    let big = bucket_start(at - Duration::hours(2));
    let mut records = attempts_from(sub, big, Duration::seconds(2), 120);
    assert!(records.iter().all(|a| bucket_start(a.at) == big));
    records.extend(attempts_from(sub, open_from, Duration::seconds(6), 150));
    record_all(&env.stores.attempts, &records, t + Duration::days(2)).await;
    let (hour, day) = as_before(&records, at);
    let mut mark: Option<DateTime<Utc>> = None;
    let mut reads = 0;
    let last = loop {
        reads += 1;
        assert!(reads <= 3, "no end to the catch-up");
        let r = webhook_stats_with(stats, &log, &sub, at, limits)
            .await
            .unwrap();
        if r.is_complete() {
            break r;
        }
        // A read stopped at its budget has moved the watermark.
        assert!(r.materialised_upto > mark, "read {reads} made no progress");
        mark = r.materialised_upto;
    };
    assert_eq!((&last.hour, &last.day), (&hour, &day));
    assert_eq!(last.materialised_upto, Some(closed));
    let stored = stats
        .materialised(&sub, window_start(at, Duration::hours(24)))
        .await
        .unwrap();
    assert_eq!(
        stored.buckets.iter().map(|b| b.start).collect::<Vec<_>>(),
        vec![big]
    );
}
