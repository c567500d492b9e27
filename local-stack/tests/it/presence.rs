//! Presence through the local stack against the fake Webex (`testkit::fake_webex`): the stack's
//! presence loop polls it, and a subscriber must get exactly the changed people, with exactly the
//! presence webhook contract's fields (docs/presence-poller.md), across token expiries.

use std::time::{Duration, Instant};

use relay_shared::signing::SigningSecret;
use relay_shared::webex::PRESENCE_ITEM_FIELDS;
use serde_json::{json, Map, Value};
use testkit::fake_webex::{person, FakeWebex};

use crate::run_external_verifiers;
use crate::support::*;

const WEBEX_TOKEN: &str = "e2e-webex-token";
/// The interval of the fast tests; the Webex call budget is raised so it never spaces their calls.
const FAST: &[(&str, &str)] = &[
    ("PRESENCE_POLL_INTERVAL_MS", "100"),
    ("PRESENCE_WEBEX_CALLS_PER_MINUTE", "6000"),
];

/// The fake Webex with `n` people of the e2e org, every Person field, status `active`; only
/// WEBEX_TOKEN is accepted.
async fn fake_webex(n: usize) -> FakeWebex {
    let fake = FakeWebex::start((0..n).map(|i| e2e_person(i, Some("active"))).collect()).await;
    fake.set_org(ORG);
    fake.accept_tokens(&[WEBEX_TOKEN]);
    fake
}

fn e2e_person(i: usize, status: Option<&str>) -> Value {
    let mut p = person(i, status);
    p["orgId"] = json!(ORG);
    p
}

/// A person as the presence contract sends it: its contract fields, in the contract's order.
fn contract_item(p: &Value) -> Value {
    let fields: Map<String, Value> = PRESENCE_ITEM_FIELDS
        .iter()
        .filter_map(|f| p.get(*f).map(|v| (f.to_string(), v.clone())))
        .collect();
    Value::Object(fields)
}

fn presence_body(items: &[Value]) -> String {
    let items: Vec<Value> = items.iter().map(contract_item).collect();
    serde_json::to_string(&json!({"payload": "user-presence", "items": items})).unwrap()
}

async fn start_stack(fake: &FakeWebex, auth: &[&str], env: &[(&str, &str)], aws: bool) -> Stack {
    let mut args = vec!["--webex-base-url", &fake.base_url, "--presence-org", ORG];
    args.extend_from_slice(auth);
    Stack::start_with_env(&args, env, aws).await
}

async fn subscribe_presence(stack: &Stack, url: &str, secret: &SigningSecret) {
    stack
        .subscribe_to(url, secret.expose(), &["presence:changed"])
        .await;
}

