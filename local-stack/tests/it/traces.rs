//! Issue 14's tracing acceptance: the local stack exports OTLP (http/protobuf) to a loopback
//! collector in this test, and ONE trace spans the ingest request and the delivery attempt,
//! joined through the queue's `traceparent` message attribute, with the Webex tracking id,
//! event id, webhook id, attempt number and HTTP status as attributes. The JSON log lines and
//! the attempt record carry the same trace id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use prost::Message;
use relay_shared::signing::SigningSecret;
use relay_shared::webex::webex_signature;
use serde_json::Value;

use crate::support::*;

/// One exported span, flattened.
#[derive(Debug, Clone)]
struct Exported {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: HashMap<String, String>,
}

/// An OTLP/HTTP traces receiver on 127.0.0.1 (`POST /v1/traces`, protobuf), keeping every span.
struct Collector {
    endpoint: String,
    spans: Arc<Mutex<Vec<Exported>>>,
    task: tokio::task::JoinHandle<()>,
}

async fn export(
    State(spans): State<Arc<Mutex<Vec<Exported>>>>,
    body: Bytes,
) -> impl axum::response::IntoResponse {
    let Ok(req) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, Vec::new());
    };
    let mut out = spans.lock().unwrap();
    for rs in req.resource_spans {
        let service = rs
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| text(kv.value.as_ref()?.value.as_ref()?))
            .unwrap_or_default();
        for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
            out.push(Exported {
                service: service.clone(),
                name: span.name,
                trace_id: hex::encode(&span.trace_id),
                span_id: hex::encode(&span.span_id),
                parent_span_id: hex::encode(&span.parent_span_id),
                attributes: span
                    .attributes
                    .iter()
                    .filter_map(|kv| {
                        Some((kv.key.clone(), text(kv.value.as_ref()?.value.as_ref()?)?))
                    })
                    .collect(),
            });
        }
    }
    (
        StatusCode::OK,
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
}

