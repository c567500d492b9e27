//! The sample API Gateway v2 events in `events/api-*.json` go through the same path as on Lambda
//! (`lambda_http`'s request conversion, then the router), on memory adapters with the documented
//! e2e key.

use std::sync::Arc;
use std::time::Duration;

use relay_shared::adapters::memory::{memory_stores, MemoryQueue};
use relay_shared::auth::Role;
use relay_shared::clock::SystemClock;
use relay_shared::ports::CorePorts;
use relay_shared::secrets_at_rest::{LocalKey, SecretSealer};
use tower::ServiceExt;
use webhooks_api::{router, store_api_key, ApiConfig, AppState};

/// The well-known key the sample events carry (see docs/webhooks-api.md; never use it on AWS).
const E2E_KEY: &str = "wrk_e2e_test_key_do_not_use_in_production_0001";

fn event(name: &str) -> lambda_http::Request {
    let text = std::fs::read_to_string(format!(
        "{}/../../events/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[tokio::test]
async fn sample_events_work_through_lambda_http() {
    let stores = memory_stores();
    store_api_key(&stores, E2E_KEY, "e2e-user", "e2e-org", Role::User)
        .await
        .unwrap();
    let q = Arc::new(MemoryQueue::new(Duration::from_secs(30)));
    let core = CorePorts {
        stores,
        queue: q.clone(),
        clock: Arc::new(SystemClock),
    };
    let sealer = SecretSealer::new(Arc::new(LocalKey::generate()));
    let state = AppState::new(core, q, sealer, ApiConfig::default());
    let app = router(state);
    let call = |name: &'static str| {
        let app = app.clone();
        async move {
            let res = app.oneshot(event(name)).await.unwrap();
            let status = res.status().as_u16();
            let body = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap();
            (
                status,
                serde_json::from_slice::<serde_json::Value>(&body)
                    .unwrap_or(serde_json::Value::Null),
            )
        }
    };
    let (status, created) = call("api-create-webhook.json").await;
    assert_eq!(status, 201, "{created}");
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    let (status, list) = call("api-list-webhooks.json").await;
    assert_eq!(status, 200);
    assert_eq!(list["data"][0]["id"], created["id"]);
    // The delete event names a fixed id: not found here (edit it to delete a real one).
    let (status, err) = call("api-delete-unknown-webhook.json").await;
    assert_eq!((status, err["error"].as_str()), (404, Some("not_found")));
}
