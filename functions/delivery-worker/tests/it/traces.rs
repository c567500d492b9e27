//! The Lambda side of the SQS hop (docs/observability.md, "Tracing"): a record's `traceparent` /
//! `baggage` message attributes continue the sender's trace, the attempt record names that trace
//! and the invocation's request id, and a retry re-sent to the queue carries the same trace.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use relay_shared::events::EventType;
use relay_shared::ports::QueueConsumer;
use wiremock::{MockServer, ResponseTemplate};

use crate::common::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn attribute(value: &str) -> SqsMessageAttribute {
    let mut a = SqsMessageAttribute::default();
    a.data_type = Some("String".into());
    a.string_value = Some(value.into());
    a
}

async fn invoke(h: &Harness, body: String) {
    let mut m = SqsMessage::default();
    m.message_id = Some("m-1".into());
    m.body = Some(body);
    m.message_attributes
        .insert("traceparent".into(), attribute(TRACEPARENT));
    m.message_attributes
        .insert("baggage".into(), attribute("webex.trackingid=ROUTER_t-1"));
    let mut event = SqsEvent::default();
    event.records.push(m);
    let mut context = lambda_runtime::Context::default();
    context.request_id = "lambda-req-1".into();
    let event = lambda_runtime::LambdaEvent::new(event, context);
    delivery_worker::function_handler(h.worker.clone(), None, event)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_records_trace_context_reaches_the_attempt_record_and_the_retry() {
    // The process-wide subscriber (a Lambda function always has one): span ids live in it.
    let _logs = testkit::logs::capture();
    let server = MockServer::start().await;
    respond(&server, ResponseTemplate::new(500), None).await;
    let (h, sub) = Harness::subscribed(test_config(3), &server.uri()).await;
    invoke(&h, raw(&job_for(&sub, EventType::TelephonyCreated))).await;

    let attempts = h.attempts(&sub.id).await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        attempts[0].trace_id.as_deref(),
        Some(TRACE),
        "the sender's trace"
    );
    assert_eq!(attempts[0].request_id.as_deref(), Some("lambda-req-1"));

    // The retry goes back on the queue with the same trace (a span of the worker as parent) and
    // the tracking id.
    let retry = h.queue.receive(1, 0).await.unwrap().remove(0);
    let tp = retry
        .trace
        .traceparent
        .clone()
        .expect("a traceparent on the re-sent job");
    assert!(tp.starts_with(&format!("00-{TRACE}-")), "{tp}");
    assert!(
        !tp.contains("00f067aa0ba902b7"),
        "its own span as parent: {tp}"
    );
    assert_eq!(retry.trace.tracking_id().as_deref(), Some("ROUTER_t-1"));
}
