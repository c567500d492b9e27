//! Operational events end to end (docs/operational-events.md; issue 14's acceptance): with a
//! short retry schedule, a subscriber to `webhook:failing` receives exactly one signed event
//! naming its sibling webhook after that webhook exhausts its schedule; the sibling's next success
//! yields `webhook:recovered`; a 410 yields `webhook:disabled`; and the failing webhook, although
//! it subscribes to every operational type, never receives one about itself.

use std::time::{Duration, Instant};

use relay_shared::signing::SigningSecret;
use serde_json::Value;

use crate::support::*;

const OPERATIONAL: &[&str] = &[
    "webhook:failing",
    "webhook:disabled",
    "webhook:recovered",
    "delivery:dead-lettered",
    "webex:webhook-reactivated",
    "webex:token-refresh-failed",
    "presence:throttled",
];

/// The operational deliveries a receiver got (2xx), in arrival order.
fn operational(receiver: &Receiver) -> Vec<Value> {
    let captures = receiver.log.lock().unwrap().captures.clone();
    captures
        .iter()
        .filter(|c| OPERATIONAL.contains(&c.headers["x-servicehook-event"].as_str()))
        .map(Capture::typed_body)
        .collect()
}

/// Waits (bounded) for the `n`-th operational delivery, then a second for a wrong extra one.
async fn wait_for_operational(receiver: &Receiver, n: usize) -> Vec<Value> {
    assert_eq!(
        receiver
            .wait_for_successes(n, Duration::from_secs(30))
            .await,
        n,
        "{:?}",
        operational(receiver)
    );
    receiver
        .wait_for_successes(n + 1, Duration::from_secs(1))
        .await;
    operational(receiver)
}

/// Waits (bounded) until the API shows the webhook's `status` (the health written after the
/// event was queued: what the next delivery's transition is decided on).
async fn wait_for_status(stack: &Stack, id: &str, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, body) = stack.subscription(id).await;
        assert_eq!(code, 200, "{body}");
        if body["status"] == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{id} never became {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn failing_recovered_disabled(aws: bool) {
    let stack = Stack::start(
        &["--retry-schedule", "0,0,0", "--retry-jitter-percent", "0"],
        aws,
    )
    .await;
    // The webhook that fails: telephony events, and every operational type too (to show it never
    // hears about itself).
    let flaky = Receiver::start(Behaviour::AlwaysFail).await;
    let flaky_secret = SigningSecret::generate();
    let mut flaky_types = vec![
        "telephony:created",
        "telephony:updated",
        "telephony:deleted",
    ];
    flaky_types.extend(OPERATIONAL);
    let flaky_id = stack
        .subscribe_to(&flaky.url, flaky_secret.expose(), &flaky_types)
        .await;
    // The same user's watcher.
    let watcher = Receiver::start(Behaviour::Ok).await;
    let secret = SigningSecret::generate();
    stack
        .subscribe_to(
            &watcher.url,
            secret.expose(),
            &["webhook:failing", "webhook:recovered", "webhook:disabled"],
        )
        .await;
    let seeds = seed_envelopes();

    // 1. Three failed attempts: the schedule is exhausted → one webhook:failing.
    assert_eq!(stack.ingest(&seeds[0].0).await, 200);
    let got = wait_for_operational(&watcher, 1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let failing = &got[0];
    assert_eq!(failing["type"], "webhook:failing");
    assert_eq!(failing["orgId"], ORG);
    assert_eq!(failing["data"]["webhookId"], flaky_id);
    assert_eq!(failing["data"]["attempts"], 3);
    assert_eq!(failing["data"]["lastStatus"], 500);
    assert_eq!(failing["data"]["errorClass"], "http_status");
    assert_eq!(failing["data"]["eventType"], "telephony:updated");
    wait_for_status(&stack, &flaky_id, "failing").await;

    // 2. The next delivery succeeds → webhook:recovered.
    flaky.set_behaviour(Behaviour::Ok);
    assert_eq!(stack.ingest(&seeds[1].0).await, 200);
    let got = wait_for_operational(&watcher, 2).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1]["type"], "webhook:recovered");
    assert_eq!(got[1]["data"]["webhookId"], flaky_id);
    wait_for_status(&stack, &flaky_id, "active").await;

    // 3. 410 Gone → webhook:disabled.
    flaky.set_behaviour(Behaviour::Status(410));
    assert_eq!(stack.ingest(&seeds[2].0).await, 200);
    let got = wait_for_operational(&watcher, 3).await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[2]["type"], "webhook:disabled");
    assert_eq!(got[2]["data"]["webhookId"], flaky_id);
    assert_eq!(got[2]["data"]["cause"], "gone");
    wait_for_status(&stack, &flaky_id, "disabled").await;

    // The failing webhook never received an operational event, although it wants them all.
    assert!(operational(&flaky).is_empty(), "{:?}", operational(&flaky));
    // Every operational delivery is signed like any other.
    let captures = watcher.log.lock().unwrap().captures.clone();
    assert_eq!(captures.len(), 3);
    crate::run_external_verifiers(&captures, secret.expose());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_recovered_and_disabled_reach_the_sibling_only_in_memory() {
    failing_recovered_disabled(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_recovered_and_disabled_reach_the_sibling_only_on_aws_adapters() {
    if aws_available("failing_recovered_and_disabled_reach_the_sibling_only_on_aws_adapters") {
        failing_recovered_disabled(true).await;
    }
}
