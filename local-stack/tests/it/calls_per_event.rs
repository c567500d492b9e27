//! What one telephony event delivered to one subscriber costs, with warm containers and a
//! healthy webhook, counted with SDK interceptors ([`OpCounter`]) against DynamoDB Local + moto:
//! DynamoDB calls and the capacity they consumed (as DynamoDB Local reports it), SQS calls (the
//! ingest's send, and the receive and delete the SQS event source makes on Lambda), and the
//! sequential AWS round trips before the ingest answers Webex and in the worker. The figures feed
//! the cost model in docs/performance.md; the exact assertions make any change to them a
//! deliberate one. It prints one line:
//! `per delivered event: N DynamoDB calls (W WRU, R RRU), S SQS calls, T sequential round trips at ingest`.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use delivery_worker::http_sender::ReqwestSender;
use delivery_worker::{DeliveryOutcome, Ports, Worker, WorkerConfig};
use relay_shared::adapters::aws::{item_size, Capacity, OpCounter};
use relay_shared::clock::SystemClock;
use relay_shared::events::EventType;
use relay_shared::ports::{CorePorts, QueueConsumer};
use relay_shared::subscription::Subscription;
use relay_shared::webex::webex_signature;
use telephony_ingest::{Ingest, IngestConfig, WebhookAuth};

