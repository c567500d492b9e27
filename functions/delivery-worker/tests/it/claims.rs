//! The attempt claim (docs/delivery-worker.md, "Exactly once per attempt"): it names the attempt
//! record the attempt will leave, and that record settles it — no "claim done" write. A crash
//! before the record leaves the claim to be taken over after its lease (the attempt made again:
//! at least once); after it, every copy is dropped (never again after a recorded success). The
//! crashes are testkit's [`CrashPlan`]: the handler future dropped at the call, no cleanup.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use delivery_worker::DeliveryOutcome;
use relay_shared::adapters::memory::{memory_stores_at, MemoryQueue};
use relay_shared::clock::ManualClock;
use relay_shared::delivery::{AttemptRecord, AttemptStatus};
use relay_shared::error::StoreError;
use relay_shared::events::EventType;
use relay_shared::ids::{AttemptId, SubscriptionId};
use relay_shared::ports::{
    AttemptLog, AttemptQuery, Clock, Page, PageRequest, QueueConsumer, Stores, SubscriptionStore,
};
use relay_shared::subscription::Subscription;
use testkit::crash::{CrashPlan, Note, Point, Variant};

use crate::common::*;

struct Rig {
    plan: Arc<CrashPlan>,
    h: Harness,
    clock: Arc<ManualClock>,
    /// One job's queue message: every run below is a copy of it.
    body: String,
}

/// A worker whose stores, queues and receiver (200 to every POST) go through `plan`, on a test
/// clock; `wrap` may replace stores first.
async fn rig(wrap: impl FnOnce(Stores) -> Stores) -> Rig {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    rig_on(wrap(memory_stores_at(clock.clone())), clock, 0).await
}

/// As [`rig`], over `base` (memory, or the DynamoDB adapters) on `clock`, the receiver
/// answering 500 to each delivery's first `failing_first` POSTs, then 200.
async fn rig_on(base: Stores, clock: Arc<ManualClock>, failing_first: usize) -> Rig {
    let plan = CrashPlan::new();
    let stores = plan.stores(&base);
    let queue = Arc::new(MemoryQueue::new(Duration::from_secs(30)));
    let dlq = Arc::new(MemoryQueue::new(Duration::from_secs(30)));
    let h = Harness::with_queues(
        test_config(3),
        plan.receiver_failing_first(failing_first),
        clock.clone(),
        stores,
        queue.clone(),
        plan.queue(queue),
        dlq.clone(),
        plan.dead_letters(dlq),
    );
    let sub = subscription("http://127.0.0.1:9/hook");
    h.add(&sub).await;
    let body = raw(&job_for(&sub, EventType::TelephonyCreated));
    Rig {
        plan,
        h,
        clock,
        body,
    }
}

impl Rig {
    /// One copy of the message through the worker, as run `phase` (`None`: it crashed).
    async fn copy(&self, phase: &str) -> Option<DeliveryOutcome> {
        self.run(&self.body, phase).await
    }

    /// `body` through the worker, as run `phase` (`None`: it crashed).
    async fn run(&self, body: &str, phase: &str) -> Option<DeliveryOutcome> {
        let work = self.h.worker.process_message(body, 1);
        self.plan.run(phase, work).await
    }

    fn posts(&self) -> usize {
        let timeline = self.plan.timeline();
        timeline
            .iter()
            .filter(|n| matches!(n, Note::Post { .. }))
            .count()
    }

    fn successes_recorded(&self) -> usize {
        let timeline = self.plan.timeline();
        timeline
            .iter()
            .filter(|n| {
                matches!(
                    n,
                    Note::Recorded {
                        status: AttemptStatus::Succeeded,
                        ..
                    }
                )
            })
            .count()
    }

