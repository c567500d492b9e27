//! The core scenarios (success, retry then success, exhausted → DLQ, rate-limit deferral) against
//! the AWS adapters: DynamoDB + SQS at `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SQS`
//! (DynamoDB Local, moto, LocalStack, real AWS), on a fresh table and fresh queues per test; the
//! sealed-secret scenarios also against KMS at `AWS_ENDPOINT_URL_KMS` (moto), on a fresh key.
//! Unset → skipped with a reason, unless `RELAY_REQUIRE_AWS=1`.

use std::sync::Arc;

use crate::common::*;
use delivery_worker::handler::poll_once;
use delivery_worker::{DeferReason, DeliveryOutcome, Worker, WorkerConfig};
use relay_shared::adapters::aws::kms::KmsKeys;
use relay_shared::adapters::aws::SqsQueue;
use relay_shared::delivery::{AttemptRecord, AttemptStatus, DeliveryJob};
use relay_shared::events::EventType;
use relay_shared::ids::SubscriptionId;
use relay_shared::ports::{DeliveryQueue, QueueConsumer, QueuedJob, Stores};
use relay_shared::secrets_at_rest::{SecretOpener, SecretSealer};
use relay_shared::signing::{standard_webhooks_signature, SigningSecret};
use relay_shared::subscription::Health;
use testkit::aws::Service;
use wiremock::{MockServer, ResponseTemplate};

struct AwsHarness {
    worker: Arc<Worker>,
    stores: Stores,
    queue: Arc<SqsQueue>,
    dlq: Arc<SqsQueue>,
}

/// A worker on a fresh table and queues, or `None` when `test` skips (`testkit::aws`). Its
/// secrets key is a local one: these scenarios store legacy plain secrets.
async fn aws_harness(test: &str, config: WorkerConfig) -> Option<AwsHarness> {
    let sdk = testkit::aws::local(test, testkit::aws::BOTH).await?;
    Some(AwsHarness::new(&sdk, config, TestKeys::new().opener()).await)
}

/// A worker whose secrets key is a fresh KMS key (moto), and the sealer the API would use with
/// it; `None` when `test` skips.
async fn kms_harness(test: &str, config: WorkerConfig) -> Option<(AwsHarness, SecretSealer)> {
    let sdk = testkit::aws::local(test, &[Service::DynamoDb, Service::Sqs, Service::Kms]).await?;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let keys = Arc::new(KmsKeys::new(
        kms.clone(),
        testkit::aws::fresh_kms_key(&kms).await,
    ));
    let h = AwsHarness::new(&sdk, config, SecretOpener::new(keys.clone())).await;
    Some((h, SecretSealer::new(keys)))
}

impl AwsHarness {
    async fn new(sdk: &aws_config::SdkConfig, config: WorkerConfig, secrets: SecretOpener) -> Self {
        let aws = testkit::aws::Resources::new(sdk, "relay-dw").await;
        Self::on(aws, config, secrets)
    }

    fn on(aws: testkit::aws::Resources, config: WorkerConfig, secrets: SecretOpener) -> Self {
        let worker = Arc::new(aws_worker(&aws, config, secrets));
        AwsHarness {
            worker,
            stores: aws.stores,
            queue: aws.queue,
            dlq: aws.dlq,
        }
    }

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
    // Two conditional writes: the failing streak's start at the first failed attempt (once per
    // streak, for auto-disable), then the health when the schedule was exhausted.
    assert!(stored.failing_since.is_some());
    assert_eq!(stored.version, sub.version + 2);
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

/// The release path: the API sealed the secret with the template's KMS key (`GenerateDataKey`),
/// the worker opens it (`Decrypt`) and signs with the secret itself; an item an older release
/// wrote (plain secret) still delivers beside it.
#[tokio::test]
async fn aws_kms_sealed_secret_signs_and_legacy_plain_still_delivers() {
    let server = MockServer::start().await;
    respond(&server, ResponseTemplate::new(200), None).await;
    let test = "aws_kms_sealed_secret_signs_and_legacy_plain_still_delivers";
    let Some((h, sealer)) = kms_harness(test, test_config(5)).await else {
        return;
    };
    let url = format!("{}/hook", server.uri());
    let sub = sealed(&sealer, subscription(&url)).await;
    let legacy = subscription(&url);
    for s in [&sub, &legacy] {
        h.stores.subscriptions.create(s, 10).await.unwrap();
    }
    let stored = h.stores.subscriptions.get(&sub.id).await.unwrap().unwrap();
    assert!(stored.secret.is_sealed() && !stored.has_plain_secret());
    assert!(h
        .stores
        .subscriptions
        .get(&legacy.id)
        .await
        .unwrap()
        .unwrap()
        .has_plain_secret());

    let jobs = [&sub, &legacy].map(|s| job_for(s, EventType::TelephonyCreated));
    for job in &jobs {
        h.enqueue(job).await;
    }
    let outcomes = h.run_until(2).await;
    assert_eq!(outcomes, vec![delivered(1, 200), delivered(1, 200)]);
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        let id = header(r, "webhook-id").unwrap();
        let ts: i64 = header(r, "webhook-timestamp").unwrap().parse().unwrap();
        let want = standard_webhooks_signature(&SigningSecret::new(SECRET), id, ts, &r.body);
        assert_eq!(header(r, "webhook-signature"), Some(want.as_str()), "{id}");
    }
}

