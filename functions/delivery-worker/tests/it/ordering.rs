//! Per-call ordering (docs/ordering.md): an ordered job is never re-sent; a failed attempt holds
//! its message, and so the rest of its message group, back on the FIFO queue; other groups flow on.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use delivery_worker::handler::{poll_ordered_once, process_ordered, OrderedMessage};
use delivery_worker::DeliveryOutcome;
use relay_shared::adapters::memory::MemoryQueue;
use relay_shared::delivery::{ordering_key, DeliveryJob};
use relay_shared::events::EventType;
use relay_shared::ports::{DeliveryQueue, QueuedJob};
use relay_shared::subscription::{Ordering as CallOrdering, Subscription};
use wiremock::matchers::{body_string_contains, header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::*;

/// A job of `call` for a per-call-ordered `sub`, its body naming the call.
fn ordered(sub: &Subscription, event_type: EventType, call: &str, sequence: u64) -> DeliveryJob {
    let mut job = job_for(sub, event_type);
    job.body =
        serde_json::json!({ "data": { "callId": call }, "event": event_type.as_str() }).to_string();
    job.sequence = Some(sequence);
    job.ordering_key = Some(ordering_key(&sub.id, call));
    job
}

/// A receiver that answers 500 to the first `failures` `telephony:created` POSTs of `call`, 200
/// to everything else.
async fn receiver(call: &str, failures: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("X-ServiceHook-Event", "telephony:created"))
        .and(body_string_contains(call))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(failures)
        .with_priority(1)
        .mount(&server)
        .await;
    respond(&server, ResponseTemplate::new(200), None).await;
    server
}

/// What the receiver got, in order: (call, event type, `webhook-sequence`).
async fn received(server: &MockServer) -> Vec<(String, String, String)> {
    let requests = server.received_requests().await.unwrap();
    requests
        .iter()
        .map(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            (
                body["data"]["callId"].as_str().unwrap().to_owned(),
                header_of(r, "X-ServiceHook-Event"),
                header_of(r, "webhook-sequence"),
            )
        })
        .collect()
}

fn header_of(r: &wiremock::Request, name: &str) -> String {
    crate::common::header(r, name)
        .unwrap_or_default()
        .to_owned()
}

async fn per_call_harness(url: &str, attempts: usize) -> (Harness, Subscription) {
    let h = Harness::new(test_config(attempts));
    let sub = Subscription {
        ordering: CallOrdering::PerCall,
        ..h.seal(subscription(url)).await
    };
    h.add(&sub).await;
    (h, sub)
}

/// A FIFO memory queue (the ordered queue's stand-in) holding `jobs`, visible now.
async fn fifo_holding(jobs: &[DeliveryJob]) -> Arc<MemoryQueue> {
    let fifo = Arc::new(MemoryQueue::fifo(Duration::from_secs(30)));
    let queued: Vec<QueuedJob> = jobs.iter().cloned().map(QueuedJob::now).collect();
    fifo.send(&queued).await.unwrap();
    fifo
}

fn message(job: &DeliveryJob) -> OrderedMessage {
    OrderedMessage {
        body: raw(job),
        receive_count: 1,
        group: job.ordering_key.clone(),
        trace: Default::default(),
    }
}

#[tokio::test]
async fn a_failure_holds_back_the_rest_of_its_group_only() {
    let server = receiver("call-a", 1).await;
    let (h, sub) = per_call_harness(&server.uri(), 3).await;
    let a1 = ordered(&sub, EventType::TelephonyCreated, "call-a", 1);
    let a2 = ordered(&sub, EventType::TelephonyUpdated, "call-a", 2);
    let b1 = ordered(&sub, EventType::TelephonyCreated, "call-b", 1);
    let a3 = ordered(&sub, EventType::TelephonyDeleted, "call-a", 3);
    let batch: Vec<OrderedMessage> = [&a1, &a2, &b1, &a3].into_iter().map(message).collect();

    let outcomes = process_ordered(&h.worker, &batch).await;
    assert_eq!(
        outcomes[0],
        Some(DeliveryOutcome::Held {
            attempt: Some(1),
            delay: Duration::ZERO
        }),
        "the failed created is held on the queue, not re-sent"
    );
    assert_eq!(outcomes[1], None, "updated is not processed behind it");
    assert_eq!(outcomes[3], None, "nor deleted");
    assert_eq!(
        outcomes[2],
        Some(delivered(1, 200)),
        "the other call flows on"
    );
    assert_eq!(h.queue.len(), 0, "nothing was re-sent");
    let got = received(&server).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.contains(&("call-b".into(), "telephony:created".into(), "1".into())));

    // The held message comes back as it was: the next receive makes attempt 2 (the worker reads
    // the held record, the body cannot count), then the group goes on in order.
    let again = process_ordered(&h.worker, &batch[..2]).await;
    assert_eq!(again, [Some(delivered(2, 200)), Some(delivered(1, 200))]);
    // A duplicate copy of the delivered created is dropped, not posted a third time.
    let dup = process_ordered(&h.worker, &batch[..1]).await;
    assert!(
        matches!(dup[0], Some(DeliveryOutcome::Dropped { .. })),
        "{dup:?}"
    );
    let attempts = h.attempts(&sub.id).await;
    assert_eq!(attempts.len(), 4, "two of created, one of updated and b");
}