    /// The store and queue operations run `phase` made, sorted.
    fn ops(&self, phase: &str) -> Vec<&'static str> {
        let mut ops: Vec<&'static str> = self
            .plan
            .points()
            .into_iter()
            .filter(|p| p.phase == phase)
            .map(|p| p.op)
            .collect();
        ops.sort_unstable();
        ops
    }

    /// Past the claim's lease (delivery timeout + 30 s).
    fn after_the_lease(&self) {
        self.clock.advance(chrono::Duration::seconds(5 + 31));
    }

    /// One copy failing attempt 1 (500), crashing after its successor was re-sent and before its
    /// record (`worker: queue.send / after`): the re-sent message.
    async fn crash_after_the_re_send(&self) -> String {
        let send = Point {
            phase: "worker".into(),
            op: "queue.send",
            kind: String::new(),
            nth: 1,
        };
        self.plan.arm(send, Variant::After);
        assert_eq!(self.copy("worker").await, None, "crashed after the re-send");
        let resent = self.h.queue.receive(10, 0).await.unwrap();
        assert_eq!(resent.len(), 1, "the successor was re-sent");
        resent[0].body.clone()
    }
}

/// `scenario` over the memory stores, on a test clock.
async fn on_memory<F: Future<Output = ()>>(scenario: impl FnOnce(Stores, Arc<ManualClock>) -> F) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    scenario(memory_stores_at(clock.clone()), clock).await
}

/// `scenario` over the DynamoDB adapters (a fresh table), on a test clock; skipped as `test`
/// when DynamoDB Local + moto are not there (`testkit::aws`).
async fn on_aws<F: Future<Output = ()>>(
    test: &str,
    scenario: impl FnOnce(Stores, Arc<ManualClock>) -> F,
) {
    let Some(aws) = testkit::aws::Resources::for_test(test, "relay-dw").await else {
        return;
    };
    scenario(aws.stores, Arc::new(ManualClock::new(Utc::now()))).await
}

fn the_record(status: &str) -> Point {
    Point {
        phase: "worker".into(),
        op: "attempts.record",
        kind: status.into(),
        nth: 1,
    }
}

#[tokio::test]
async fn a_delivery_is_claimed_and_settled_by_its_record_alone() {
    let r = rig(|s| s).await;
    assert_eq!(r.copy("worker").await, Some(delivered(1, 200)));
    assert_eq!(
        r.ops("worker"),
        [
            "attempts.record",
            "dedupe.claim",
            "rate_limits.acquire",
            "subscriptions.get"
        ],
        "no claim-done write, no release"
    );
    // A later copy (an SQS redelivery, a Webex redelivery queued again) meets the record.
    assert!(matches!(
        r.copy("copy").await,
        Some(DeliveryOutcome::Dropped { .. })
    ));
    r.after_the_lease();
    assert!(matches!(
        r.copy("late copy").await,
        Some(DeliveryOutcome::Dropped { .. })
    ));
    assert_eq!((r.posts(), r.successes_recorded()), (1, 1));
}

#[tokio::test]
async fn a_crash_before_the_record_makes_the_attempt_again_after_the_lease_and_never_after() {
    let r = rig(|s| s).await;
    r.plan.arm(the_record("succeeded"), Variant::Before);
    assert_eq!(r.copy("worker").await, None, "crashed after the POST");
    assert!(
        matches!(r.copy("copy").await, Some(DeliveryOutcome::Failed { .. })),
        "within the lease the claim is the crashed holder's"
    );
    r.after_the_lease();
    assert_eq!(r.copy("redelivery").await, Some(delivered(1, 200)));
    r.after_the_lease();
    assert!(matches!(
        r.copy("late copy").await,
        Some(DeliveryOutcome::Dropped { .. })
    ));
    assert_eq!(
        (r.posts(), r.successes_recorded()),
        (2, 1),
        "at least once; never after the recorded success"
    );
}

#[tokio::test]
async fn a_crash_after_the_record_drops_every_copy() {
    let r = rig(|s| s).await;
    r.plan.arm(the_record("succeeded"), Variant::After);
    assert_eq!(r.copy("worker").await, None, "crashed once recorded");
    assert!(matches!(
        r.copy("copy").await,
        Some(DeliveryOutcome::Dropped { .. })
    ));
    r.after_the_lease();
    assert!(matches!(
        r.copy("late copy").await,
        Some(DeliveryOutcome::Dropped { .. })
    ));
    assert_eq!((r.posts(), r.successes_recorded()), (1, 1));
}

/// An attempt log that refuses every record (listing and reading work).
struct Refusing(Arc<dyn AttemptLog>);

