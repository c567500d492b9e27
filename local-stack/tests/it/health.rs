//! The Webex-side health check through the local stack: Webex deactivated the relay's webhook
//! after failed deliveries (the relay was down); the stack's check reactivates it and reports the
//! `WebexRegistrationReactivated` metric (docs/relayctl.md).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::fake_webex::{person, FakeWebex};

use crate::support::*;

const WEBEX_TOKEN: &str = "e2e-webex-token";
/// Where the relay's webhook points: nothing listens there (the discard port), so Webex's
/// deliveries fail.
const DOWN_INGEST: &str = "http://127.0.0.1:9/webex/telephony";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_check_reactivates_a_webhook_webex_deactivated() {
    let mut someone = person(0, Some("active"));
    someone["orgId"] = json!(ORG);
    let webex = FakeWebex::start(vec![someone]).await;
    webex.set_org(ORG);
    webex.accept_tokens(&[WEBEX_TOKEN]);
    let hook = webex.add_webhook(json!({
        "name": "webex-relay telephony",
        "targetUrl": DOWN_INGEST,
        "resource": "telephony_calls",
        "event": "all",
        "secret": WEBEX_SECRET,
    }));
    let id = hook["id"].as_str().unwrap().to_owned();
    webex.deactivate_after(3);
    for _ in 0..3 {
        assert_eq!(
            webex.deliver(&id, json!({"eventType": "received"})).await,
            None
        );
    }
    assert_eq!(
        webex.webhooks()[0]["status"],
        "inactive",
        "Webex gave up on it"
    );

    let stack = Stack::start_with_env(
        &[
            "--webex-token",
            WEBEX_TOKEN,
            "--webex-base-url",
            &webex.base_url,
            "--presence-org",
            ORG,
            "--webex-health-target-url",
            DOWN_INGEST,
        ],
        &[
            ("PRESENCE_POLL_INTERVAL_MS", "100"),
            ("PRESENCE_WEBEX_CALLS_PER_MINUTE", "6000"),
        ],
        false,
    )
    .await;

    let deadline = Instant::now() + Duration::from_secs(60);
    while webex.webhooks()[0]["status"] != "active" {
        assert!(
            Instant::now() < deadline,
            "not reactivated within 60 s; the stack's log:\n{}",
            stack.log(30)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Reactivated as Webex allows it: a PUT with status active, on the same webhook.
    assert!(webex.recorded().iter().any(|r| r.method == "PUT"
        && r.path == format!("/v1/webhooks/{id}")
        && r.status == 200
        && serde_json::from_str::<Value>(&r.body).is_ok_and(|b| b["status"] == "active")));
    assert_eq!(webex.webhooks().len(), 1, "reactivated, not recreated");

    let line = stack
        .wait_for_stdout("WebexRegistrationReactivated", Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("no metric line on stdout; log:\n{}", stack.log(30)));
    let emf: Value = serde_json::from_str(&line).expect("an EMF JSON line");
    assert_eq!(
        emf["WebexRegistrationReactivated"].as_f64(),
        Some(1.0),
        "{line}"
    );
    stack.stop().await;
}
