//! The attempt claim (docs/delivery-worker.md, "Exactly once per attempt"): it names the attempt
//! record the attempt will leave, and that record settles it — no "claim done" write. A crash
//! before the record leaves the claim to be taken over after its lease (the attempt made again:
//! at least once); after it, every copy is dropped (never again after a recorded success). The
//! crashes are testkit's [`CrashPlan`]: the handler future dropped at the call, no cleanup.

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
use relay_shared::ports::{AttemptLog, AttemptQuery, Page, PageRequest, Stores};
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
    let plan = CrashPlan::new();
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let stores = plan.stores(&wrap(memory_stores_at(clock.clone())));
    let queue = Arc::new(MemoryQueue::new(Duration::from_secs(30)));
    let dlq = Arc::new(MemoryQueue::new(Duration::from_secs(30)));
    let h = Harness::with_queues(
        test_config(3),
        plan.receiver(),
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
        let work = self.h.worker.process_message(&self.body, 1);
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
