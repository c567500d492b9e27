//! Operational events through the API (docs/operational-events.md): disabling a webhook by hand
//! (`PATCH enabled: false`) sends `webhook:disabled` (who, why) to the owner's other webhooks
//! that want it, never to the webhook itself; `PATCH enabled: true` clears the disabled state and
//! the failing streak, so the next failure is a new episode.

use relay_shared::auth::Role;
use relay_shared::events::EventType;
use relay_shared::ids::SubscriptionId;
use relay_shared::subscription::Health;
use serde_json::{json, Value};
use webhooks_api::ApiConfig;

use crate::common::{suite, unique, Backend, Harness};

const HOOKS: &str = "/api/hooks/webhooks";

suite!(
    disabling_by_hand_tells_the_owners_other_webhooks,
    re_enabling_clears_the_disabled_state_and_the_failing_streak,
);

async fn create(h: &Harness, key: &str, name: &str, types: &[&str]) -> SubscriptionId {
    let r = h
        .call(
            "POST",
            HOOKS,
            Some(key),
            Some(json!({"name": name, "url": "https://example.com/hook", "eventTypes": types})),
        )
        .await
        .assert_status(201);
    r["id"].as_str().unwrap().parse().unwrap()
}

/// `PATCH {"enabled": …}` by `key`, answered 200: the webhook as the API shows it.
async fn set_enabled(h: &Harness, key: &str, id: &SubscriptionId, enabled: bool) -> Value {
    h.call(
        "PATCH",
        &format!("{HOOKS}/{id}"),
        Some(key),
        Some(json!({ "enabled": enabled })),
    )
    .await
    .assert_status(200)
}

async fn disabling_by_hand_tells_the_owners_other_webhooks(b: Backend) {
    let Some(h) = b.harness(ApiConfig::default()).await else {
        return;
    };
    let (user, org) = (unique("user"), unique("org"));
    let key = h.key(&user, &org, Role::User).await;
    let other_user = h.key(&unique("user"), &org, Role::User).await;
    let about = create(&h, &key, "CRM", &["telephony:created", "webhook:disabled"]).await;
    let sibling = create(&h, &key, "alerts", &["webhook:disabled"]).await;
    create(&h, &other_user, "someone else's", &["webhook:disabled"]).await;
    h.drain_queue().await;

    let r = set_enabled(&h, &key, &about, false).await;
    assert_eq!(r["status"], "disabled");
    let jobs = h.drain_queue().await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let job = &jobs[0];
    assert_eq!(
        job.subscription_id, sibling,
        "only the owner's other webhook"
    );
    assert_eq!(job.event_type, EventType::WebhookDisabled);
    let body: Value = serde_json::from_str(&job.body).unwrap();
    assert_eq!(body["type"], "webhook:disabled");
    assert_eq!(body["orgId"], org);
    assert_eq!(body["data"]["webhookId"], about.to_string());
    assert_eq!(body["data"]["webhookName"], "CRM");
    assert_eq!(body["data"]["cause"], "manual");
    assert_eq!(body["data"]["by"], user);

    // Already disabled: nothing more to say.
    set_enabled(&h, &key, &about, false).await;
    assert!(h.drain_queue().await.is_empty());
}

async fn re_enabling_clears_the_disabled_state_and_the_failing_streak(b: Backend) {
    let Some(h) = b.harness(ApiConfig::default()).await else {
        return;
    };
    let key = h.user().await;
    let id = create(&h, &key, "CRM", &["telephony:created"]).await;
    // As the worker leaves a webhook it auto-disabled.
    let mut sub = h.stored(&id).await;
    sub.enabled = false;
    sub.health = Health::Failing;
    sub.failing_since = Some(chrono::Utc::now() - chrono::Duration::days(5));
    sub.disabled_reason = Some("failing continuously since …".into());
    sub.version += 1;
    h.stores.subscriptions.update(&sub).await.unwrap();
    let r = h
        .call("GET", &format!("{HOOKS}/{id}"), Some(&key), None)
        .await
        .assert_status(200);
    assert_eq!(r["status"], "disabled");
    assert!(r["disabledReason"].is_string());

    let r = set_enabled(&h, &key, &id, true).await;
    assert_eq!(r["status"], "active", "{r}");
    assert!(r.get("disabledReason").is_none());
    let stored = h.stored(&id).await;
    assert!(stored.enabled);
    assert_eq!(stored.health, Health::Healthy);
    assert_eq!(stored.failing_since, None);
    assert_eq!(stored.disabled_reason, None);
}
