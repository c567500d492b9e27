//! The presence poller's operational events (docs/operational-events.md), to the subscribers of
//! the watched org that want them: `presence:throttled` when Webex throttles a cycle,
//! `webex:token-refresh-failed` when the token cannot be refreshed, `webex:webhook-reactivated`
//! when the health check reactivates the relay's Webex webhook.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use presence_poller::health::{HealthArgs, HealthCheck};
use presence_poller::token::StaticToken;
use presence_poller::Poller;
use relay_shared::adapters::memory::MemoryQueue;
use relay_shared::clock::SystemClock;
use relay_shared::config::from_env_pairs;
use relay_shared::delivery::DeliveryJob;
use relay_shared::events::EventType;
use relay_shared::operational::{OperationalArgs, OperationalEmitter};
use relay_shared::ports::DeliveryQueue;
use relay_shared::webex_token::{RefreshFailure, TokenError, TokenSource};
use secrecy::SecretString;
use serde_json::{json, Value};
use testkit::fake_webex::{FakeWebex, ORG};

use crate::common::*;

fn queued(queue: &MemoryQueue, t: EventType) -> Vec<(DeliveryJob, Value)> {
    queue
        .bodies()
        .iter()
        .map(|b| serde_json::from_str::<DeliveryJob>(b).unwrap())
        .filter(|j| j.event_type == t)
        .map(|j| {
            let body = serde_json::from_str(&j.body).unwrap();
            (j, body)
        })
        .collect()
}

/// Subscribes one webhook of the org and one of another org to `t`; returns the org's.
async fn watch(
    stores: &relay_shared::ports::Stores,
    t: EventType,
) -> relay_shared::ids::SubscriptionId {
    let mine = subscription(ORG, &[t], true);
    let theirs = subscription("other-org", &[t], true);
    stores.subscriptions.create(&mine, 100).await.unwrap();
    stores.subscriptions.create(&theirs, 100).await.unwrap();
    mine.id
}

#[tokio::test]
async fn a_throttled_cycle_sends_presence_throttled_to_the_org() {
    let served = people(3, "active");
    let rig = Rig::new(served.clone(), fast_config()).await;
    let watcher = watch(&rig.stores, EventType::PresenceThrottled).await;
    run_cycles(&rig.poller, "inv-0", 1).await;
    assert!(queued(&rig.queue, EventType::PresenceThrottled).is_empty());

    let summary = rig.run_throttled(served, "inv-1").await;
    assert_eq!(summary.failed_cycles, 1, "{summary:?}");
    let got = queued(&rig.queue, EventType::PresenceThrottled);
    assert_eq!(got.len(), 1, "{got:?}");
    let (job, body) = &got[0];
    assert_eq!(job.subscription_id, watcher, "the org's subscriber only");
    assert_eq!(body["type"], "presence:throttled");
    assert_eq!(body["orgId"], ORG);
    assert_eq!(body["data"]["status"], 429);
    assert!(body["data"]["retryAfterSeconds"].as_u64().unwrap() > 0);
}

/// A token source whose refresh has failed once.
struct FailedRefresh(Mutex<Option<RefreshFailure>>);

#[async_trait]
impl TokenSource for FailedRefresh {
    async fn token(&self) -> Result<SecretString, TokenError> {
        Ok("token".into())
    }

    fn take_refresh_failure(&self) -> Option<RefreshFailure> {
        self.0.lock().unwrap().take()
    }
}

#[tokio::test]
async fn a_failed_token_refresh_sends_webex_token_refresh_failed_once() {
    let rig = Rig::new(people(2, "active"), fast_config()).await;
    let watcher = watch(&rig.stores, EventType::WebexTokenRefreshFailed).await;
    let tokens = Arc::new(FailedRefresh(Mutex::new(Some(RefreshFailure {
        reason: "refused",
        failures: 2,
        retry_at: None,
    }))));
    let poller = Poller::new(
        &rig.stores,
        rig.webex.clone(),
        rig.queue.clone() as Arc<dyn DeliveryQueue>,
        Arc::new(SystemClock),
        fast_config(),
    )
    .with_tokens(tokens);
    run_cycles(&poller, "inv-0", 3).await;
    let got = queued(&rig.queue, EventType::WebexTokenRefreshFailed);
    assert_eq!(got.len(), 1, "one failure, one event: {got:?}");
    assert_eq!(got[0].0.subscription_id, watcher);
    assert_eq!(got[0].1["data"]["reason"], "refused");
    assert_eq!(got[0].1["data"]["failures"], 2);
    assert!(got[0].1["data"]["retryAt"].is_null());
}

#[tokio::test]
async fn a_reactivated_webex_webhook_sends_webex_webhook_reactivated() {
    const TARGET: &str = "https://relay.example/webex/telephony";
    let fake = FakeWebex::start(vec![]).await;
    let hook = fake.add_webhook(json!({"name": "webex-relay telephony", "targetUrl": TARGET,
        "resource": "telephony_calls", "event": "all", "secret": "s"}));
    let id = hook["id"].as_str().unwrap().to_owned();
    fake.deactivate(&id);
    let stores = relay_shared::adapters::memory::memory_stores();
    let queue = Arc::new(MemoryQueue::new(Duration::from_secs(30)));
    let watcher = watch(&stores, EventType::WebexWebhookReactivated).await;
    let args: HealthArgs = from_env_pairs(&[("WEBEX_HEALTH_TARGET_URL", TARGET)]).unwrap();
    let emitter = OperationalEmitter::new(
        stores.subscriptions.clone(),
        queue.clone(),
        stores.rate_limits.clone(),
        Arc::new(SystemClock),
        &OperationalArgs::default(),
    );
    let health = HealthCheck::new(
        client(&fake, Arc::new(StaticToken("t".into()))),
        stores.leases.clone(),
        Arc::new(SystemClock),
        args.config().unwrap(),
    )
    .with_operational(emitter, ORG);
    health.run_if_due("invocation-1").await.expect("due");
    let got = queued(&queue, EventType::WebexWebhookReactivated);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0.subscription_id, watcher);
    assert_eq!(got[0].1["data"]["webexWebhookId"], id);
    assert_eq!(got[0].1["data"]["targetUrl"], TARGET);
    // Active again: the next check has nothing to report.
    health.run(chrono::Utc::now()).await;
    assert_eq!(queued(&queue, EventType::WebexWebhookReactivated).len(), 1);
}