#[async_trait::async_trait]
impl AttemptLog for Refusing {
    async fn record(&self, _: &AttemptRecord, _: DateTime<Utc>) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("throttled (test)".into()))
    }
    async fn list(
        &self,
        query: AttemptQuery,
        page: &PageRequest,
    ) -> Result<Page<AttemptRecord>, StoreError> {
        self.0.list(query, page).await
    }
    async fn get(
        &self,
        sub: &SubscriptionId,
        id: &AttemptId,
    ) -> Result<Option<AttemptRecord>, StoreError> {
        self.0.get(sub, id).await
    }
}

#[tokio::test]
async fn a_record_that_cannot_be_written_completes_the_claim_instead() {
    let r = rig(|s| Stores {
        attempts: Arc::new(Refusing(s.attempts.clone())),
        ..s
    })
    .await;
    assert_eq!(r.copy("worker").await, Some(delivered(1, 200)));
    assert!(
        r.ops("worker").contains(&"dedupe.complete"),
        "{:?}",
        r.ops("worker")
    );
    r.after_the_lease();
    assert!(matches!(
        r.copy("late copy").await,
        Some(DeliveryOutcome::Dropped { .. })
    ));
    assert_eq!(
        r.posts(),
        1,
        "the made attempt is remembered without its record"
    );
}

impl Rig {
    /// Tokens counted in the current rate window of the job's webhook: 0, 1 or "2 or more" (a
    /// probe with limit 2 takes a token when fewer than 2 were counted, so it is used once).
    async fn tokens_counted(&self) -> u32 {
        use relay_shared::ports::Clock;
        let job: relay_shared::delivery::DeliveryJob = serde_json::from_str(&self.body).unwrap();
        let window = relay_shared::ports::RateWindow::containing(self.clock.now(), 2);
        let rate_limits = &self.h.stores.rate_limits;
        let mut probes = 0;
        while probes < 2
            && rate_limits
                .try_acquire(&job.subscription_id, window)
                .await
                .unwrap()
        {
            probes += 1;
        }
        2 - probes
    }
}

/// Review 21 F7: a duplicate copy — the attempt made (`Done`) or being made (`InProgress`) by
/// another copy — gives the rate-limit token it took back (one conditional decrement, only on
/// that path) and is counted (`DuplicateCopy`), so a Webex redelivery storm does not eat the
/// webhook's per-minute limit.
#[tokio::test]
async fn a_duplicate_copy_gives_its_rate_limit_token_back() {
    use delivery_worker::Metric;
    // Made already: the copy is dropped and its token given back.
    let r = rig(|s| s).await;
    assert_eq!(r.copy("worker").await, Some(delivered(1, 200)));
    assert!(matches!(
        r.copy("copy").await,
        Some(DeliveryOutcome::Dropped { .. })
    ));
    assert!(r.ops("copy").contains(&"rate_limits.give_back"));
    assert!(!r.ops("worker").contains(&"rate_limits.give_back"));
    assert_eq!(r.tokens_counted().await, 1, "only the attempt made counts");
    assert_eq!(r.h.metrics.count(Metric::DuplicateCopy), 1);

    // Being made (the holder crashed after its POST, within its lease): the copy comes back
    // later, its token given back too.
    let r = rig(|s| s).await;
    r.plan.arm(the_record("succeeded"), Variant::Before);
    assert_eq!(r.copy("worker").await, None);
    assert!(matches!(
        r.copy("copy").await,
        Some(DeliveryOutcome::Failed { .. })
    ));
    assert!(r.ops("copy").contains(&"rate_limits.give_back"));
    assert_eq!(r.tokens_counted().await, 1);
    assert_eq!(r.h.metrics.count(Metric::DuplicateCopy), 1);
}

