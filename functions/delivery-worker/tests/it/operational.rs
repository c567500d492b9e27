//! Operational events from the worker (docs/operational-events.md): each transition of a webhook
//! — failing, recovered, disabled by a 410 or by the auto-disable policy, a job dead-lettered —
//! reaches the owner's other webhooks that want it, once, and never the webhook it is about.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use delivery_worker::handler::poll_once;
use delivery_worker::{DeliveryOutcome, Metric};
use relay_shared::clock::ManualClock;
use relay_shared::events::EventType;
use relay_shared::signing::{standard_webhooks_signature, SigningSecret};
use relay_shared::subscription::{Health, Subscription};
use serde_json::Value;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::*;

async fn receiver(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&server)
        .await;
    server
}

async fn answer(server: &MockServer, status: u16) {
    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(status))
        .mount(server)
        .await;
}

/// A webhook of the same owner and org as [`subscription`]'s, listening for `types` at `url`.
fn watcher(url: &str, types: &[EventType]) -> Subscription {
    Subscription {
        name: "watcher".into(),
        url: url.into(),
        ..testkit::fixtures::subscription("org-1", types)
    }
}

/// Processes what is on the delivery queue until it is empty (bounded).
async fn drain(h: &Harness) -> Vec<DeliveryOutcome> {
    let mut all = Vec::new();
    for _ in 0..20 {
        if h.queue.is_empty() {
            break;
        }
        all.extend(poll_once(&h.worker, h.queue.as_ref(), 0).await.unwrap());
    }
    assert!(h.queue.is_empty(), "the queue drains: {all:?}");
    all
}

/// The operational events a receiver got, as (type header, body), each signature checked.
async fn operational_received(server: &MockServer) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for r in server.received_requests().await.unwrap() {
        let h = |n: &str| r.headers.get(n).map(|v| v.to_str().unwrap().to_owned());
        let event = h("x-servicehook-event").unwrap();
        if !EventType::parse(&event).is_some_and(EventType::is_operational) {
            continue;
        }
        let ts: i64 = h("webhook-timestamp").unwrap().parse().unwrap();
        let expected = standard_webhooks_signature(
            &SigningSecret::new(SECRET),
            &h("webhook-id").unwrap(),
            ts,
            &r.body,
        );
        assert_eq!(h("webhook-signature").unwrap(), expected, "signed");
        out.push((event, serde_json::from_slice(&r.body).unwrap()));
    }
    out
}

struct Rig {
    h: Harness,
    /// Fails (or answers what it is told); subscribed to every type, operational ones included.
    failing: Subscription,
    failing_rx: MockServer,
    watcher_rx: MockServer,
}

async fn rig(config: delivery_worker::WorkerConfig, status: u16, types: &[EventType]) -> Rig {
    rig_with(Harness::new(config), status, types).await
}

async fn rig_with(h: Harness, status: u16, types: &[EventType]) -> Rig {
    let failing_rx = receiver(status).await;
    let watcher_rx = receiver(200).await;
    // Subscribed to every type, the operational ones included.
    let failing = Subscription {
        event_types: EventType::ALL.to_vec(),
        ..subscription(&format!("{}/hook", failing_rx.uri()))
    };
    let failing = h.seal(failing).await;
    let watching = h
        .seal(watcher(&format!("{}/watch", watcher_rx.uri()), types))
        .await;
    h.add(&failing).await;
    h.add(&watching).await;
    Rig {
        h,
        failing,
        failing_rx,
        watcher_rx,
    }
}

impl Rig {
    fn push_job(&self) {
        self.h.queue.push_raw(
            raw(&job_for(&self.failing, EventType::TelephonyCreated)),
            Duration::ZERO,
        );
    }
}

