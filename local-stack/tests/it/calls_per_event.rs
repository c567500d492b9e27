//! How many DynamoDB and SQS calls one telephony event costs, ingest plus one delivery, counted
//! with SDK interceptors against DynamoDB Local + moto. The figures feed the cost model in
//! docs/performance.md; the exact assertions make any change to them a deliberate one.

use std::collections::BTreeMap;
use std::sync::Arc;

use delivery_worker::http_sender::ReqwestSender;
use delivery_worker::{DeliveryOutcome, Ports, Worker, WorkerConfig};
use relay_shared::adapters::aws::OpCounter;
use relay_shared::clock::SystemClock;
use relay_shared::events::EventType;
use relay_shared::ports::{CorePorts, QueueConsumer};
use relay_shared::subscription::Subscription;
use relay_shared::webex::webex_signature;
use telephony_ingest::{Ingest, IngestConfig, WebhookAuth};

fn counts(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_and_sqs_calls_per_telephony_event() {
    let test = "dynamodb_and_sqs_calls_per_telephony_event";
    let Some(sdk) = testkit::aws::local(test, testkit::aws::BOTH).await else {
        return;
    };
    let (ddb_ops, sqs_ops) = (OpCounter::default(), OpCounter::default());
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(ddb_ops.clone())
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk)
            .interceptor(sqs_ops.clone())
            .build(),
    );
    let aws = testkit::aws::Resources::with_clients(ddb, sqs, "calls").await;
    let (stores, queue, dlq) = (aws.stores, aws.queue, aws.dlq);

    // A receiver and one subscription of the seed's org.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::Router::new().route("/hook", axum::routing::post(|| async { "ok" })),
        )
        .await
    });
    let mut fixture: serde_json::Value =
        serde_json::from_str(include_str!("../../../tests/fixtures/seed001/created.json")).unwrap();
    // Within the ingest's freshness window, as a live event is (the capture is from 2025).
    relay_shared::webex::redate_captured(&mut fixture["items"]);
    let envelope = fixture["items"].to_string();
    let org = fixture["items"]["orgId"].as_str().unwrap().to_owned();
    let sub = Subscription {
        url,
        ..testkit::fixtures::subscription(&org, &[EventType::TelephonyCreated])
    };
    stores.subscriptions.create(&sub, 10).await.unwrap();
    let (_, _) = (ddb_ops.take(), sqs_ops.take());

    // Ingest one event.
    let core = CorePorts {
        stores: stores.clone(),
        queue: queue.clone(),
        clock: Arc::new(SystemClock),
    };
    let ingest = Ingest::new(core.clone(), IngestConfig::new(WebhookAuth::secret("s")));
    let response = ingest
        .handle(
            envelope.as_bytes(),
            Some(&webex_signature(b"s", envelope.as_bytes())),
        )
        .await;
    assert_eq!(response.status.as_u16(), 200);
    let ingest_ddb = ddb_ops.take();
    let ingest_sqs = sqs_ops.take();

    // Deliver it (the SQS event source does the receive and delete on Lambda; counted apart).
    let config = WorkerConfig::from_env_pairs(&[
        ("ALLOW_PRIVATE_TARGETS", "true"),
        ("ALLOW_HTTP_TARGETS", "true"),
    ])
    .unwrap();
    let http =
        Arc::new(ReqwestSender::new(config.targets.clone(), config.max_response_bytes).unwrap());
    let worker = Worker::new(
        Ports {
            core,
            http,
            dead_letter_sink: dlq,
            // The subscription holds a legacy plain secret: no key service call is counted.
            secrets: relay_shared::secrets_at_rest::SecretOpener::new(Arc::new(
                relay_shared::secrets_at_rest::LocalKey::generate(),
            )),
        },
        config,
    );
    let received = queue.receive(10, 1).await.unwrap();
    assert_eq!(received.len(), 1);
    let _ = sqs_ops.take();
    let outcome = worker.process_message(&received[0].body, 1).await;
    assert!(
        matches!(outcome, DeliveryOutcome::Delivered { .. }),
        "{outcome:?}"
    );
    let worker_ddb = ddb_ops.take();
    let worker_sqs = sqs_ops.take();

    println!("ingest  DynamoDB {ingest_ddb:?}  SQS {ingest_sqs:?}");
    println!("deliver DynamoDB {worker_ddb:?}  SQS {worker_sqs:?}");
    // Ingest (a cold subscriptions cache): call-state read, event-log append and the org's
    // subscriptions (one GSI query) concurrently; the call-state conditional write; one
    // SendMessageBatch. No dedupe record: a redelivery collapses at the worker's attempt claim.
    assert_eq!(
        ingest_ddb,
        counts(&[("GetItem", 1), ("PutItem", 2), ("Query(index)", 1)])
    );
    assert_eq!(ingest_sqs, counts(&[("SendMessageBatch", 1)]));
    // Delivery (cold subscription cache): subscription read; rate-limit counter and the webhook's
    // stats bucket (2 updates, `GET …/stats`); attempt claim, attempt record and claim completion
    // (3 puts); no SQS call besides the event source's receive/delete.
    assert_eq!(
        worker_ddb,
        counts(&[("GetItem", 1), ("PutItem", 3), ("UpdateItem", 2)])
    );
    assert!(worker_sqs.is_empty(), "{worker_sqs:?}");
}