async fn presence_changes_are_delivered(aws: bool) {
    let webex = fake_webex(3).await;
    let receiver = Receiver::start(Behaviour::Ok).await;
    let stack = start_stack(&webex, &["--webex-token", WEBEX_TOKEN], FAST, aws).await;
    let secret = SigningSecret::generate();
    subscribe_presence(&stack, &receiver.url, &secret).await;

    // The first listing is the baseline, and unchanged listings emit nothing.
    webex.wait_for_listings(3, Duration::from_secs(30)).await;
    assert_eq!(receiver.log.lock().unwrap().captures.len(), 0);

    webex.update(|p| p[1]["status"] = json!("DoNotDisturb"));
    assert_eq!(
        receiver
            .wait_for_successes(1, Duration::from_secs(30))
            .await,
        1,
        "one presence delivery"
    );
    // Later listings see no further change: still exactly one delivery.
    webex.wait_for_listings(3, Duration::from_secs(30)).await;
    let captures = receiver.log.lock().unwrap().captures.clone();
    assert_eq!(captures.len(), 1, "only the change is delivered, once");

    // Webex listed every Person field (phone numbers, addresses, manager, title, …): only the 13
    // contract fields are sent.
    let c = &captures[0];
    assert_eq!(
        String::from_utf8_lossy(&c.body),
        presence_body(&[webex.people()[1].clone()]),
        "presence contract body: only the changed person, only the contract's fields"
    );
    assert_eq!(c.headers["x-org-id"], ORG);
    assert_eq!(c.headers["content-type"], "application/json");
    assert_eq!(c.headers["x-servicehook-event"], "presence:changed");
    run_external_verifiers(&captures, secret.expose());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_changes_are_delivered_in_memory() {
    presence_changes_are_delivered(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_changes_are_delivered_on_aws_adapters() {
    if aws_available("presence_changes_are_delivered_on_aws_adapters") {
        presence_changes_are_delivered(true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_without_status_emits_nothing() {
    let webex = fake_webex(3).await;
    let receiver = Receiver::start(Behaviour::Ok).await;
    let stack = start_stack(&webex, &["--webex-token", WEBEX_TOKEN], FAST, false).await;
    subscribe_presence(&stack, &receiver.url, &SigningSecret::generate()).await;
    webex.wait_for_listings(3, Duration::from_secs(30)).await;

    // Status sharing off for a known person, and a new person listed without status: as Webex
    // does, `status` is simply absent. Neither is a change.
    webex.update(|p| {
        p[1].as_object_mut().unwrap().remove("status");
        p.push(e2e_person(3, None));
    });
    webex.wait_for_listings(5, Duration::from_secs(30)).await;
    assert_eq!(
        receiver.log.lock().unwrap().captures.len(),
        0,
        "a person without status is never emitted"
    );

    // Their status comes back, different from the last known one: one change, that person only.
    webex.update(|p| p[1]["status"] = json!("call"));
    assert_eq!(
        receiver
            .wait_for_successes(1, Duration::from_secs(30))
            .await,
        1
    );
    webex.wait_for_listings(3, Duration::from_secs(30)).await;
    let captures = receiver.log.lock().unwrap().captures.clone();
    assert_eq!(captures.len(), 1, "one delivery: {captures:?}");
    assert_eq!(
        String::from_utf8_lossy(&captures[0].body),
        presence_body(&[webex.people()[1].clone()])
    );
    stack.stop().await;
}

/// Waits (bounded) until the fake answered `n` listings with 401 and listed completely after
/// the last of them.
async fn wait_for_recovery(webex: &FakeWebex, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let people: Vec<_> = webex
            .recorded()
            .into_iter()
            .filter(|r| r.path == "/v1/people")
            .collect();
        let last_401 = people
            .iter()
            .filter(|r| r.status == 401)
            .map(|r| r.at)
            .max();
        let rejected = people.iter().filter(|r| r.status == 401).count();
        let recovered = last_401.is_some_and(|t| {
            people
                .iter()
                .any(|r| r.at > t && r.status == 200 && r.next.is_none())
        });
        if rejected >= n && recovered {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no listing after token expiry {n} within {within:?}: {people:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_keeps_polling_across_three_token_expiries() {
    // An integration's grant: no access token to start with, a refresh token, client id and
    // secret. Each access token lives an hour on the fake's clock, which the test moves past it.
    const LIFETIME: Duration = Duration::from_secs(3600);
    const INTERVAL: Duration = Duration::from_millis(1500);
    let webex = FakeWebex::start((0..3).map(|i| e2e_person(i, Some("active"))).collect()).await;
    webex.set_org(ORG);
    webex.oauth_client("e2e-client", "e2e-client-secret", "refresh-0", LIFETIME);
    let interval = INTERVAL.as_millis().to_string();
    let stack = start_stack(
        &webex,
        &[
            "--webex-client-id",
            "e2e-client",
            "--webex-client-secret",
            "e2e-client-secret",
            "--webex-refresh-token",
            "refresh-0",
        ],
        &[
            ("PRESENCE_POLL_INTERVAL_MS", &interval),
            ("PRESENCE_WEBEX_CALLS_PER_MINUTE", "6000"),
        ],
        false,
    )
    .await;
    webex.wait_for_listings(1, Duration::from_secs(30)).await;
    for expiry in 1..=3 {
        webex.advance(LIFETIME + Duration::from_secs(1));
        wait_for_recovery(&webex, expiry, Duration::from_secs(30)).await;
    }
    // The extra listing proves the last token keeps working.
    webex.wait_for_listings(1, Duration::from_secs(30)).await;

    // One refresh at start, one per expiry; each spends the refresh token the previous one
    // returned, once.
    let refreshes = webex.refreshes();
    assert_eq!(refreshes.len(), 4, "{refreshes:?}\n{}", stack.log(30));
    assert!(refreshes.iter().all(|r| r.status == 200), "{refreshes:?}");
    assert_eq!(refreshes[0].used, "refresh-0");
    for pair in refreshes.windows(2) {
        assert_eq!(Some(&pair[1].used), pair[0].issued_refresh.as_ref());
    }

    // Each expired token costs one 401, then the refreshed token lists within the same cycle.
    let people: Vec<_> = webex
        .recorded()
        .into_iter()
        .filter(|r| r.path == "/v1/people")
        .collect();
    let rejected: Vec<usize> = (0..people.len())
        .filter(|&i| people[i].status == 401)
        .collect();
    assert_eq!(rejected.len(), 3, "one 401 per expiry: {people:?}");
    for (n, &i) in rejected.iter().enumerate() {
        let retry = &people[i + 1];
        assert_eq!(retry.status, 200, "the retry after expiry {}", n + 1);
        assert_eq!(
            retry.token,
            refreshes[n + 1].issued_access,
            "with the new token"
        );
        assert!(
            retry.at - people[i].at < INTERVAL,
            "recovered within one cycle: {:?}",
            retry.at - people[i].at
        );
    }
    // And no cycle went without a listing: complete listings are less than two cycles apart.
    let listed = webex.complete_listings();
    for gap in listed.windows(2).map(|w| w[1] - w[0]) {
        assert!(
            gap < 2 * INTERVAL,
            "a gap of {gap:?} between listings: {listed:?}"
        );
    }
    stack.stop().await;
}

/// Presence from calls through the stack (`PRESENCE_FROM_CALLS=true`, docs/presence-poller.md):
/// a person the poller listed answers a call → `call` at once; Webex catching up with `call` is
/// not delivered again; the call ends → back to `active` at once; Webex catching up with that is
/// not delivered again either.
async fn presence_from_calls(aws: bool) {
    let (_, created) = seed_envelopes().swap_remove(1);
    let person = created["actorId"].as_str().unwrap().to_owned();
    let webex = fake_webex(2).await;
    webex.update(|p| p[0]["id"] = json!(person));
    let receiver = Receiver::start(Behaviour::Ok).await;
    let mut env = FAST.to_vec();
    env.push(("PRESENCE_FROM_CALLS", "true"));
    let stack = start_stack(&webex, &["--webex-token", WEBEX_TOKEN], &env, aws).await;
    subscribe_presence(&stack, &receiver.url, &SigningSecret::generate()).await;
    webex.wait_for_listings(3, Duration::from_secs(30)).await;

    let leg = |stage: &str, event_type: &str| {
        let mut v = created.clone();
        let now = relay_shared::events::rfc3339_millis(chrono::Utc::now());
        v["event"] = json!(stage);
        v["data"]["callId"] = json!("e2e-presence-call");
        v["data"]["eventType"] = json!(event_type);
        v["data"]["eventTimestamp"] = json!(now);
        v["data"][event_type] = json!(now);
        v.to_string()
    };
    let with_status = |status: &str| {
        let mut p = webex.people()[0].clone();
        p["status"] = json!(status);
        presence_body(&[p])
    };
    let bodies = |receiver: &Receiver| -> Vec<String> {
        let log = receiver.log.lock().unwrap();
        log.captures
            .iter()
            .map(|c| String::from_utf8_lossy(&c.body).into_owned())
            .collect()
    };

    assert_eq!(stack.ingest(&leg("updated", "answered")).await, 200);
    assert_eq!(
        receiver
            .wait_for_successes(1, Duration::from_secs(30))
            .await,
        1
    );
    assert_eq!(bodies(&receiver), vec![with_status("call")]);
    // Webex still says `active`, then catches up with `call`: nothing more.
    webex.wait_for_listings(2, Duration::from_secs(30)).await;
    webex.update(|p| p[0]["status"] = json!("call"));
    webex.wait_for_listings(3, Duration::from_secs(30)).await;
    assert_eq!(bodies(&receiver).len(), 1, "{:?}", bodies(&receiver));

    assert_eq!(stack.ingest(&leg("deleted", "disconnected")).await, 200);
    assert_eq!(
        receiver
            .wait_for_successes(2, Duration::from_secs(30))
            .await,
        2
    );
    webex.update(|p| p[0]["status"] = json!("active"));
    webex.wait_for_listings(3, Duration::from_secs(30)).await;
    assert_eq!(
        bodies(&receiver),
        vec![with_status("call"), with_status("active")],
        "call, then back, once each"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_from_calls_in_memory() {
    presence_from_calls(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_from_calls_on_aws_adapters() {
    if aws_available("presence_from_calls_on_aws_adapters") {
        presence_from_calls(true).await;
    }
}