#[tokio::test]
async fn exhausting_the_schedule_sends_webhook_failing_once_per_episode_and_never_to_itself() {
    let r = rig(test_config(3), 503, &[EventType::WebhookFailing]).await;
    r.push_job();
    drain(&r.h).await;
    let got = operational_received(&r.watcher_rx).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let (event, body) = &got[0];
    assert_eq!(event, "webhook:failing");
    assert_eq!(body["type"], "webhook:failing");
    assert_eq!(body["orgId"], "org-1");
    assert_eq!(body["data"]["webhookId"], r.failing.id.to_string());
    assert_eq!(body["data"]["attempts"], 3);
    assert_eq!(body["data"]["lastStatus"], 503);
    assert_eq!(body["data"]["errorClass"], "http_status");
    assert_eq!(body["data"]["eventType"], "telephony:created");
    assert_eq!(
        r.h.sub(&r.failing.id).await.unwrap().health,
        Health::Failing
    );

    // The same episode: a second exhausted job says nothing more.
    r.push_job();
    drain(&r.h).await;
    assert_eq!(operational_received(&r.watcher_rx).await.len(), 1);
    // The failing webhook wants every type, operational ones included, yet never hears of itself.
    assert!(operational_received(&r.failing_rx).await.is_empty());
    // One transition, one metric (the template's WebhookFailing alarm).
    assert_eq!(r.h.metrics.count(Metric::WebhookFailing), 1);
}

#[tokio::test]
async fn a_success_after_failing_sends_webhook_recovered_and_ends_the_streak() {
    let r = rig(test_config(2), 500, &[EventType::WebhookRecovered]).await;
    r.push_job();
    drain(&r.h).await;
    let stored = r.h.sub(&r.failing.id).await.unwrap();
    assert_eq!(stored.health, Health::Failing);
    let since = stored
        .failing_since
        .expect("the streak's start is recorded");
    assert!(operational_received(&r.watcher_rx).await.is_empty());

    answer(&r.failing_rx, 200).await;
    r.push_job();
    drain(&r.h).await;
    let got = operational_received(&r.watcher_rx).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "webhook:recovered");
    assert_eq!(got[0].1["data"]["webhookId"], r.failing.id.to_string());
    assert_eq!(
        got[0].1["data"]["failingSince"],
        relay_shared::events::rfc3339_millis(since)
    );
    let stored = r.h.sub(&r.failing.id).await.unwrap();
    assert_eq!(stored.health, Health::Healthy);
    assert_eq!(stored.failing_since, None, "cleared by the success");

    // Healthy stays quiet.
    r.push_job();
    drain(&r.h).await;
    assert_eq!(operational_received(&r.watcher_rx).await.len(), 1);
}

#[tokio::test]
async fn failing_since_is_written_once_per_streak() {
    let r = rig(test_config(5), 500, &[]).await;
    let first = deliver_new(&r.h.worker, &r.failing).await;
    assert!(
        matches!(first, DeliveryOutcome::Retrying { .. }),
        "{first:?}"
    );
    let after_one = r.h.sub(&r.failing.id).await.unwrap();
    assert!(after_one.failing_since.is_some());
    assert_eq!(after_one.version, r.failing.version + 1);
    deliver_new(&r.h.worker, &r.failing).await;
    let after_two = r.h.sub(&r.failing.id).await.unwrap();
    assert_eq!(after_two.failing_since, after_one.failing_since);
    assert_eq!(after_two.version, after_one.version, "no second write");
}

#[tokio::test]
async fn a_410_sends_webhook_disabled_and_delivery_dead_lettered() {
    let r = rig(
        test_config(5),
        410,
        &[EventType::WebhookDisabled, EventType::DeliveryDeadLettered],
    )
    .await;
    r.push_job();
    drain(&r.h).await;
    let mut got = operational_received(&r.watcher_rx).await;
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let types: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["delivery:dead-lettered", "webhook:disabled"]);
    let disabled = &got[1].1["data"];
    assert_eq!(disabled["webhookId"], r.failing.id.to_string());
    assert_eq!(disabled["cause"], "gone");
    assert!(disabled["reason"].as_str().unwrap().contains("410"));
    let dead = &got[0].1["data"];
    assert_eq!(dead["lastStatus"], 410);
    assert!(dead["reason"].as_str().unwrap().contains("410"));
    assert!(!r.h.sub(&r.failing.id).await.unwrap().enabled);
    assert!(operational_received(&r.failing_rx).await.is_empty());
    assert_eq!(r.h.metrics.count(Metric::WebhookDisabled), 1);
}