/// Review 21 F1: the claim's lease is never shorter than the invocation can run. In a Lambda
/// invocation with 10 minutes left, a holder that crashed after its POST keeps its claim past the
/// delivery timeout's lease (5 s + 30 s here): a copy then comes back later instead of POSTing
/// beside a holder that might still be running. Without a deadline (the local stack) the copy
/// takes the claim over after the delivery timeout's lease.
#[tokio::test]
async fn the_claims_lease_covers_the_invocation() {
    use delivery_worker::worker::within_invocation;
    let r = rig(|s| s).await;
    r.plan.arm(the_record("succeeded"), Variant::Before);
    let deadline =
        r.h.worker
            .on_clock(std::time::SystemTime::now() + Duration::from_secs(600));
    let work = within_invocation(Some(deadline), r.h.worker.process_message(&r.body, 1));
    assert_eq!(
        r.plan.run("worker", work).await,
        None,
        "crashed after the POST"
    );
    r.after_the_lease();
    assert!(
        matches!(r.copy("copy").await, Some(DeliveryOutcome::Failed { .. })),
        "the invocation could still be running: the claim is the holder's"
    );
    r.clock.advance(chrono::Duration::seconds(600));
    assert_eq!(r.copy("redelivery").await, Some(delivered(1, 200)));
    assert_eq!((r.posts(), r.successes_recorded()), (2, 1));
}

/// A subscription store whose first `get` takes 20 s (on the test clock): a throttled GetItem's
/// SDK retries, or a slow KMS Decrypt after it.
struct SlowFirstRead {
    inner: Arc<dyn SubscriptionStore>,
    clock: Arc<ManualClock>,
    slowed: AtomicBool,
}

