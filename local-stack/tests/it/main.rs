//! End-to-end suite: the real `local-stack` binary, driven only over HTTP as a user would, with a
//! receiver on 127.0.0.1. Each scenario runs on the embedded store and, when DynamoDB Local + moto
//! are up (the test command starts them), in `--aws` mode.

mod call_events;
mod health;
mod ingest_secrets;
mod operational_events;
mod ordering;
mod presence;
mod secret_logs;
mod support;
mod traces;

// Not end-to-end scenarios: the AWS calls one event costs, counted in-process; each function's
// table and key access against template.yaml's policies; the fake Webex's own behaviour.
mod calls_per_event;
mod fake_webex;
mod iam_policy;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use relay_shared::signing::SigningSecret;
use serde_json::{json, Value};
use support::*;

// ---------------------------------------------------------------------------------------------
// The captured telephony events → three verified deliveries

async fn seed_events_are_delivered_and_verify(aws: bool) {
    let receiver = Receiver::start(Behaviour::Ok).await;
    let stack = Stack::start(&["--retry-schedule", "0,1,1,1,1"], aws).await;
    let secret = SigningSecret::generate();
    stack.subscribe(&receiver.url, secret.expose()).await;

    let seeds = seed_envelopes();
    for (envelope, _) in &seeds {
        assert_eq!(stack.ingest(envelope).await, 200);
    }
    assert_eq!(
        receiver
            .wait_for_successes(3, Duration::from_secs(30))
            .await,
        3,
        "three deliveries"
    );

    let captures = receiver.log.lock().unwrap().captures.clone();
    assert_eq!(
        captures.len(),
        3,
        "exactly three requests, no retries needed"
    );
    assert!(captures.iter().all(|c| c.status == 200));
    for (envelope, items) in &seeds {
        let c = captures
            .iter()
            .find(|c| String::from_utf8_lossy(&c.body).contains(envelope.as_str()))
            .unwrap_or_else(|| {
                panic!("a delivery whose `items` is the seed envelope byte for byte")
            });
        let body: Value = serde_json::from_slice(&c.body).unwrap();
        assert_eq!(body["Payload"], "telephony");
        assert_eq!(&body["items"], items);
        assert_eq!(body["orgId"], items["orgId"]);
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["Payload", "timestamp", "items", "orgId"],
            "the captured telephony webhook's field order"
        );
        assert_eq!(c.headers["content-type"], "application/json");
        assert_eq!(
            c.headers["x-servicehook-event"],
            format!("telephony:{}", items["event"].as_str().unwrap())
        );
    }
    run_external_verifiers(&captures, secret.expose());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_events_are_delivered_and_verify_in_memory() {
    seed_events_are_delivered_and_verify(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_events_are_delivered_and_verify_on_aws_adapters() {
    if aws_available("seed_events_are_delivered_and_verify_on_aws_adapters") {
        seed_events_are_delivered_and_verify(true).await;
    }
}

/// Runs the Python `standardwebhooks` package and the ServiceHook guide's (Python) and the OpenWork
/// webhook guide's (Node) verifiers, as printed in those guides, over every capture.
pub(crate) fn run_external_verifiers(captures: &[Capture], secret: &str) {
    let needs = "RELAY_PYTHON (with standardwebhooks) and RELAY_NODE";
    let python = testkit::var("the external verifiers", "RELAY_PYTHON", needs);
    let node = testkit::var("the external verifiers", "RELAY_NODE", needs);
    let (Some(python), Some(node)) = (python, node) else {
        return;
    };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/verifiers");
    for (i, c) in captures.iter().enumerate() {
        let capture = json!({
            "secret": secret,
            "headers": c.headers,
            "body_b64": base64::engine::general_purpose::STANDARD.encode(&c.body),
        });
        let file = std::env::temp_dir().join(format!("e2e-capture-{}-{i}.json", ulid::Ulid::new()));
        std::fs::write(&file, capture.to_string()).unwrap();
        for (interpreter, script) in [
            (&python, "standardwebhooks_verify.py"),
            (&python, "seed003_verify.py"),
            (&node, "seed004_verify.js"),
        ] {
            let out = std::process::Command::new(interpreter)
                .arg(dir.join(script))
                .arg(&file)
                .output()
                .expect("run verifier");
            assert!(
                out.status.success(),
                "{script} rejected delivery {i}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let _ = std::fs::remove_file(file);
    }
}

// ---------------------------------------------------------------------------------------------
// Chaos: a flaky receiver, restarted once mid-run

fn numbered_envelope(template: &Value, n: usize) -> String {
    let mut v = template.clone();
    v["data"]["callId"] = json!(format!("e2e-call-{n}"));
    v["data"]["callSessionId"] = json!(format!("e2e-session-{n}"));
    v.to_string()
}

async fn chaos(aws: bool, events: usize) {
    let mut receiver = Receiver::start(Behaviour::Chaos {
        fail_pct: 30,
        hang_pct: 5,
        hang: Duration::from_millis(1500),
        max_failures_per_id: 3,
    })
    .await;
    // Eight attempts, one second apart: three chaos failures plus the restart's downtime fit.
    let stack = Stack::start(
        &[
            "--retry-schedule",
            "0,1,1,1,1,1,1,1",
            "--delivery-timeout",
            "1",
        ],
        aws,
    )
    .await;
    let sub_id = stack
        .subscribe(&receiver.url, SigningSecret::generate().expose())
        .await;
    let template = seed_envelopes().remove(1).1;

    let stack = std::sync::Arc::new(stack);
    let mut sent = 0usize;
    let mut restarted = false;
    for chunk in (0..events).collect::<Vec<_>>().chunks(50) {
        let posts = chunk.iter().map(|&n| {
            let stack = stack.clone();
            let body = numbered_envelope(&template, n);
            async move { stack.ingest(&body).await }
        });
        for status in futures_join_all(posts).await {
            assert_eq!(status, 200, "ingest accepts every event");
            sent += 1;
        }
        if !restarted && sent >= events / 2 {
            receiver.restart(Duration::from_millis(300)).await;
            restarted = true;
        }
    }
    let delivered = receiver
        .wait_for_successes(events, Duration::from_secs(180))
        .await;

    // The relay's own record: exactly one succeeded attempt per webhook-id, and no attempt
    // after it. (A 200 the receiver sends after the relay's timeout is not a success to the
    // relay, which rightly retries; the receiver-side count below shows those.)
    let attempts = all_deliveries(&stack, &sub_id).await;
    let mut by_id: std::collections::HashMap<&str, Vec<&Value>> = std::collections::HashMap::new();
    for a in &attempts {
        by_id
            .entry(a["deliveryId"].as_str().unwrap())
            .or_default()
            .push(a);
    }
    let mut resent_after_success = 0;
    for tries in by_id.values() {
        let won: Vec<u64> = tries
            .iter()
            .filter(|a| a["status"] == "succeeded")
            .map(|a| a["attempt"].as_u64().unwrap())
            .collect();
        assert_eq!(
            won.len(),
            1,
            "exactly one successful attempt per webhook-id: {tries:?}"
        );
        resent_after_success += tries
            .iter()
            .filter(|a| a["attempt"].as_u64().unwrap() > won[0])
            .count();
    }

    let (requests, answered_500, hung, late_duplicates) = {
        let log = receiver.log.lock().unwrap();
        (
            log.captures.len(),
            log.answered_500,
            log.hung as usize,
            log.successes.values().map(|n| n - 1).sum::<u32>(),
        )
    };
    println!(
        "chaos ({}): {events} events, {requests} requests, {answered_500} answered 500, {hung} hung, {} restart(s); {delivered} delivered, \
         {} attempts logged, {resent_after_success} re-sent after a success, {late_duplicates} late 200(s) the relay had timed out on",
        if aws { "aws" } else { "memory" },
        receiver.restarts,
        attempts.len(),
    );
    println!("{} passed, {} failed", delivered, events - delivered);
    if delivered < events {
        // What the relay recorded for the undelivered ones, to tell a lost job from a slow one.
        let received = receiver.log.lock().unwrap().successes.clone();
        for (id, tries) in &by_id {
            if !received.contains_key(*id) {
                println!("undelivered {id}: {tries:?}");
            }
        }
        println!(
            "{} event(s) have no attempt logged at all",
            events.saturating_sub(by_id.len())
        );
        println!("the stack's log (tail):\n{}", stack.log(200));
    }
    assert_eq!(delivered, events, "every event delivered at least once");
    assert_eq!(by_id.len(), events, "every event has attempts logged");
    assert_eq!(
        resent_after_success, 0,
        "no webhook-id delivered again after a success"
    );
    let answered = attempts.iter().filter(|a| a["statusCode"].is_u64()).count();
    assert_eq!(
        answered,
        requests - hung,
        "every answered request is in the attempt log with its status"
    );
    let unanswered: HashSet<&str> = attempts
        .iter()
        .filter(|a| !a["statusCode"].is_u64())
        .map(|a| a["errorClass"].as_str().unwrap_or("?"))
        .collect();
    assert!(
        unanswered.is_subset(&HashSet::from(["timeout", "connect"])),
        "only timeouts and refused connections lack a status: {unanswered:?}"
    );
    assert!(
        answered_500 > 0 && hung > 0 && receiver.restarts == 1,
        "the chaos actually happened"
    );
    std::sync::Arc::into_inner(stack)
        .expect("no other handle")
        .stop()
        .await;
}

async fn futures_join_all<F: std::future::Future<Output = u16> + Send + 'static>(
    futs: impl Iterator<Item = F>,
) -> Vec<u16> {
    let mut set = tokio::task::JoinSet::new();
    for f in futs {
        set.spawn(f);
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.expect("ingest task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_2000_events_in_memory() {
    chaos(false, 2000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_on_aws_adapters() {
    if aws_available("chaos_on_aws_adapters") {
        chaos(true, 200).await;
    }
}

// ---------------------------------------------------------------------------------------------
// A receiver that always fails: every event ends in the DLQ with five attempts logged

async fn always_failing_receiver_fills_the_dlq(aws: bool) {
    let receiver = Receiver::start(Behaviour::AlwaysFail).await;
    let stack = Stack::start(&["--retry-schedule", "0,0,0,0,0"], aws).await;
    let id = stack
        .subscribe(&receiver.url, SigningSecret::generate().expose())
        .await;
    let template = seed_envelopes().remove(1).1;
    let events = 20;
    for n in 0..events {
        assert_eq!(stack.ingest(&numbered_envelope(&template, n)).await, 200);
    }

    // Five failed attempts per event, in the attempt log (newest first, paginated).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut attempts: Vec<Value>;
    loop {
        attempts = all_deliveries(&stack, &id).await;
        if attempts.len() >= events * 5 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(attempts.len(), events * 5, "five attempts logged per event");
    assert!(attempts.iter().all(|a| a["status"] == "failed"));
    let per_event: HashSet<&str> = attempts
        .iter()
        .map(|a| a["eventId"].as_str().unwrap())
        .collect();
    assert_eq!(per_event.len(), events);

    // Every job is parked in the DLQ: once the receiver recovers, an admin redrive moves exactly
    // that many back and each is then delivered, which clears the subscription's failing state.
    let (status, webhook) = stack.subscription(&id).await;
    assert_eq!(status, 200);
    assert_eq!(
        webhook["status"], "failing",
        "the subscription is marked failing"
    );
    receiver.set_behaviour(Behaviour::Ok);
    let mut moved = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while moved < events && std::time::Instant::now() < deadline {
        let (status, body) = stack
            .api(
                reqwest::Method::POST,
                "/api/hooks/dlq/redrive",
                ADMIN_KEY,
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 200, "redrive: {body}");
        moved += body["moved"].as_u64().unwrap_or(0) as usize;
    }
    assert_eq!(moved, events, "every event was in the DLQ");
    assert_eq!(
        receiver
            .wait_for_successes(events, Duration::from_secs(60))
            .await,
        events,
        "redriven jobs are delivered"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, webhook) = stack.subscription(&id).await;
        if webhook["status"] == "active" || std::time::Instant::now() > deadline {
            assert_eq!(
                webhook["status"], "active",
                "a later success clears `failing`"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("{} passed, {} failed", moved, events - moved);
    stack.stop().await;
}

async fn all_deliveries(stack: &Stack, id: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/hooks/webhooks/{id}/deliveries?limit=250");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, body) = stack.api(reqwest::Method::GET, &path, USER_KEY, None).await;
        assert_eq!(status, 200, "deliveries: {body}");
        out.extend(body["data"].as_array().cloned().unwrap_or_default());
        match body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_failing_receiver_fills_the_dlq_in_memory() {
    always_failing_receiver_fills_the_dlq(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_failing_receiver_fills_the_dlq_on_aws_adapters() {
    if aws_available("always_failing_receiver_fills_the_dlq_on_aws_adapters") {
        always_failing_receiver_fills_the_dlq(true).await;
    }
}