#[tokio::test]
async fn a_permanent_failure_sends_delivery_dead_lettered_and_webhook_failing() {
    // A refused target (the URL's host is not on the allow-list): permanent, no retries.
    let h = Harness::new(test_config(5));
    let watcher_rx = receiver(200).await;
    let refused = h.seal(subscription("http://10.255.255.1/hook")).await;
    let watch = h
        .seal(watcher(
            &format!("{}/watch", watcher_rx.uri()),
            &[EventType::DeliveryDeadLettered, EventType::WebhookFailing],
        ))
        .await;
    h.add(&refused).await;
    h.add(&watch).await;
    h.queue.push_raw(
        raw(&job_for(&refused, EventType::TelephonyCreated)),
        Duration::ZERO,
    );
    drain(&h).await;
    let mut got = operational_received(&watcher_rx).await;
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let types: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["delivery:dead-lettered", "webhook:failing"]);
    assert_eq!(got[0].1["data"]["errorClass"], "ssrf_blocked");
}

/// A failing webhook (500) watched for `webhook:disabled`, under `base` with a 120 h auto-disable
/// and a manual clock at `t0`, after its first job failed (the streak starts at `t0`).
async fn failing_once_with_auto_disable(
    base: delivery_worker::WorkerConfig,
) -> (DateTime<Utc>, Arc<ManualClock>, Rig) {
    let t0: DateTime<Utc> = Utc::now();
    let clock = Arc::new(ManualClock::new(t0));
    let config = delivery_worker::WorkerConfig {
        auto_disable_after: Some(chrono::Duration::hours(120)),
        ..base
    };
    let h = Harness::with(config.clone(), sender(&config), clock.clone());
    let r = rig_with(h, 500, &[EventType::WebhookDisabled]).await;
    r.push_job();
    drain(&r.h).await;
    (t0, clock, r)
}

#[tokio::test]
async fn failing_continuously_past_auto_disable_after_disables_and_says_so() {
    let (t0, clock, r) = failing_once_with_auto_disable(test_config(2)).await;
    assert!(r.h.sub(&r.failing.id).await.unwrap().enabled);

    // Just short of the limit: still enabled.
    clock.advance(chrono::Duration::hours(120) - chrono::Duration::seconds(1));
    r.push_job();
    drain(&r.h).await;
    assert!(r.h.sub(&r.failing.id).await.unwrap().enabled);
    assert!(operational_received(&r.watcher_rx).await.is_empty());

    // Past it: the next failed attempt disables it, parks the job, and tells the watcher.
    clock.advance(chrono::Duration::seconds(2));
    r.push_job();
    let outcomes = drain(&r.h).await;
    assert!(
        outcomes.iter().any(
            |o| matches!(o, DeliveryOutcome::DeadLettered { reason } if reason.contains("auto-disabled"))
        ),
        "{outcomes:?}"
    );
    let stored = r.h.sub(&r.failing.id).await.unwrap();
    assert!(!stored.enabled);
    assert!(
        stored
            .disabled_reason
            .as_deref()
            .unwrap()
            .contains("failing continuously since"),
        "{stored:?}"
    );
    let got = operational_received(&r.watcher_rx).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "webhook:disabled");
    assert_eq!(got[0].1["data"]["cause"], "auto-disable");
    assert_eq!(
        got[0].1["data"]["failingSince"],
        relay_shared::events::rfc3339_millis(t0)
    );
}