/// A sealed secret copied onto another subscription does not open there (the encryption context
/// names the subscription): the job is parked as `secret_unreadable`, nothing is sent.
#[tokio::test]
async fn aws_kms_secret_of_another_subscription_is_dead_lettered_unsent() {
    let server = MockServer::start().await;
    respond(&server, ResponseTemplate::new(200), None).await;
    let test = "aws_kms_secret_of_another_subscription_is_dead_lettered_unsent";
    let Some((h, sealer)) = kms_harness(test, test_config(5)).await else {
        return;
    };
    let url = format!("{}/hook", server.uri());
    let donor = sealed(&sealer, subscription(&url)).await;
    let mut sub = subscription(&url);
    sub.secret = donor.secret.clone();
    h.stores.subscriptions.create(&sub, 10).await.unwrap();

    let outcome = deliver_new(&h.worker, &sub).await;
    assert_eq!(
        outcome,
        DeliveryOutcome::DeadLettered {
            reason: delivery_worker::worker::SECRET_UNREADABLE.into()
        }
    );
    assert!(server.received_requests().await.unwrap().is_empty());
    let parked = h.dlq.receive(10, 2).await.unwrap();
    assert_eq!(parked.len(), 1);
    let job: DeliveryJob = serde_json::from_str(&parked[0].body).unwrap();
    assert!(job
        .dead_letter_reason
        .unwrap()
        .starts_with("secret_unreadable:"));
    assert!(job.attempts.is_empty(), "no attempt was made");
    let stored = h.stores.subscriptions.get(&sub.id).await.unwrap().unwrap();
    assert_eq!(stored.health, Health::Failing);
}

/// KMS unreachable: the message is not acknowledged (it comes back after the visibility timeout),
/// nothing is sent, parked or counted as an attempt.
#[tokio::test]
async fn aws_kms_unreachable_leaves_the_job_on_the_queue() {
    let server = MockServer::start().await;
    respond(&server, ResponseTemplate::new(200), None).await;
    let test = "aws_kms_unreachable_leaves_the_job_on_the_queue";
    let Some((_, sealer)) = kms_harness(test, test_config(5)).await else {
        return;
    };
    let sdk = testkit::aws::sdk_config().await;
    let unreachable = aws_sdk_kms::config::Builder::from(&sdk)
        .endpoint_url(format!("http://127.0.0.1:{}", closed_port()))
        .build();
    let keys = KmsKeys::new(aws_sdk_kms::Client::from_conf(unreachable), "unused");
    let h = AwsHarness::new(&sdk, test_config(5), SecretOpener::new(Arc::new(keys))).await;
    let sub = sealed(&sealer, subscription(&format!("{}/hook", server.uri()))).await;
    h.stores.subscriptions.create(&sub, 10).await.unwrap();
    h.enqueue(&job_for(&sub, EventType::TelephonyCreated)).await;

    let outcomes = poll_once(&h.worker, h.queue.as_ref(), 1).await.unwrap();
    assert_eq!(outcomes.len(), 1);
    let DeliveryOutcome::Failed { error } = &outcomes[0] else {
        panic!("{outcomes:?}");
    };
    assert!(error.contains("key service unavailable"), "{error}");
    assert!(server.received_requests().await.unwrap().is_empty());
    assert!(h.dlq.receive(10, 1).await.unwrap().is_empty());
    assert!(h.attempts(&sub.id).await.is_empty());
    let stored = h.stores.subscriptions.get(&sub.id).await.unwrap().unwrap();
    assert_eq!(stored.health, sub.health, "not marked failing");
    assert_eq!(
        h.queue.approximate_depth().await.unwrap(),
        1,
        "still queued (in flight until poll_once's retry delay passes)"
    );
}

