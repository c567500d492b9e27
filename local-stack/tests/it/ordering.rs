//! Per-call ordering end to end (docs/ordering.md): a webhook with `"ordering": "per-call"` whose
//! receiver fails a call's `created` twice still receives that call's created, updated and
//! deleted in that order (the failed `created` holds the others back on the FIFO queue), while
//! another call's events pass meanwhile. Every telephony delivery carries `webhook-sequence`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use relay_shared::signing::SigningSecret;
use serde_json::{json, Value};

use crate::support::*;

/// One delivery as the receiver saw it, in arrival order.
#[derive(Debug, Clone)]
struct Seen {
    call_id: String,
    event: String,
    sequence: Option<u64>,
    status: u16,
}

#[derive(Default)]
struct Failing {
    /// The call whose `telephony:created` is answered 500 …
    call_id: String,
    /// … this many more times.
    failures_left: u32,
    seen: Vec<Seen>,
}

/// A receiver on 127.0.0.1 that fails `failures` `telephony:created` deliveries of `call_id`.
async fn failing_receiver(call_id: &str, failures: u32) -> (String, Arc<Mutex<Failing>>) {
    let state = Arc::new(Mutex::new(Failing {
        call_id: call_id.to_owned(),
        failures_left: failures,
        seen: Vec::new(),
    }));
    let app = Router::new()
        .route("/hook", post(answer))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, state)
}

async fn answer(
    State(state): State<Arc<Mutex<Failing>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let call_id = body["items"]["data"]["callId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let event = header("x-servicehook-event").unwrap_or_default().to_owned();
    let mut s = state.lock().unwrap();
    let fail = event == "telephony:created" && call_id == s.call_id && s.failures_left > 0;
    if fail {
        s.failures_left -= 1;
    }
    let status = if fail {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    s.seen.push(Seen {
        call_id,
        event,
        sequence: header("webhook-sequence").and_then(|v| v.parse().ok()),
        status: status.as_u16(),
    });
    status
}

/// The captured call as created, updated, deleted (in that order), and the same three for a
/// second call id.
fn two_calls() -> (String, Vec<String>, String, Vec<String>) {
    let seeds = seed_envelopes();
    let in_order: Vec<&Value> = ["created", "updated", "deleted"]
        .iter()
        .map(|stage| {
            &seeds
                .iter()
                .find(|(_, v)| v["event"] == *stage)
                .expect("a seed per stage")
                .1
        })
        .collect();
    let call_a = in_order[0]["data"]["callId"].as_str().unwrap().to_owned();
    let call_b = format!("{call_a}-other");
    let a = in_order.iter().map(|v| v.to_string()).collect();
    let b = in_order
        .iter()
        .map(|v| {
            let mut v = (*v).clone();
            v["data"]["callId"] = json!(call_b);
            v.to_string()
        })
        .collect();
    (call_a, a, call_b, b)
}

async fn created_failing_twice_keeps_the_call_in_order(aws: bool) {
    let (call_a, events_a, call_b, events_b) = two_calls();
    let (url, receiver) = failing_receiver(&call_a, 2).await;
    // Retries one second apart, no jitter: the two failures cost about two seconds.
    let stack = Stack::start(
        &["--retry-schedule", "0,1,1,1", "--retry-jitter-percent", "0"],
        aws,
    )
    .await;
    let secret = SigningSecret::generate();
    let create = |ordering: &str| {
        json!({
            "name": "ordered receiver",
            "url": url,
            "eventTypes": ["telephony:created", "telephony:updated", "telephony:deleted"],
            "secret": secret.expose(),
            "rateLimitPerMinute": 1000000,
            "ordering": ordering,
        })
    };
    let (status, body) = stack
        .api(
            reqwest::Method::POST,
            "/api/hooks/webhooks",
            USER_KEY,
            Some(create("in-order")),
        )
        .await;
    assert_eq!(status, 422, "an unknown ordering is refused: {body}");
    assert_eq!(body["field"], "ordering", "{body}");
    let (status, body) = stack
        .api(
            reqwest::Method::POST,
            "/api/hooks/webhooks",
            USER_KEY,
            Some(create("per-call")),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["ordering"], "per-call");
    let id = body["id"].as_str().unwrap().to_owned();
    let (_, got) = stack.subscription(&id).await;
    assert_eq!(got["ordering"], "per-call");

    for envelope in events_a.iter().chain(&events_b) {
        assert_eq!(stack.ingest(envelope).await, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while receiver
        .lock()
        .unwrap()
        .seen
        .iter()
        .filter(|s| s.status == 200)
        .count()
        < 6
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A second for a wrong extra delivery to (wrongly) arrive.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let seen = receiver.lock().unwrap().seen.clone();
    let of = |call: &str| -> Vec<(String, u16)> {
        seen.iter()
            .filter(|s| s.call_id == call)
            .map(|s| (s.event.clone(), s.status))
            .collect()
    };
    let e = |event: &str, status: u16| (format!("telephony:{event}"), status);
    assert_eq!(
        of(&call_a),
        [
            e("created", 500),
            e("created", 500),
            e("created", 200),
            e("updated", 200),
            e("deleted", 200),
        ],
        "the failing created held back its updated and deleted; log:\n{}",
        stack.log(50)
    );
    assert_eq!(
        of(&call_b),
        [e("created", 200), e("updated", 200), e("deleted", 200)]
    );
    let b_done = seen.iter().rposition(|s| s.call_id == call_b).unwrap();
    let a_created = seen
        .iter()
        .position(|s| s.call_id == call_a && s.status == 200)
        .unwrap();
    assert!(
        b_done < a_created,
        "the other call passed while the first waited: {seen:?}"
    );
    // The per-call sequence: Webex's event order of the leg, the same on every retry.
    let sequences: Vec<u64> = seen
        .iter()
        .filter(|s| s.call_id == call_a)
        .map(|s| {
            s.sequence
                .expect("webhook-sequence on every telephony delivery")
        })
        .collect();
    assert_eq!(sequences[0], sequences[1]);
    assert_eq!(sequences[1], sequences[2], "a retry keeps its sequence");
    assert!(sequences[2] < sequences[3] && sequences[3] < sequences[4]);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_failing_twice_keeps_the_call_in_order_in_memory() {
    created_failing_twice_keeps_the_call_in_order(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_failing_twice_keeps_the_call_in_order_on_aws_adapters() {
    if aws_available("created_failing_twice_keeps_the_call_in_order_on_aws_adapters") {
        created_failing_twice_keeps_the_call_in_order(true).await;
    }
}