#[tokio::test]
async fn auto_disable_off_never_disables() {
    let t0: DateTime<Utc> = Utc::now();
    let clock = Arc::new(ManualClock::new(t0));
    let config = delivery_worker::WorkerConfig {
        auto_disable_after: None,
        ..test_config(1)
    };
    let h = Harness::with(config.clone(), sender(&config), clock.clone());
    let r = rig_with(h, 500, &[EventType::WebhookDisabled]).await;
    r.push_job();
    drain(&r.h).await;
    clock.advance(chrono::Duration::days(365));
    r.push_job();
    drain(&r.h).await;
    assert!(r.h.sub(&r.failing.id).await.unwrap().enabled);
}

#[tokio::test]
async fn a_webhook_failing_to_take_operational_events_does_not_answer_each_with_another() {
    // Two webhooks of one owner, each permanently refusing (a refused target), each watching
    // the other's dead-lettered jobs: one dead-lettered event each way, not a ping-pong.
    let h = Harness::new(test_config(3));
    let a = h
        .seal(Subscription {
            url: "http://10.255.255.1/a".into(),
            ..watcher(
                "http://x",
                &[EventType::DeliveryDeadLettered, EventType::TelephonyCreated],
            )
        })
        .await;
    let b = h
        .seal(Subscription {
            url: "http://10.255.255.2/b".into(),
            ..watcher("http://x", &[EventType::DeliveryDeadLettered])
        })
        .await;
    h.add(&a).await;
    h.add(&b).await;
    h.queue.push_raw(
        raw(&job_for(&a, EventType::TelephonyCreated)),
        Duration::ZERO,
    );
    let outcomes = drain(&h).await;
    let parked = h.parked_jobs();
    // a's telephony job, then b's job about it (dead-lettered in turn, unreported).
    assert_eq!(parked.len(), 2, "{outcomes:?}");
    assert_eq!(parked[1].event_type, EventType::DeliveryDeadLettered);
    assert_eq!(parked[1].subscription_id, b.id);
}

/// `PATCH {"enabled": true}` as the API writes it (another process).
async fn re_enable_in_the_store(h: &Harness, id: &relay_shared::ids::SubscriptionId) {
    let mut stored = h.sub(id).await.unwrap();
    stored.enabled = true;
    stored.disabled_reason = None;
    stored.failing_since = None;
    stored.health = Health::Healthy;
    stored.version += 1;
    h.stores.subscriptions.update(&stored).await.unwrap();
}

#[tokio::test]
async fn a_job_right_after_a_re_enable_is_delivered_by_a_warm_worker_that_saw_it_disabled() {
    // The console's flow: a 410 disables the webhook (this warm worker read the disabled copy),
    // its owner re-enables it and resends at once.
    let r = rig(test_config(3), 410, &[]).await;
    r.push_job();
    drain(&r.h).await;
    assert!(
        !r.h.sub(&r.failing.id).await.unwrap().enabled,
        "410 disabled it"
    );
    re_enable_in_the_store(&r.h, &r.failing.id).await;
    answer(&r.failing_rx, 200).await;
    r.push_job();
    let outcomes = drain(&r.h).await;
    assert!(
        matches!(outcomes[..], [DeliveryOutcome::Delivered { .. }]),
        "not skipped on the disabled copy read before: {outcomes:?}"
    );
}