#[tokio::test]
async fn the_last_held_attempt_is_dead_lettered_and_releases_the_group() {
    let server = receiver("call-a", 10).await;
    let (h, sub) = per_call_harness(&server.uri(), 2).await;
    let a1 = ordered(&sub, EventType::TelephonyCreated, "call-a", 1);
    let first = process_ordered(&h.worker, &[message(&a1)]).await;
    assert!(matches!(
        first[0],
        Some(DeliveryOutcome::Held {
            attempt: Some(1),
            ..
        })
    ));
    let second = process_ordered(&h.worker, &[message(&a1)]).await;
    assert!(
        matches!(second[0], Some(DeliveryOutcome::DeadLettered { .. })),
        "{second:?}"
    );
    let parked: DeliveryJob = serde_json::from_str(&h.dlq.bodies()[0]).unwrap();
    assert_eq!(
        parked.ordering_key, a1.ordering_key,
        "a redrive goes back into its group"
    );
}

/// Through the FIFO memory queue and the local stack's ordered consumer round: the receiver
/// fails `created` twice and still gets created, updated, deleted in that order, while the other
/// call's events pass meanwhile.
#[tokio::test]
async fn created_failing_twice_still_comes_before_updated_and_deleted() {
    let server = receiver("call-a", 2).await;
    let (h, sub) = per_call_harness(&server.uri(), 5).await;
    let fifo = fifo_holding(&[
        ordered(&sub, EventType::TelephonyCreated, "call-a", 1),
        ordered(&sub, EventType::TelephonyUpdated, "call-a", 2),
        ordered(&sub, EventType::TelephonyDeleted, "call-a", 3),
        ordered(&sub, EventType::TelephonyCreated, "call-b", 1),
        ordered(&sub, EventType::TelephonyDeleted, "call-b", 2),
    ])
    .await;
    for _ in 0..20 {
        if fifo.is_empty() {
            break;
        }
        poll_ordered_once(&h.worker, fifo.as_ref(), 0)
            .await
            .unwrap();
    }
    assert!(fifo.is_empty());
    let got = received(&server).await;
    let of = |call: &str| -> Vec<(String, String)> {
        got.iter()
            .filter(|(c, _, _)| c == call)
            .map(|(_, e, s)| (e.clone(), s.clone()))
            .collect()
    };
    let pair = |e: &str, s: &str| (e.to_owned(), s.to_owned());
    assert_eq!(
        of("call-a"),
        [
            pair("telephony:created", "1"),
            pair("telephony:created", "1"),
            pair("telephony:created", "1"),
            pair("telephony:updated", "2"),
            pair("telephony:deleted", "3"),
        ]
    );
    assert_eq!(
        of("call-b"),
        [
            pair("telephony:created", "1"),
            pair("telephony:deleted", "2")
        ]
    );
    let b_done = got.iter().rposition(|(c, _, _)| c == "call-b").unwrap();
    let a_created_ok = got
        .iter()
        .enumerate()
        .filter(|(_, (c, e, _))| c == "call-a" && e == "telephony:created")
        .nth(2)
        .unwrap()
        .0;
    assert!(
        b_done < a_created_ok,
        "call-b was not held back by call-a's retries: {got:?}"
    );
}

/// The Lambda handler on a FIFO batch: the failed record and the rest of its group are batch
/// item failures, the held one's visibility is set to its retry delay; the other group is done.
#[tokio::test]
async fn lambda_reports_the_held_group_and_holds_its_message() {
    let server = receiver("call-a", 1).await;
    let (h, sub) = per_call_harness(&server.uri(), 3).await;
    let fifo = fifo_holding(&[
        ordered(&sub, EventType::TelephonyCreated, "call-a", 1),
        ordered(&sub, EventType::TelephonyUpdated, "call-a", 2),
        ordered(&sub, EventType::TelephonyCreated, "call-b", 1),
    ])
    .await;
    let received_jobs = relay_shared::ports::QueueConsumer::receive(fifo.as_ref(), 10, 0)
        .await
        .unwrap();
    assert_eq!(received_jobs.len(), 3);
    let mut event = SqsEvent::default();
    for (i, r) in received_jobs.iter().enumerate() {
        let mut m = SqsMessage::default();
        m.message_id = Some(format!("m{i}"));
        m.receipt_handle = Some(r.receipt.clone());
        m.body = Some(r.body.clone());
        m.event_source_arn = Some("arn:aws:sqs:eu-west-1:123456789012:relay-ordered.fifo".into());
        m.attributes.insert(
            "MessageGroupId".into(),
            message_group_of(&r.body).unwrap_or_default(),
        );
        event.records.push(m);
    }
    let lambda = lambda_runtime::LambdaEvent::new(event, Default::default());
    let consumer: Arc<dyn relay_shared::ports::QueueConsumer> = fifo.clone();
    let response = delivery_worker::function_handler(h.worker.clone(), Some(consumer), lambda)
        .await
        .unwrap();
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["m0", "m1"]);
    let got = received(&server).await;
    assert_eq!(got.len(), 2, "created of a (failed) and of b: {got:?}");
    // The unprocessed `updated` was made visible again, not left in flight for the visibility
    // timeout (which would keep the group back that long, whatever the retry delay): once the
    // held head is gone, it is handed out at once.
    relay_shared::ports::QueueConsumer::ack(fifo.as_ref(), &received_jobs[0].receipt)
        .await
        .unwrap();
    let next = relay_shared::ports::QueueConsumer::receive(fifo.as_ref(), 10, 0)
        .await
        .unwrap();
    assert_eq!(
        next.len(),
        1,
        "the unprocessed rest of the group is visible"
    );
    assert_eq!(next[0].body, received_jobs[1].body);
}