fn counts(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn calls(counts: &BTreeMap<String, u32>) -> u32 {
    counts.values().sum()
}

/// A captured telephony webhook (tests/fixtures/seed001), moved into the ingest's freshness
/// window as a live event is (the capture is from 2025), as the raw body Webex posts.
fn captured(text: &str) -> (String, String) {
    let mut fixture: serde_json::Value = serde_json::from_str(text).unwrap();
    relay_shared::webex::redate_captured(&mut fixture["items"]);
    let org = fixture["items"]["orgId"].as_str().unwrap().to_owned();
    (fixture["items"].to_string(), org)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_and_sqs_calls_per_telephony_event() {
    let test = "dynamodb_and_sqs_calls_per_telephony_event";
    let Some(sdk) = testkit::aws::local(test, testkit::aws::BOTH).await else {
        return;
    };
    // One round tracker over both clients: the ingest's rounds mix DynamoDB and SQS calls. Their
    // HTTP client answers no request in the poll that sent it, so concurrent calls count as one
    // round however fast the local servers answer (OpCounter::http_client).
    let ddb_ops = OpCounter::default();
    let sqs_ops = ddb_ops.sharing_rounds();
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(ddb_ops.clone())
            .http_client(ddb_ops.http_client())
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk)
            .interceptor(sqs_ops.clone())
            .http_client(sqs_ops.http_client())
            .build(),
    );
    let aws = testkit::aws::Resources::with_clients(ddb.clone(), sqs, "calls").await;
    let (stores, queue, dlq, table) = (aws.stores, aws.queue, aws.dlq, aws.table);

    // A receiver and one subscription of the seed's org, to the call's telephony events.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::Router::new().route("/hook", axum::routing::post(|| async { "ok" })),
        )
        .await
    });
    // In the captured order: `updated` warms the containers, `created` is counted.
    let (warm_up, org) = captured(include_str!("../../../tests/fixtures/seed001/updated.json"));
    let (counted, _) = captured(include_str!("../../../tests/fixtures/seed001/created.json"));
    let sub = Subscription {
        url,
        ..testkit::fixtures::subscription(
            &org,
            &[EventType::TelephonyUpdated, EventType::TelephonyCreated],
        )
    };
    stores.subscriptions.create(&sub, 10).await.unwrap();

    let core = CorePorts {
        stores: stores.clone(),
        queue: queue.clone(),
        clock: Arc::new(SystemClock),
    };
    let mut ingest_config = IngestConfig::new(WebhookAuth::secret("s"));
    // Long enough that the warm-up's cached subscriptions serve the counted event however slow
    // the machine (the default, 5 s, is a wall-clock bound).
    ingest_config.subscriptions_cache_ttl = chrono::Duration::minutes(10);
    let ingest = Ingest::new(core.clone(), ingest_config);
    let worker_config = WorkerConfig::from_env_pairs(&[
        ("ALLOW_PRIVATE_TARGETS", "true"),
        ("ALLOW_HTTP_TARGETS", "true"),
    ])
    .unwrap();
    let http = Arc::new(
        ReqwestSender::new(
            worker_config.targets.clone(),
            worker_config.max_response_bytes,
        )
        .unwrap(),
    );
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
        worker_config,
    );

    // One event through ingest, the event source and the worker; what each step cost.
    struct Step {
        ddb: BTreeMap<String, u32>,
        sqs: BTreeMap<String, u32>,
        capacity: Capacity,
        rounds: usize,
    }
    let take = || Step {
        ddb: ddb_ops.take(),
        sqs: sqs_ops.take(),
        capacity: {
            let (d, s) = (ddb_ops.take_capacity(), sqs_ops.take_capacity());
            Capacity {
                write: d.write + s.write,
                read: d.read + s.read,
            }
        },
        rounds: ddb_ops.take_rounds(),
    };
    let one_event = |raw: String| {
        let (ingest, worker, queue, take) = (&ingest, &worker, &queue, &take);
        async move {
            let response = ingest
                .handle(raw.as_bytes(), Some(&webex_signature(b"s", raw.as_bytes())))
                .await;
            assert_eq!(response.status.as_u16(), 200, "{:?}", response.body);
            let at_ingest = take();
            let received = queue.receive(10, 1).await.unwrap();
            assert_eq!(received.len(), 1, "one delivery job");
            let received_step = take();
            let outcome = worker.process_message(&received[0].body, 1).await;
            assert!(
                matches!(outcome, DeliveryOutcome::Delivered { .. }),
                "{outcome:?}"
            );
            let in_worker = take();
            queue.ack(&received[0].receipt).await.unwrap();
            let deleted_step = take();
            (at_ingest, in_worker, [received_step, deleted_step])
        }
    };

    // The warm-up fills the ingest's subscription cache and opens the clients' connections, as a
    // warm container has them; its own figures are not looked at.
    let _ = take();
    let _ = one_event(warm_up).await;
    let (ingest, worker, source) = one_event(counted).await;

    // Ingest, warm (the org's subscriptions cached): round 1 the call-state read ‖ the event-log
    // append (compressed body: one write unit), round 2 the call-state conditional write,
    // round 3 one SendMessageBatch.
    assert_eq!(
        ingest.ddb,
        counts(&[("GetItem", 1), ("PutItem", 2)]),
        "ingest"
    );
    assert_eq!(ingest.sqs, counts(&[("SendMessageBatch", 1)]), "ingest");
    assert_eq!(ingest.rounds, 3, "sequential round trips at ingest");
    // The worker: the subscription read fresh; the rate window ‖ the attempt claim; the POST; the
    // attempt record (which settles the claim). No SQS call of its own.
    assert_eq!(
        worker.ddb,
        counts(&[("GetItem", 1), ("PutItem", 2), ("UpdateItem", 1)]),
        "worker"
    );
    assert!(worker.sqs.is_empty(), "{:?}", worker.sqs);
    assert_eq!(worker.rounds, 3, "sequential round trips in the worker");
    // The event source (Lambda's SQS poller; here the test): one receive, one delete.
    assert_eq!(source[0].sqs, counts(&[("ReceiveMessage", 1)]), "receive");
    assert_eq!(source[1].sqs, counts(&[("DeleteMessage", 1)]), "delete");
    // Every item that path wrote is at most one write unit (DynamoDB's size rule).
    let items = ddb
        .scan()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let written = |pk: &str| {
        ["EVENTS#", "CALL#", "DEDUPE#", "ATTEMPTS#", "RATE#"]
            .iter()
            .any(|p| pk.starts_with(p))
    };
    let sizes: Vec<(String, usize)> = items
        .iter()
        .filter_map(|item| match item.get("pk") {
            Some(AttributeValue::S(pk)) if written(pk) => {
                let kind = pk.split('#').next().unwrap_or_default();
                let sk = match item.get("sk") {
                    Some(AttributeValue::S(sk)) => sk.as_str(),
                    _ => "",
                };
                Some((format!("{kind}#…/{sk}"), item_size(item)))
            }
            _ => None,
        })
        .collect();
    assert!(sizes.len() >= 5, "{sizes:?}");
    assert!(
        sizes.iter().all(|(_, size)| *size <= 1024),
        "an item over one write unit: {sizes:?}"
    );

    let steps = [&ingest, &worker, &source[0], &source[1]];
    let ddb_calls: u32 = steps.iter().map(|s| calls(&s.ddb)).sum();
    let sqs_calls: u32 = steps.iter().map(|s| calls(&s.sqs)).sum();
    let wru: f64 = steps.iter().map(|s| s.capacity.write).sum();
    let rru: f64 = steps.iter().map(|s| s.capacity.read).sum();
    assert_eq!(ddb_calls, 7);
    assert_eq!(sqs_calls, 3);
    assert_eq!(
        (ingest.capacity.write, ingest.capacity.read),
        (2.0, 1.0),
        "ingest capacity"
    );
    assert_eq!((wru, rru), (5.0, 2.0), "capacity per delivered event");

    println!(
        "per delivered event: {ddb_calls} DynamoDB calls ({wru:.1} WRU, {rru:.1} RRU), {sqs_calls} SQS calls, {} sequential round trips at ingest",
        ingest.rounds
    );
}
