//! The core scenarios (success, retry then success, exhausted → DLQ, rate-limit deferral) against
//! the AWS adapters: DynamoDB + SQS at `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SQS`
//! (DynamoDB Local, moto, LocalStack, real AWS), on a fresh table and fresh queues per test.
//! Unset → skipped with a reason, unless `RELAY_REQUIRE_AWS=1`.

use std::sync::Arc;

use crate::common::*;
use delivery_worker::handler::poll_once;
use delivery_worker::{DeferReason, DeliveryOutcome, MetricsSink, Ports, Worker, WorkerConfig};
use relay_shared::adapters::aws::SqsQueue;
use relay_shared::clock::SystemClock;
use relay_shared::delivery::{AttemptRecord, AttemptStatus, DeliveryJob};
use relay_shared::events::EventType;
use relay_shared::ids::SubscriptionId;
use relay_shared::ports::{CorePorts, DeliveryQueue, QueueConsumer, QueuedJob, Stores};
use relay_shared::subscription::Health;
use wiremock::{MockServer, ResponseTemplate};

struct AwsHarness {
    worker: Arc<Worker>,
    stores: Stores,
    queue: Arc<SqsQueue>,
    dlq: Arc<SqsQueue>,
}

/// A worker on a fresh table and queues, or `None` when `test` skips (`testkit::aws`).
async fn aws_harness(test: &str, config: WorkerConfig) -> Option<AwsHarness> {
    let aws = testkit::aws::Resources::for_test(test, "relay-dw").await?;
    let ports = Ports {
        core: CorePorts {
            stores: aws.stores.clone(),
            queue: aws.queue.clone(),
            clock: Arc::new(SystemClock),
        },
        http: sender(&config),
        dead_letter_sink: aws.dlq.clone(),
    };
    let worker = Arc::new(Worker::with_metrics(
        ports,
        config,
        Arc::new(MetricsSink::Off),
    ));
    Some(AwsHarness {
        worker,
        stores: aws.stores,
        queue: aws.queue,
        dlq: aws.dlq,
    })
}

impl AwsHarness {
    async fn enqueue(&self, job: &DeliveryJob) {
        let queued = QueuedJob::now(job.clone());
        self.queue.send(&[queued]).await.unwrap();
    }

    /// Polls until `want` outcomes came back (bounded: at most 30 receives of ≤ 1 s each).
    async fn run_until(&self, want: usize) -> Vec<DeliveryOutcome> {
        let mut all = Vec::new();
        for _ in 0..30 {
            all.extend(
                poll_once(&self.worker, self.queue.as_ref(), 1)
                    .await
                    .unwrap(),
            );
            if all.len() >= want {
                break;
            }
        }
        all
    }

    async fn attempts(&self, sub: &SubscriptionId) -> Vec<AttemptRecord> {
        attempts(&self.stores, sub).await
    }
}

#[tokio::test]
async fn aws_success_and_retry_then_success() {
    let server = MockServer::start().await;
    respond(&server, ResponseTemplate::new(500), Some(1)).await;
    respond(&server, ResponseTemplate::new(200), None).await;
    let Some(h) = aws_harness("aws_success_and_retry_then_success", test_config(5)).await else {
        return;
    };
    let sub = subscription(&format!("{}/hook", server.uri()));
    h.stores.subscriptions.create(&sub, 10).await.unwrap();
    let job = job_for(&sub, EventType::TelephonyCreated);
    h.enqueue(&job).await;

    let outcomes = h.run_until(2).await;
    assert!(
        matches!(outcomes[0], DeliveryOutcome::Retrying { attempt: 1, .. }),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[1], delivered(2, 200));
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].body, job.body.as_bytes());
    let log = h.attempts(&sub.id).await;
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].status, AttemptStatus::Succeeded, "newest first");
    assert_eq!(log[1].status_code, Some(500));
    assert_eq!(
        h.queue.approximate_depth().await.unwrap(),
        0,
        "acknowledged"
    );
}

#[tokio::test]
async fn aws_exhausted_job_goes_to_the_dlq_and_marks_failing() {
    let server = MockServer::start().await;
    respond(&server, ResponseTemplate::new(503), None).await;
    let Some(h) = aws_harness(
        "aws_exhausted_job_goes_to_the_dlq_and_marks_failing",
        test_config(3),
    )
    .await
    else {
        return;
    };
    let sub = subscription(&format!("{}/hook", server.uri()));
    h.stores.subscriptions.create(&sub, 10).await.unwrap();
    h.enqueue(&job_for(&sub, EventType::TelephonyCreated)).await;

    let outcomes = h.run_until(3).await;
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    assert!(
        matches!(&outcomes[2], DeliveryOutcome::DeadLettered { .. }),
        "{outcomes:?}"
    );
    let parked = h.dlq.receive(10, 2).await.unwrap();
    assert_eq!(parked.len(), 1);
    let job: DeliveryJob = serde_json::from_str(&parked[0].body).unwrap();
    assert_eq!(job.attempts.len(), 3);
    assert!(job.dead_letter_reason.unwrap().contains("all 3 attempts"));
    let stored = h.stores.subscriptions.get(&sub.id).await.unwrap().unwrap();
    assert_eq!(stored.health, Health::Failing);
    assert_eq!(stored.version, sub.version + 1);
    assert_eq!(h.attempts(&sub.id).await.len(), 3);
}

#[tokio::test]
async fn aws_rate_limit_defers_without_an_attempt() {
    let server = MockServer::start().await;
    respond(&server, ResponseTemplate::new(200), None).await;
    let Some(h) = aws_harness("aws_rate_limit_defers_without_an_attempt", test_config(5)).await
    else {
        return;
    };
    let mut sub = subscription(&format!("{}/hook", server.uri()));
    sub.rate_limit_per_minute = 1;
    h.stores.subscriptions.create(&sub, 10).await.unwrap();
    let first = deliver_new(&h.worker, &sub).await;
    let second = deliver_new(&h.worker, &sub).await;
    // A minute boundary can fall between the two: then both go out, which is also correct.
    if matches!(second, DeliveryOutcome::Delivered { .. }) {
        eprintln!("note: a minute boundary fell between the two deliveries; deferral not exercised this run");
        return;
    }
    assert!(
        matches!(first, DeliveryOutcome::Delivered { .. }),
        "{first:?}"
    );
    assert!(
        matches!(
            second,
            DeliveryOutcome::Deferred {
                reason: DeferReason::RateLimited,
                ..
            }
        ),
        "{second:?}"
    );
    assert_eq!(h.attempts(&sub.id).await.len(), 1);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}
