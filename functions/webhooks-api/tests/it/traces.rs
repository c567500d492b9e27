//! Every request to the router has a root span (docs/observability.md, "Tracing"), wherever the
//! router runs (Lambda, the local stack, these tests): its log lines carry the trace id (and on
//! Lambda the invocation's request id), and the job it queues continues its trace.

use webhooks_api::ApiConfig;

use crate::common::*;

const HOOKS: &str = "/api/hooks/webhooks";

/// POSTs `…/test` for a new webhook (with `lambda_request_id` as Lambda's context when given);
/// returns the trace id of its "test event queued" line, that line, and the queued job's
/// `traceparent`.
async fn send_test(
    h: &Harness,
    logs: &testkit::logs::CapturedLogs,
    lambda_request_id: Option<&str>,
) -> (String, serde_json::Value, String) {
    let key = h.user().await;
    let created = h.create(&key, "traced").await;
    let id = created["id"].as_str().unwrap();
    let mut req = request("POST", &format!("{HOOKS}/{id}/test"), Some(&key), None, &[]);
    if let Some(request_id) = lambda_request_id {
        let mut context = lambda_http::Context::default();
        context.request_id = request_id.into();
        req.extensions_mut().insert(context);
    }
    h.send(req).await.assert_status(202);
    let line = logs
        .with_message("test event queued")
        .pop()
        .expect("the request's line");
    let trace_id = line["traceId"]
        .as_str()
        .unwrap_or_else(|| panic!("a traceId on the request's line: {line}"))
        .to_owned();
    let mut jobs = h.queue.receive(10, 0).await.unwrap();
    assert_eq!(jobs.len(), 1);
    let job = jobs.remove(0);
    h.queue.ack(&job.receipt).await.unwrap();
    let traceparent = job
        .trace
        .traceparent
        .clone()
        .expect("the queued job carries the request's trace context");
    (trace_id, line, traceparent)
}

#[tokio::test]
async fn a_request_logs_its_trace_and_the_job_it_queues_continues_it() {
    let logs = testkit::logs::capture();
    let h = Harness::memory(ApiConfig::default());
    let (trace_id, line, traceparent) = send_test(&h, &logs, None).await;
    assert_eq!(trace_id.len(), 32, "{line}");
    assert!(
        line["spanId"].as_str().is_some_and(|s| s.len() == 16),
        "{line}"
    );
    assert!(
        traceparent.starts_with(&format!("00-{trace_id}-")),
        "{traceparent} continues {trace_id}"
    );
    // The create request before it had a trace of its own: one trace per request.
    let created = logs.with_message("webhook created").pop().unwrap();
    assert!(created["traceId"].is_string(), "{created}");
    assert_ne!(created["traceId"], trace_id.as_str());
}

#[tokio::test]
async fn on_lambda_the_lines_carry_the_invocations_request_id() {
    let logs = testkit::logs::capture();
    let h = Harness::memory(ApiConfig::default());
    let (_, line, _) = send_test(&h, &logs, Some("lambda-req-7")).await;
    assert_eq!(line["requestId"], "lambda-req-7", "{line}");
}