#[async_trait::async_trait]
impl SubscriptionStore for SlowFirstRead {
    async fn create(&self, sub: &Subscription, max: u32) -> Result<(), StoreError> {
        self.inner.create(sub, max).await
    }
    async fn get(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        if !self.slowed.swap(true, Ordering::SeqCst) {
            self.clock.advance(chrono::Duration::seconds(20));
        }
        self.inner.get(id).await
    }
    async fn list_by_owner(
        &self,
        owner_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Subscription>, StoreError> {
        self.inner.list_by_owner(owner_id, page).await
    }
    async fn list_by_org(&self, org_id: &str) -> Result<Vec<Subscription>, StoreError> {
        self.inner.list_by_org(org_id).await
    }
    async fn list_all(&self, page: &PageRequest) -> Result<Page<Subscription>, StoreError> {
        self.inner.list_all(page).await
    }
    async fn update(&self, sub: &Subscription) -> Result<(), StoreError> {
        self.inner.update(sub).await
    }
    async fn delete(&self, owner_id: &str, id: &SubscriptionId) -> Result<bool, StoreError> {
        self.inner.delete(owner_id, id).await
    }
}

/// Review 22 G1: the lease's invocation bound is the deadline itself (an instant of the
/// worker's clock), not the time left measured at the claim and added to the job's start. The
/// holder's subscription read takes 20 s of a 60 s invocation, then it POSTs and crashes before
/// its record. A copy arriving 1 s before the deadline must find the claim the holder's (it
/// could still be running). Anchoring the time left at the claim (40 s) to the job's start
/// ended the lease 15 s before the deadline, and this copy POSTed beside a live holder.
#[tokio::test]
async fn time_spent_before_the_claim_does_not_shorten_the_lease() {
    use delivery_worker::worker::within_invocation;
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let base = memory_stores_at(clock.clone());
    let base = Stores {
        subscriptions: Arc::new(SlowFirstRead {
            inner: base.subscriptions.clone(),
            clock: clock.clone(),
            slowed: AtomicBool::new(false),
        }),
        ..base
    };
    let r = rig_on(base, clock, 0).await;
    r.plan.arm(the_record("succeeded"), Variant::Before);
    let start = r.clock.now();
    let deadline = start + chrono::Duration::seconds(60);
    let work = within_invocation(Some(deadline), r.h.worker.process_message(&r.body, 1));
    assert_eq!(
        r.plan.run("worker", work).await,
        None,
        "crashed after the POST"
    );
    assert_eq!(r.clock.now(), start + chrono::Duration::seconds(20));
    r.clock.advance(chrono::Duration::seconds(39));
    assert!(
        matches!(r.copy("copy").await, Some(DeliveryOutcome::Failed { .. })),
        "1 s before the deadline the claim is the holder's"
    );
    assert_eq!(r.posts(), 1, "no POST beside the holder");
    // Past the deadline + 5 s the holder is gone: the attempt is made again.
    r.clock.advance(chrono::Duration::seconds(7));
    assert_eq!(r.copy("redelivery").await, Some(delivered(1, 200)));
    assert_eq!((r.posts(), r.successes_recorded()), (2, 1));
}

/// The retry path (H5's crash-point sweep, `worker: queue.send / after`): attempt 1 fails (500),
/// its successor is re-sent for attempt 2, and the worker crashes before attempt 1's record. The
/// re-sent copy makes attempt 2 (200, recorded). The original message comes back after attempt
/// 1's lease and takes attempt 1's unsettled claim over: attempt 2's claim shows the attempt was
/// settled by its re-send, so it is a duplicate — no POST after the recorded success — and the
/// claim is completed, so a later copy stops at once. (Before the fix it POSTed attempt 1 again:
/// a second success.)
async fn retry_resent_then_crashed(base: Stores, clock: Arc<ManualClock>) {
    let r = rig_on(base, clock, 1).await;
    let resent = r.crash_after_the_re_send().await;
    assert_eq!(
        r.run(&resent, "re-sent copy").await,
        Some(delivered(2, 200))
    );
    r.after_the_lease();
    let redelivery = r.copy("redelivery").await;
    assert!(
        matches!(redelivery, Some(DeliveryOutcome::Dropped { .. })),
        "{redelivery:?}"
    );
    assert_eq!(
        r.ops("redelivery"),
        [
            "dedupe.claim",
            "dedupe.complete",
            "dedupe.exists",
            "rate_limits.acquire",
            "rate_limits.give_back",
            "subscriptions.get"
        ],
        "one read of the successor's claim, the claim completed, the token given back"
    );
    let late = r.copy("late copy").await;
    assert!(
        matches!(late, Some(DeliveryOutcome::Dropped { .. })),
        "{late:?}"
    );
    assert!(
        !r.ops("late copy").contains(&"dedupe.exists"),
        "done at once"
    );
    assert_eq!(
        (r.posts(), r.successes_recorded()),
        (2, 1),
        "attempt 1 (500) and attempt 2 (200): nothing after the recorded success"
    );
}

#[tokio::test]
async fn a_crash_between_the_re_send_and_the_record_posts_nothing_after_the_success() {
    on_memory(retry_resent_then_crashed).await;
}

#[tokio::test]
async fn aws_a_crash_between_the_re_send_and_the_record_posts_nothing_after_the_success() {
    on_aws(
        "aws_a_crash_between_the_re_send_and_the_record_posts_nothing_after_the_success",
        retry_resent_then_crashed,
    )
    .await;
}

/// The other order (the re-sent copy's delay outlasting the visibility timeout: the default
/// schedule's later waits): after the same crash, the original comes back first and takes
/// attempt 1's claim over, sees no mark of attempt 2 and makes attempt 1 again (200). That
/// success marks attempt 2's claim done, so the re-sent copy, when it comes, is dropped: no POST
/// after the recorded success.
async fn retry_resent_then_crashed_original_first(base: Stores, clock: Arc<ManualClock>) {
    let r = rig_on(base, clock, 1).await;
    let resent = r.crash_after_the_re_send().await;
    r.after_the_lease();
    assert_eq!(r.copy("redelivery").await, Some(delivered(1, 200)));
    let late = r.run(&resent, "re-sent copy").await;
    assert!(
        matches!(late, Some(DeliveryOutcome::Dropped { .. })),
        "{late:?}"
    );
    assert_eq!(
        (r.posts(), r.successes_recorded()),
        (2, 1),
        "attempt 1 twice (500, then 200): nothing after the recorded success"
    );
}

#[tokio::test]
async fn the_original_first_after_that_crash_fences_the_re_sent_copy() {
    on_memory(retry_resent_then_crashed_original_first).await;
}

#[tokio::test]
async fn aws_the_original_first_after_that_crash_fences_the_re_sent_copy() {
    on_aws(
        "aws_the_original_first_after_that_crash_fences_the_re_sent_copy",
        retry_resent_then_crashed_original_first,
    )
    .await;
}
