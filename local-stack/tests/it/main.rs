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

// Not end-to-end scenarios: the AWS calls one event costs and the crash-point sweep, both
// in-process; each function's table and key access against template.yaml's policies; the fake
// Webex's own behaviour.
mod calls_per_event;
mod crash_points;
mod fake_webex;
mod iam_policy;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

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
// Waiting on the stack by counts, not by the clock

/// How long a count may stand still before a wait gives up: the stack is stuck then, not slow.
/// No deadline bounds the whole wait, since a loaded 2-core machine (a parallel build, the other
/// test binaries) makes these runs several times slower than alone, which is no failure; a stack
/// that stopped making progress for this long is one.
const STALLED: Duration = Duration::from_secs(180);

/// Polls `count` until it reaches `target`, or until it made no progress for [`STALLED`]; returns
/// the last count and what came with it (the caller asserts on those, naming what is missing).
async fn wait_for_count<T, F, Fut>(target: usize, mut count: F) -> (usize, T)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = (usize, T)>,
{
    let mut best = 0;
    let mut progressed = Instant::now();
    loop {
        let (n, seen) = count().await;
        if n >= target {
            return (n, seen);
        }
        if n > best {
            best = n;
            progressed = Instant::now();
        } else if progressed.elapsed() > STALLED {
            return (n, seen);
        }
        // A poll interval, not a synchronisation: the loop ends on the count.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The subscription's `status` once it is `want` (or the last one seen, when it never got there).
async fn wait_for_status(stack: &Stack, id: &str, want: &str) -> Value {
    let (_, webhook) = wait_for_count(1, || async {
        let (status, webhook) = stack.subscription(id).await;
        assert_eq!(status, 200, "subscription: {webhook}");
        (usize::from(webhook["status"] == want), webhook)
    })
    .await;
    webhook["status"].clone()
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
    // Done when the relay has logged a success for every event: the receiver counts a 200 when
    // it answers, before the relay records the attempt (or times out on it and retries), so its
    // count alone would read the attempt log while the last attempts are still being written.
    let (delivered, _) = wait_for_count(events, || async { (receiver.successes(), ()) }).await;
    let (_, attempts) = wait_for_count(events, || async {
        let attempts = all_deliveries(&stack, &sub_id).await;
        let succeeded: HashSet<&str> = attempts
            .iter()
            .filter(|a| a["status"] == "succeeded")
            .map(|a| a["deliveryId"].as_str().unwrap())
            .collect();
        (succeeded.len(), attempts)
    })
    .await;
    let delivered = delivered.max(receiver.successes());

    // The relay's own record: exactly one succeeded attempt per webhook-id, and no attempt
    // after it. (A 200 the receiver sends after the relay's timeout is not a success to the
    // relay, which rightly retries; the receiver-side count below shows those.)
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

    let (requests, answered_500, hung, late_duplicates, sent_answers) = {
        let log = receiver.log.lock().unwrap();
        // What the receiver answered, per webhook-id and status.
        let mut sent: HashMap<(String, u64), usize> = HashMap::new();
        for c in &log.captures {
            let id = c.headers.get("webhook-id").cloned().unwrap_or_default();
            *sent.entry((id, u64::from(c.status))).or_default() += 1;
        }
        (
            log.captures.len(),
            log.answered_500,
            log.hung as usize,
            log.successes.values().map(|n| n - 1).sum::<u32>(),
            sent,
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
    // Every request the receiver got is in the attempt log: with the status it was answered, or
    // as one the relay got no answer to in time. That is every hang (1.5 s against the 1 s
    // delivery timeout), and, on a loaded machine, also a quick answer that reached the relay
    // late (the "late 200(s)" above; a late 500 likewise): so the log's statuses are matched to
    // the receiver's answers per webhook-id, not counted as requests minus hangs, which only
    // holds when no answer is ever late.
    let mut logged_answers: HashMap<(String, u64), usize> = HashMap::new();
    let mut unanswered_per_id: HashMap<&str, usize> = HashMap::new();
    for a in &attempts {
        let id = a["deliveryId"].as_str().unwrap();
        match a["statusCode"].as_u64() {
            Some(code) => *logged_answers.entry((id.to_owned(), code)).or_default() += 1,
            None => *unanswered_per_id.entry(id).or_default() += 1,
        }
    }
    for ((id, code), n) in &logged_answers {
        let sent = sent_answers.get(&(id.clone(), *code)).copied().unwrap_or(0);
        assert!(
            *n <= sent,
            "{id}: {n} attempt(s) logged with status {code}, the receiver answered {sent} so"
        );
    }
    let mut answered_late = 0;
    for (id, tries) in &by_id {
        let received: usize = sent_answers
            .iter()
            .filter(|((sent_id, _), _)| sent_id == id)
            .map(|(_, n)| n)
            .sum();
        let logged: usize = logged_answers
            .iter()
            .filter(|((logged_id, _), _)| logged_id == id)
            .map(|(_, n)| n)
            .sum();
        let unanswered = unanswered_per_id.get(id).copied().unwrap_or(0);
        assert!(
            received - logged <= unanswered,
            "{id}: {received} request(s) received, {logged} logged with a status and only {unanswered} \
             without one: {tries:?}"
        );
        answered_late += received - logged;
    }
    let answered = attempts.iter().filter(|a| a["statusCode"].is_u64()).count();
    assert_eq!(
        answered + answered_late,
        requests,
        "every request is in the attempt log, with its status or unanswered"
    );
    println!("{answered_late} request(s) the relay got no answer to in time ({hung} hangs)");
    assert!(
        answered_late >= hung,
        "every hang is an attempt the relay got no answer to ({answered_late} < {hung})"
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
    // A 2 s delivery timeout (the receiver answers at once) makes the queue's visibility timeout
    // its 30 s floor instead of 12 × the default 30 s: under load a job whose processing fails
    // before its attempt (a store call refused) is not acknowledged and comes back only after
    // the visibility timeout; at 360 s that outlasts any wait here (seen: one redriven job
    // invisible in moto, its event never delivered in the test's time; and 97/100 attempts:
    // one job's last three). At 30 s it comes back well within [`STALLED`].
    let stack = Stack::start(
        &["--retry-schedule", "0,0,0,0,0", "--delivery-timeout", "2"],
        aws,
    )
    .await;
    let id = stack
        .subscribe(&receiver.url, SigningSecret::generate().expose())
        .await;
    let template = seed_envelopes().remove(1).1;
    let events = 20;
    for n in 0..events {
        assert_eq!(stack.ingest(&numbered_envelope(&template, n)).await, 200);
    }

    // Five failed attempts per event, in the attempt log (newest first, paginated). Waited for
    // by their count: under load the 100 attempts on moto + DynamoDB Local took over a minute.
    let (_, attempts) = wait_for_count(events * 5, || async {
        let attempts = all_deliveries(&stack, &id).await;
        (attempts.len(), attempts)
    })
    .await;
    assert_eq!(attempts.len(), events * 5, "five attempts logged per event");
    assert!(attempts.iter().all(|a| a["status"] == "failed"));
    let per_event: HashSet<&str> = attempts
        .iter()
        .map(|a| a["eventId"].as_str().unwrap())
        .collect();
    assert_eq!(per_event.len(), events);

    // Every job is parked in the DLQ: once the receiver recovers, an admin redrive moves exactly
    // that many back and each is then delivered, which clears the subscription's failing state.
    // The worker logs an attempt before it parks the job and then marks the subscription, so
    // the last parks and the health write may still be under way: both are waited for.
    assert_eq!(
        wait_for_status(&stack, &id, "failing").await,
        "failing",
        "the subscription is marked failing"
    );
    receiver.set_behaviour(Behaviour::Ok);
    let total = std::cell::Cell::new(0);
    let (moved, _) = wait_for_count(events, || {
        let (moved, stack) = (&total, &stack);
        async move {
            let (status, body) = stack
                .api(
                    reqwest::Method::POST,
                    "/api/hooks/dlq/redrive",
                    ADMIN_KEY,
                    Some(json!({})),
                )
                .await;
            assert_eq!(status, 200, "redrive: {body}");
            moved.set(moved.get() + body["moved"].as_u64().unwrap_or(0) as usize);
            (moved.get(), ())
        }
    })
    .await;
    assert_eq!(moved, events, "every event was in the DLQ");
    let (delivered, _) = wait_for_count(events, || async { (receiver.successes(), ()) }).await;
    assert_eq!(delivered, events, "redriven jobs are delivered");
    assert_eq!(
        wait_for_status(&stack, &id, "active").await,
        "active",
        "a later success clears `failing`"
    );
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
