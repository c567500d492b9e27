//! Changes take effect on the next delivery (issue 17 item 3): a warm worker reads each job's
//! subscription from the store, so a `PATCH` of the url, a grace-0 rotation or a disable made
//! before a job is enqueued applies to that job's first attempt — with the deployed configuration
//! (no test override of anything the worker could cache).

use chrono::Utc;
use delivery_worker::handler::poll_once;
use delivery_worker::{DeliveryOutcome, WorkerConfig};
use relay_shared::events::EventType;
use relay_shared::signing::{standard_webhooks_signature, SigningSecret};
use relay_shared::subscription::Subscription;
use wiremock::{MockServer, ResponseTemplate};

use crate::common::*;

const ROTATED: &str = "whsec_dGhpcyBpcyB0aGUgcm90YXRlZCBzZWNyZXQhIQ==";

/// The configuration a deployed worker reads (every default), with only what a test on
/// 127.0.0.1 needs changed: plain-HTTP loopback receivers, no retry delays.
fn deployed() -> WorkerConfig {
    WorkerConfig::from_env_pairs(&[
        ("ALLOW_HTTP_TARGETS", "true"),
        ("TARGET_ALLOW_CIDRS", "127.0.0.0/8"),
        ("RETRY_SCHEDULE_SECONDS", "0,0"),
        ("RETRY_JITTER_PERCENT", "0"),
        ("DELIVERY_TIMEOUT_SECONDS", "5"),
    ])
    .unwrap()
}

async fn receiver() -> MockServer {
    let server = MockServer::start().await;
    respond(&server, ResponseTemplate::new(200), None).await;
    server
}

/// A warm worker that has just delivered job 1 to `first`.
async fn warm(first: &MockServer) -> (Harness, Subscription) {
    let (h, sub) = Harness::subscribed(deployed(), &format!("{}/hook", first.uri())).await;
    assert_eq!(next_job(&h, &sub).await, vec![delivered(1, 200)]);
    (h, sub)
}

/// A change as the API stores it (another process): changed, sealed, version + 1.
async fn api_update(h: &Harness, sub: &Subscription, change: impl FnOnce(&mut Subscription)) {
    let mut stored = h.sub(&sub.id).await.unwrap();
    change(&mut stored);
    stored.version += 1;
    stored.updated_at = Utc::now();
    let stored = h.seal(stored).await;
    h.stores.subscriptions.update(&stored).await.unwrap();
}

/// Enqueues a new job for `sub` (after whatever the caller changed) and lets the warm worker take
/// it from the queue: the outcome of its first receive.
async fn next_job(h: &Harness, sub: &Subscription) -> Vec<DeliveryOutcome> {
    let job = job_for(sub, EventType::TelephonyCreated);
    h.queue.push_raw(raw(&job), std::time::Duration::ZERO);
    poll_once(&h.worker, h.queue.as_ref(), 0).await.unwrap()
}

#[tokio::test]
async fn a_url_patched_before_a_job_is_enqueued_gets_its_first_attempt() {
    let (old, new) = (receiver().await, receiver().await);
    let (h, sub) = warm(&old).await;
    let new_url = format!("{}/moved", new.uri());
    api_update(&h, &sub, |s| s.url = new_url.clone()).await;

    assert_eq!(next_job(&h, &sub).await, vec![delivered(1, 200)]);
    assert_eq!(
        old.received_requests().await.unwrap().len(),
        1,
        "only job 1 reached the old URL"
    );
    let got = new.received_requests().await.unwrap();
    assert_eq!(got.len(), 1, "job 2's first attempt went to the new URL");
    assert_eq!(got[0].url.path(), "/moved");
}

#[tokio::test]
async fn a_grace_zero_rotation_before_a_job_is_enqueued_signs_its_first_attempt() {
    let rx = receiver().await;
    let (h, sub) = warm(&rx).await;
    api_update(&h, &sub, |s| {
        s.rotate_secret(ROTATED.into(), Utc::now(), chrono::Duration::zero())
    })
    .await;

    assert_eq!(next_job(&h, &sub).await, vec![delivered(1, 200)]);
    let got = rx.received_requests().await.unwrap();
    assert_eq!(got.len(), 2);
    let r = &got[1];
    let id = header(r, "webhook-id").unwrap();
    let ts: i64 = header(r, "webhook-timestamp").unwrap().parse().unwrap();
    assert_eq!(
        header(r, "webhook-signature").unwrap(),
        standard_webhooks_signature(&SigningSecret::new(ROTATED), id, ts, &r.body),
        "one signature, the new secret's: the revoked one signs nothing"
    );
}

#[tokio::test]
async fn a_disable_before_a_job_is_enqueued_skips_it() {
    let rx = receiver().await;
    let (h, sub) = warm(&rx).await;
    api_update(&h, &sub, |s| s.enabled = false).await;

    let outcomes = next_job(&h, &sub).await;
    assert!(
        matches!(&outcomes[..], [DeliveryOutcome::Skipped { .. }]),
        "{outcomes:?}"
    );
    assert_eq!(
        rx.received_requests().await.unwrap().len(),
        1,
        "no POST after the disable"
    );
}
