//! The core scenarios (success, retry then success, exhausted → DLQ, rate-limit deferral) against
//! the AWS adapters: DynamoDB + SQS at `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SQS`
//! (DynamoDB Local, moto, LocalStack, real AWS), on a fresh table and fresh queues per test.
//! Unset → skipped with a reason, unless `RELAY_REQUIRE_AWS=1`.


use std::sync::Arc;

use crate::common::*;
use delivery_worker::handler::poll_once;
use delivery_worker::http_sender::ReqwestSender;
use delivery_worker::{DeferReason, MetricsSink, DeliveryOutcome, Ports, Worker, WorkerConfig};
use relay_shared::adapters::aws::{
    aws_clients, aws_stores, create_queues, create_table, DynamoTable, SqsQueue,
};
use relay_shared::clock::SystemClock;
use relay_shared::delivery::{AttemptStatus, DeliveryJob};
use relay_shared::events::EventType;
use relay_shared::ports::{
    AttemptFilter, DeliveryQueue, PageRequest, QueueConsumer, QueuedJob, Stores,
};
use relay_shared::subscription::Health;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn endpoints_configured() -> bool {
    let set = |v: &str| std::env::var(v).is_ok_and(|s| !s.is_empty());
    if set("AWS_ENDPOINT_URL_DYNAMODB") && set("AWS_ENDPOINT_URL_SQS") {
        return true;
    }
    assert!(
        !std::env::var("RELAY_REQUIRE_AWS").is_ok_and(|v| v == "1"),
        "RELAY_REQUIRE_AWS=1 but AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_SQS are not both set"
    );
    eprintln!("SKIPPED: AWS_ENDPOINT_URL_DYNAMODB and AWS_ENDPOINT_URL_SQS are not both set, so the AWS-adapter scenarios did not run");
    false
}

struct AwsHarness {
    worker: Arc<Worker>,
    stores: Stores,
    queue: SqsQueue,
    dlq: SqsQueue,
}

async fn aws_harness(name: &str, config: WorkerConfig) -> AwsHarness {
    let (dynamodb, sqs) = aws_clients().await;
    let suffix = format!("{name}-{}-{}", std::process::id(), now_ms());
    let table = format!("relay-dw-{suffix}");
    create_table(&dynamodb, &table)
        .await
        .expect("create the table");
    let (queue_url, dlq_url) = create_queues(&sqs, &format!("relay-dw-{suffix}"))
        .await
        .expect("create the queues");
    let stores = aws_stores(DynamoTable::new(dynamodb, table));
    let queue = SqsQueue::new(sqs.clone(), queue_url);
    let dlq = SqsQueue::new(sqs, dlq_url);
    let http =
        Arc::new(ReqwestSender::new(config.targets.clone(), config.max_response_bytes).unwrap());
    let ports = Ports {
        stores: stores.clone(),
        http,
        queue: Arc::new(queue.clone()),
        dlq: Arc::new(dlq.clone()),
        clock: Arc::new(SystemClock),
    };
    let worker = Arc::new(Worker::with_metrics(
        ports,
        config,
        Arc::new(MetricsSink::Off),
    ));
    AwsHarness {
        worker,
        stores,
        queue,
        dlq,
    }
}

impl AwsHarness {
    async fn enqueue(&self, job: &DeliveryJob) {
        self.queue
            .send(&[QueuedJob {
                job: job.clone(),
                delay_seconds: 0,
            }])
            .await
            .unwrap();
    }

    /// Polls until `want` outcomes came back (bounded: at most 30 receives of ≤ 1 s each).
    async fn run_until(&self, want: usize) -> Vec<DeliveryOutcome> {
        let mut all = Vec::new();
        for _ in 0..30 {
            all.extend(poll_once(&self.worker, &self.queue, 1).await.unwrap());
            if all.len() >= want {
                break;
            }
        }
        all
    }

    async fn attempts(
        &self,
        sub: &relay_shared::ids::SubscriptionId,
    ) -> Vec<relay_shared::delivery::AttemptRecord> {
        self.stores
            .attempts
            .list(
                sub,
                AttemptFilter::default(),
                &PageRequest {
                    limit: 50,
                    cursor: None,
                },
            )
            .await
            .unwrap()
            .items
    }
}

#[tokio::test]
async fn aws_success_and_retry_then_success() {
    if !endpoints_configured() {
        return;
    }
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let h = aws_harness("retry", test_config(5)).await;
    let sub = subscription(&format!("{}/hook", server.uri()));
    h.stores.subscriptions.create(&sub, 10).await.unwrap();
    let job = job_for(&sub, EventType::TelephonyCreated);
    h.enqueue(&job).await;

    let outcomes = h.run_until(2).await;
    assert!(
        matches!(outcomes[0], DeliveryOutcome::Retrying { attempt: 1, .. }),
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes[1],
        DeliveryOutcome::Delivered {
            attempt: 2,
            status: 200
        }
    );
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
    if !endpoints_configured() {
        return;
    }
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let h = aws_harness("dlq", test_config(3)).await;
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
    if !endpoints_configured() {
        return;
    }
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let h = aws_harness("rate", test_config(5)).await;
    let mut sub = subscription(&format!("{}/hook", server.uri()));
    sub.rate_limit_per_minute = 1;
    h.stores.subscriptions.create(&sub, 10).await.unwrap();
    let first = h
        .worker
        .process_message(&raw(&job_for(&sub, EventType::TelephonyCreated)), 1)
        .await;
    let second = h
        .worker
        .process_message(&raw(&job_for(&sub, EventType::TelephonyCreated)), 1)
        .await;
    // A minute boundary can fall between the two: then both go out, which is also correct.
    if matches!(second, DeliveryOutcome::Delivered { .. }) {
        eprintln!("note: a minute boundary fell between the two deliveries; deferral not exercised this run");
        return;
    }
    assert!(matches!(first, DeliveryOutcome::Delivered { .. }), "{first:?}");
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