fn text(v: &Any) -> Option<String> {
    match v {
        Any::StringValue(s) => Some(s.clone()),
        Any::IntValue(i) => Some(i.to_string()),
        Any::BoolValue(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Collector {
    async fn start() -> Collector {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/v1/traces", post(export))
            .with_state(spans.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Collector {
            endpoint: format!("http://{addr}"),
            spans,
            task,
        }
    }

    fn spans(&self) -> Vec<Exported> {
        self.spans.lock().unwrap().clone()
    }

    /// Polls (bounded) until `found` returns something from the spans received so far.
    async fn wait_for<T>(
        &self,
        within: Duration,
        found: impl Fn(&[Exported]) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(t) = found(&self.spans()) {
                return Some(t);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The names from `from` up to `to` through the exported parents, if they are all there.
fn chain(spans: &[Exported], from: &Exported, to: &Exported) -> Option<Vec<String>> {
    let mut names = vec![from.name.clone()];
    let mut at = from;
    while at.span_id != to.span_id {
        at = spans
            .iter()
            .find(|s| s.trace_id == to.trace_id && s.span_id == at.parent_span_id)?;
        names.push(at.name.clone());
    }
    Some(names)
}

const TRACKING_ID: &str = "ROUTER_e2e-trace-0001";

async fn one_trace_from_ingest_to_attempt(aws: bool) {
    let collector = Collector::start().await;
    let receiver = Receiver::start(Behaviour::Ok).await;
    let stack = Stack::start_with_env(
        &["--retry-schedule", "0,1,1,1,1", "--log-json"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint.as_str()),
            ("OTEL_SERVICE_NAME", "relay-e2e"),
            // Export every 100 ms: the local stack is long-running (a Lambda function flushes at
            // the end of each invocation instead).
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            (
                "RUST_LOG",
                "warn,telephony_ingest=info,delivery_worker=info,webhooks_api=info",
            ),
        ],
        aws,
    )
    .await;
    let secret = SigningSecret::generate();
    let sub_id = stack.subscribe(&receiver.url, secret.expose()).await;
    let envelope = seed_envelopes().remove(1).0;
    let status = stack
        .http
        .post(format!("{}/webex/telephony", stack.base))
        .header("content-type", "application/json")
        .header("trackingid", TRACKING_ID)
        .header(
            "x-spark-signature",
            webex_signature(WEBEX_SECRET.as_bytes(), envelope.as_bytes()),
        )
        .body(envelope)
        .send()
        .await
        .expect("ingest request")
        .status();
    assert_eq!(status, 200);
    assert_eq!(
        receiver
            .wait_for_successes(1, Duration::from_secs(30))
            .await,
        1,
        "delivered; the stack's log:\n{}",
        stack.log(50)
    );

    // The ingest request's span and, in the same trace, the attempt's.
    let found = collector
        .wait_for(Duration::from_secs(30), |spans| {
            let ingest = spans.iter().find(|s| {
                s.name == "POST /webex/telephony"
                    && s.attributes.get("webex.trackingid").map(String::as_str) == Some(TRACKING_ID)
            })?;
            let attempt = spans
                .iter()
                .find(|s| s.name == "POST webhook" && s.trace_id == ingest.trace_id)?;
            // And every span between them (a parent ends, so is exported, after its children).
            chain(spans, attempt, ingest)?;
            Some((ingest.clone(), attempt.clone()))
        })
        .await;
    let spans = collector.spans();
    let Some((ingest, attempt)) = found else {
        panic!(
            "no trace spanning the ingest request and the attempt; spans: {spans:#?}\nlog:\n{}",
            stack.log(50)
        );
    };
    assert_eq!(ingest.service, "relay-e2e");
    assert_eq!(
        ingest.parent_span_id, "",
        "the ingest request starts the trace"
    );
    assert_eq!(ingest.attributes["http.response.status_code"], "200");
    let a = &attempt.attributes;
    assert_eq!(a["webex.trackingid"], TRACKING_ID, "{a:?}");
    assert_eq!(a["webhook.id"], sub_id);
    assert_eq!(a["delivery.attempt"], "1");
    assert_eq!(a["http.response.status_code"], "200");
    assert_eq!(
        a["event.id"], ingest.attributes["event.id"],
        "the ingested event's delivery"
    );

    // The chain from the attempt up to the ingest request: the job span (the queue hop's
    // consumer side, whose parent came from the message attribute), in aws mode through the
    // SQS producer span.
    let chain = chain(&spans, &attempt, &ingest).expect("complete");
    let expected: &[&str] = if aws {
        &[
            "POST webhook",
            "delivery job process",
            "sqs.send",
            "POST /webex/telephony",
        ]
    } else {
        &[
            "POST webhook",
            "delivery job process",
            "POST /webex/telephony",
        ]
    };
    assert_eq!(chain, expected);
    let job = spans
        .iter()
        .find(|s| s.span_id == attempt.parent_span_id)
        .unwrap();
    assert_eq!(
        job.attributes["webex.trackingid"], TRACKING_ID,
        "from the baggage attribute"
    );

    // The log lines of both sides carry the trace id; the attempt record too.
    let output = stack.output();
    let lines: Vec<Value> = output
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l.get("fields").is_some())
        .collect();
    for message in ["telephony webhook", "delivery job processed"] {
        let line = lines
            .iter()
            .find(|l| l["fields"]["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} line in:\n{output}"));
        assert_eq!(line["traceId"], ingest.trace_id.as_str(), "{line}");
        assert!(
            line["spanId"].as_str().is_some_and(|s| s.len() == 16),
            "{line}"
        );
    }
    let request = lines
        .iter()
        .find(|l| l["fields"]["message"] == "telephony webhook")
        .unwrap();
    assert_eq!(request["requestId"], request["fields"]["request_id"]);
    let record = attempt_record(&stack, &sub_id).await;
    assert_eq!(record["traceId"], ingest.trace_id.as_str(), "{record}");

    // An API request is a trace of its own (the router's `api.request` span, here as on Lambda),
    // and the test delivery it queues continues it: request → job → attempt.
    let path = format!("/api/hooks/webhooks/{sub_id}/test");
    let (status, queued) = stack
        .api(reqwest::Method::POST, &path, USER_KEY, None)
        .await;
    assert_eq!(status, 202, "{queued}");
    let found = collector
        .wait_for(Duration::from_secs(30), |spans| {
            let request = spans
                .iter()
                .find(|s| s.name == "POST" && s.attributes.get("url.path") == Some(&path))?;
            let attempt = spans
                .iter()
                .find(|s| s.name == "POST webhook" && s.trace_id == request.trace_id)?;
            Some((request.clone(), self::chain(spans, attempt, request)?))
        })
        .await;
    let Some((request, api_chain)) = found else {
        panic!(
            "no trace spanning the API request and the test delivery; spans: {:#?}\nlog:\n{}",
            collector.spans(),
            stack.log(50)
        );
    };
    assert_eq!(
        request.parent_span_id, "",
        "the API request starts its trace"
    );
    assert_eq!(api_chain.first().map(String::as_str), Some("POST webhook"));
    assert!(
        api_chain.iter().any(|n| n == "delivery job process"),
        "{api_chain:?}"
    );
    let output = stack.output();
    let line = output
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"] == "test event queued")
        .unwrap_or_else(|| panic!("no API line in:\n{output}"));
    assert_eq!(line["traceId"], request.trace_id.as_str(), "{line}");
    stack.stop().await;
}

/// The delivery's attempt as the API shows it (`GET …/deliveries/{attemptId}`).
async fn attempt_record(stack: &Stack, sub_id: &str) -> Value {
    let (status, list) = stack
        .api(
            reqwest::Method::GET,
            &format!("/api/hooks/webhooks/{sub_id}/deliveries"),
            USER_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    let id = list["data"][0]["id"]
        .as_str()
        .expect("an attempt")
        .to_owned();
    let (status, detail) = stack
        .api(
            reqwest::Method::GET,
            &format!("/api/hooks/webhooks/{sub_id}/deliveries/{id}"),
            USER_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200, "{detail}");
    detail
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_spans_ingest_and_delivery_attempt_in_memory() {
    one_trace_from_ingest_to_attempt(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_spans_ingest_and_delivery_attempt_on_aws_adapters() {
    if aws_available("one_trace_spans_ingest_and_delivery_attempt_on_aws_adapters") {
        one_trace_from_ingest_to_attempt(true).await;
    }
}