/// One telephony delivery to a healthy webhook, as Lambda runs it (a request id, the ingest's
/// trace context), counted on the DynamoDB client: the subscription read; the rate window and
/// the attempt claim, concurrently; the attempt record, which settles the claim — 3 sequential
/// round trips, 4 calls, 3 write units and 1 read unit — and every item written ≤ 1 KiB.
#[tokio::test]
async fn aws_a_delivery_is_three_round_trips_and_items_of_at_most_1_kib() {
    use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
    use relay_shared::adapters::aws::{item_size, OpCounter};

    let test = "aws_a_delivery_is_three_round_trips_and_items_of_at_most_1_kib";
    // The process-wide subscriber (a Lambda function always has one): the attempt record then
    // carries the trace and request ids, as deployed.
    let _logs = testkit::logs::capture();
    let Some(sdk) = testkit::aws::local(test, testkit::aws::BOTH).await else {
        return;
    };
    let ops = OpCounter::default();
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(ops.clone())
            // Concurrent calls one round however fast DynamoDB Local answers.
            .http_client(ops.http_client())
            .build(),
    );
    let aws =
        testkit::aws::Resources::with_clients(ddb.clone(), aws_sdk_sqs::Client::new(&sdk), "dw")
            .await;
    let table = aws.table.clone();
    let config = test_config(5);
    let h = AwsHarness::on(aws, config, TestKeys::new().opener());
    let server = MockServer::start().await;
    respond(
        &server,
        ResponseTemplate::new(200).set_body_string(r#"{"received":true}"#),
        None,
    )
    .await;
    let sub = subscription(&format!("{}/hook", server.uri()));
    h.stores.subscriptions.create(&sub, 10).await.unwrap();

    // The captured telephony event (tests/fixtures/seed001) as ingest relays it.
    let seed: serde_json::Value = serde_json::from_str(include_str!(
        "../../../../tests/fixtures/seed001/created.json"
    ))
    .unwrap();
    let envelope: relay_shared::webex::TelephonyEnvelope =
        serde_json::from_value(seed["items"].clone()).unwrap();
    let job = DeliveryJob {
        body: relay_shared::events::telephony_body(&envelope, chrono::Utc::now()),
        ..job_for(&sub, EventType::TelephonyCreated)
    };
    let mut message = SqsMessage::default();
    message.message_id = Some("m1".into());
    message.body = Some(raw(&job));
    message
        .attributes
        .insert("ApproximateReceiveCount".into(), "1".into());
    let mut traceparent = SqsMessageAttribute::default();
    traceparent.string_value =
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
    traceparent.data_type = Some("String".into());
    message
        .message_attributes
        .insert("traceparent".into(), traceparent);
    let mut context = lambda_runtime::Context::default();
    context.request_id = "8f3c2a6e-5b1d-4c7e-9a0f-2d6b8e4c1a93".into();
    let mut batch = SqsEvent::default();
    batch.records.push(message);
    let event = lambda_runtime::LambdaEvent::new(batch, context);
    ops.take();
    ops.take_rounds();
    ops.take_capacity();

    let response = delivery_worker::handler::function_handler(h.worker.clone(), None, event)
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    let counts = ops.take();
    let rounds = ops.take_rounds();
    let capacity = ops.take_capacity();
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    let want: std::collections::BTreeMap<String, u32> =
        [("GetItem", 1), ("UpdateItem", 1), ("PutItem", 2)]
            .into_iter()
            .map(|(op, n)| (op.to_owned(), n))
            .collect();
    assert_eq!(
        counts, want,
        "subscription read, rate window, claim, record"
    );
    assert_eq!(rounds, 3, "read; rate window ‖ claim; record");
    assert_eq!((capacity.write, capacity.read), (3.0, 1.0));

    // Every item the delivery wrote, by DynamoDB's size rule.
    let items = ddb.scan().table_name(&table).send().await.unwrap();
    let mut sizes = Vec::new();
    for item in items.items() {
        let pk = item["pk"].as_s().unwrap();
        if pk.starts_with("SUB") || pk.starts_with("OWNER") {
            continue; // the subscription, written by the test
        }
        let kind = pk.split('#').next().unwrap().to_owned();
        sizes.push((kind, item_size(item)));
    }
    eprintln!("items written by one delivery (bytes): {sizes:?}");
    let kinds: Vec<&str> = sizes.iter().map(|(k, _)| k.as_str()).collect();
    assert!(
        kinds.contains(&"ATTEMPTS") && kinds.contains(&"DEDUPE"),
        "{sizes:?}"
    );
    for (kind, size) in &sizes {
        assert!(
            *size <= 1024,
            "{kind} item of {size} B: over one write unit"
        );
    }
    let record = &h.attempts(&sub.id).await[0];
    assert!(record.trace_id.is_some() && record.request_id.is_some());
}