#[tokio::test]
async fn a_job_for_a_webhook_disabled_in_the_store_is_skipped_by_a_warm_worker() {
    let r = rig(test_config(3), 410, &[]).await;
    r.push_job();
    drain(&r.h).await;
    r.push_job();
    let outcomes = drain(&r.h).await;
    assert!(
        matches!(&outcomes[..], [DeliveryOutcome::Skipped { reason }] if reason.contains("410")),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn auto_disable_decides_on_the_stored_streak() {
    let (t0, clock, r) = failing_once_with_auto_disable(test_config(2)).await;
    let mut stored = r.h.sub(&r.failing.id).await.unwrap();
    assert_eq!(stored.failing_since, Some(t0));
    // Five days later another container delivers successfully: the streak is over in the store,
    // while this warm worker last saw it failing since t0.
    clock.advance(chrono::Duration::hours(120) + chrono::Duration::seconds(1));
    stored.failing_since = None;
    stored.health = Health::Healthy;
    stored.version += 1;
    r.h.stores.subscriptions.update(&stored).await.unwrap();
    // A failure right after, on this container.
    r.push_job();
    let outcomes = drain(&r.h).await;
    let after = r.h.sub(&r.failing.id).await.unwrap();
    assert!(
        after.enabled,
        "auto-disabled on a streak that had ended: {:?} {outcomes:?}",
        after.disabled_reason
    );
    assert_eq!(
        after.failing_since,
        Some(t0 + chrono::Duration::hours(120) + chrono::Duration::seconds(1)),
        "a new streak starts"
    );
    assert!(operational_received(&r.watcher_rx).await.is_empty());
    assert_eq!(r.h.metrics.count(Metric::WebhookDisabled), 0);
}

#[tokio::test]
async fn a_success_ends_a_streak_another_container_started() {
    let r = rig(test_config(2), 200, &[EventType::WebhookRecovered]).await;
    r.push_job();
    drain(&r.h).await; // delivered: this warm worker saw it healthy
                       // Another container's job exhausted its schedule meanwhile: failing since t0.
    let t0 = Utc::now() - chrono::Duration::hours(1);
    let mut stored = r.h.sub(&r.failing.id).await.unwrap();
    stored.failing_since = Some(t0);
    stored.health = Health::Failing;
    stored.version += 1;
    r.h.stores.subscriptions.update(&stored).await.unwrap();

    r.push_job();
    let outcomes = drain(&r.h).await;
    // The job, then the watcher's webhook:recovered.
    assert!(
        matches!(
            outcomes[..],
            [
                DeliveryOutcome::Delivered { .. },
                DeliveryOutcome::Delivered { .. }
            ]
        ),
        "{outcomes:?}"
    );
    let after = r.h.sub(&r.failing.id).await.unwrap();
    assert_eq!(after.health, Health::Healthy, "the success is seen");
    assert_eq!(after.failing_since, None, "the streak is over");
    let got = operational_received(&r.watcher_rx).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "webhook:recovered");
    assert_eq!(
        got[0].1["data"]["failingSince"],
        relay_shared::events::rfc3339_millis(t0)
    );
}

#[tokio::test]
async fn a_token_in_the_failing_webhooks_url_never_reaches_its_siblings() {
    // A refused target (permanent: dead-lettered and failing at once) with its token in the query.
    let h = Harness::new(test_config(5));
    let watcher_rx = receiver(200).await;
    let refused = h
        .seal(subscription(
            "http://10.255.255.1/hook?token=s3cr3t&x=1#s3cr3t",
        ))
        .await;
    let watch = h
        .seal(watcher(
            &format!("{}/watch", watcher_rx.uri()),
            &EventType::OPERATIONAL,
        ))
        .await;
    h.add(&refused).await;
    h.add(&watch).await;
    h.queue.push_raw(
        raw(&job_for(&refused, EventType::TelephonyCreated)),
        Duration::ZERO,
    );
    drain(&h).await;
    let got = operational_received(&watcher_rx).await;
    assert_eq!(got.len(), 2, "{got:?}");
    for (event, body) in &got {
        assert!(!body.to_string().contains("s3cr3t"), "{event}: {body}");
        assert_eq!(body["data"]["url"], "http://10.255.255.1", "{event}");
    }
    // Nor the watcher's attempt records (they keep operational bodies).
    for record in h.attempts(&watch.id).await {
        let kept = record.request_body.unwrap_or_default();
        assert!(!kept.contains("s3cr3t"), "{kept}");
    }
}