fn message_group_of(body: &str) -> Option<String> {
    delivery_worker::handler::message_group(body)
}

/// An ordered job that reached the standard queue (a producer without the routed queue, e.g. an
/// old `relay-keys redrive-dlq`) is not attempted there, where a retry could not be held: the
/// worker moves it to the ordered queue and acknowledges it.
#[tokio::test]
async fn an_ordered_job_on_the_standard_queue_is_moved_to_the_ordered_queue() {
    let server = receiver("call-a", 1).await;
    let config = test_config(3);
    let fifo = Arc::new(MemoryQueue::fifo(Duration::from_secs(30)));
    let standard = Arc::new(MemoryQueue::new(Duration::from_secs(30)));
    let dlq = Arc::new(MemoryQueue::new(Duration::from_secs(30)));
    let routed = Arc::new(relay_shared::ports::RoutedQueue {
        standard: standard.clone(),
        ordered: Some(fifo.clone() as Arc<dyn DeliveryQueue>),
    });
    let h = Harness::with_queues(
        config.clone(),
        sender(&config),
        Arc::new(relay_shared::clock::SystemClock),
        relay_shared::adapters::memory::memory_stores(),
        standard,
        routed,
        dlq.clone(),
        dlq,
    );
    let sub = Subscription {
        ordering: CallOrdering::PerCall,
        ..h.seal(subscription(&server.uri())).await
    };
    h.add(&sub).await;
    let job = ordered(&sub, EventType::TelephonyCreated, "call-a", 1);
    let mut m = SqsMessage::default();
    m.message_id = Some("m0".into());
    m.receipt_handle = Some("r0".into());
    m.body = Some(raw(&job));
    m.event_source_arn = Some("arn:aws:sqs:eu-west-1:123456789012:relay-deliveries".into());
    let mut event = SqsEvent::default();
    event.records.push(m);
    let response = h.handle(event).await;
    assert!(response.batch_item_failures.is_empty(), "acknowledged");
    assert!(
        received(&server).await.is_empty(),
        "not attempted on the standard queue"
    );
    let moved = relay_shared::ports::QueueConsumer::receive(fifo.as_ref(), 10, 0)
        .await
        .unwrap();
    assert_eq!(moved.len(), 1, "re-sent to the ordered queue");
    let moved: DeliveryJob = serde_json::from_str(&moved[0].body).unwrap();
    assert_eq!(moved, job);
}

/// A group's messages run one after the other: the handler starts one only while the delivery
/// timeout plus a margin is left of the invocation, and leaves the rest of the group
/// unprocessed (batch item failures, back at once) instead of being killed mid-POST at the
/// function timeout.
#[tokio::test]
async fn lambda_leaves_what_would_outlast_the_invocation_unprocessed() {
    let server = MockServer::start().await;
    respond(
        &server,
        ResponseTemplate::new(200).set_delay(Duration::from_millis(1500)),
        None,
    )
    .await;
    let (h, sub) = per_call_harness(&server.uri(), 3).await;
    let jobs = [
        ordered(&sub, EventType::TelephonyCreated, "call-a", 1),
        ordered(&sub, EventType::TelephonyUpdated, "call-a", 2),
        ordered(&sub, EventType::TelephonyCreated, "call-b", 1),
    ];
    let mut event = SqsEvent::default();
    for (i, job) in jobs.iter().enumerate() {
        let mut m = SqsMessage::default();
        m.message_id = Some(format!("m{i}"));
        m.receipt_handle = Some(format!("r{i}"));
        m.body = Some(raw(job));
        m.event_source_arn = Some("arn:aws:sqs:eu-west-1:123456789012:relay-ordered.fifo".into());
        event.records.push(m);
    }
    // Time for one slow delivery per group, not two.
    let needed = h.worker.config().delivery_timeout + delivery_worker::handler::DEADLINE_MARGIN;
    let deadline = std::time::SystemTime::now() + needed + Duration::from_secs(1);
    let mut context = lambda_runtime::Context::default();
    context.deadline = deadline
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let lambda = lambda_runtime::LambdaEvent::new(event, context);
    let response = delivery_worker::function_handler(h.worker.clone(), None, lambda)
        .await
        .unwrap();
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        ["m1"],
        "call-a's second message waits for the next batch"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}
