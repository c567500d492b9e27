//! Signing secrets at rest (docs/delivery-worker.md, "Signing secrets at rest"): the worker opens
//! what the API sealed and signs with the secret itself; legacy plain items still deliver; a
//! secret this relay cannot open is parked as `secret_unreadable`; an unavailable key service
//! leaves the job on the queue without an attempt; data keys are unwrapped once per container.

use crate::common::*;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use base64::Engine as _;
use chrono::Utc;
use delivery_worker::worker::SECRET_UNREADABLE;
use delivery_worker::{DeliveryOutcome, Metric};
use relay_shared::events::EventType;
use relay_shared::secrets_at_rest::StoredSecret;
use relay_shared::signing::{
    hook_signature, service_hook_signature, standard_webhooks_signature, SigningSecret,
};
use relay_shared::subscription::{Health, Subscription};
use wiremock::{MockServer, ResponseTemplate};

const NEW_SECRET: &str = "whsec_dGhpcyBpcyB0aGUgbmV3IHNlY3JldCBrZXkhIQ==";

async fn receiver() -> (MockServer, String) {
    let server = MockServer::start().await;
    respond(&server, ResponseTemplate::new(200), None).await;
    let url = format!("{}/hook", server.uri());
    (server, url)
}

/// A subscription to `url` whose secret was rotated (SECRET retiring, NEW_SECRET current).
fn rotated(url: &str) -> Subscription {
    let mut sub = subscription(url);
    sub.rotate_secret(NEW_SECRET.into(), Utc::now(), chrono::Duration::hours(1));
    sub
}

/// Every signature header of `r` is the one the plain secrets give: `webhook-signature` with
/// each of `secrets` (current first), the two hex schemes with the current one.
#[track_caller]
fn assert_signed_with(r: &wiremock::Request, secrets: &[&str]) {
    let id = header(r, "webhook-id").unwrap();
    let ts: i64 = header(r, "webhook-timestamp").unwrap().parse().unwrap();
    let want: Vec<String> = secrets
        .iter()
        .map(|s| standard_webhooks_signature(&SigningSecret::new(*s), id, ts, &r.body))
        .collect();
    assert_eq!(header(r, "webhook-signature").unwrap(), want.join(" "));
    let current = SigningSecret::new(secrets[0]);
    assert_eq!(
        header(r, "x-hook-signature").unwrap(),
        hook_signature(&current, &r.body)
    );
    assert_eq!(
        header(r, "x-servicehook-signature").unwrap(),
        service_hook_signature(&current, &r.body)
    );
}

fn one_record_batch(body: String) -> SqsEvent {
    let mut m = SqsMessage::default();
    m.message_id = Some("m-1".into());
    m.body = Some(body);
    let mut event = SqsEvent::default();
    event.records.push(m);
    event
}

#[tokio::test]
async fn sealed_secrets_sign_every_scheme_as_the_plain_ones_and_are_never_logged() {
    let (server, url) = receiver().await;
    let h = Harness::new(test_config(5));
    let sub = h.seal(rotated(&url)).await;
    h.add(&sub).await;
    let stored = serde_json::to_string(&h.sub(&sub.id).await.unwrap()).unwrap();
    for plain in [SECRET, NEW_SECRET] {
        assert!(
            !stored.contains(plain),
            "the stored item holds no plain secret"
        );
    }

    let logs = testkit::logs::capture();
    assert_eq!(h.deliver_new(&sub).await, delivered(1, 200));
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 1);
    assert_signed_with(&reqs[0], &[NEW_SECRET, SECRET]);
    let logged = serde_json::to_string(&logs.lines()).unwrap();
    assert!(logged.contains("delivery job processed"), "logs captured");
    for plain in [SECRET, NEW_SECRET] {
        assert!(!logged.contains(plain), "a secret was logged: {logged}");
    }
}

#[tokio::test]
async fn legacy_plain_secrets_still_deliver() {
    let (server, url) = receiver().await;
    let h = Harness::new(test_config(5));
    let sub = rotated(&url);
    assert!(matches!(sub.secret, StoredSecret::Plain(_)));
    h.add(&sub).await;
    assert_eq!(h.deliver_new(&sub).await, delivered(1, 200));
    let reqs = server.received_requests().await.unwrap();
    assert_signed_with(&reqs[0], &[NEW_SECRET, SECRET]);
    assert_eq!(h.keys.unwraps(), 0, "no key service for a plain secret");
}

/// Sealed under a key this relay does not hold, altered in the table, or sealed for another
/// subscription: parked as `secret_unreadable` before any token, claim or request is spent.
#[tokio::test]
async fn an_unreadable_secret_is_dead_lettered_without_an_attempt() {
    let (server, url) = receiver().await;
    let h = Harness::new(test_config(5));
    let other_key = sealed(&TestKeys::new().sealer(), subscription(&url)).await;
    let mut tampered = h.seal(subscription(&url)).await;
    let StoredSecret::Sealed(s) = &mut tampered.secret else {
        unreachable!()
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut ct = b64.decode(&s.ciphertext).unwrap();
    ct[0] ^= 1;
    s.ciphertext = b64.encode(ct);
    let mut foreign = subscription(&url);
    foreign.secret = h.seal(subscription(&url)).await.secret;

    let subs = [other_key, tampered, foreign];
    for sub in &subs {
        h.add(sub).await;
        assert_eq!(
            h.deliver_new(sub).await,
            DeliveryOutcome::DeadLettered {
                reason: SECRET_UNREADABLE.into()
            }
        );
        assert!(h.attempts(&sub.id).await.is_empty(), "no attempt logged");
        assert_eq!(h.sub(&sub.id).await.unwrap().health, Health::Failing);
    }
    assert!(server.received_requests().await.unwrap().is_empty());
    let parked = h.parked_jobs();
    assert_eq!(parked.len(), subs.len());
    for job in parked {
        assert!(job.attempts.is_empty());
        let reason = job.dead_letter_reason.unwrap();
        assert!(reason.starts_with("secret_unreadable: "), "{reason}");
        assert!(
            !reason.contains("local:"),
            "no key detail for the tenant: {reason}"
        );
    }
    assert_eq!(h.metrics.count(Metric::DeadLettered), subs.len());
    assert!(h.queue.is_empty());
}

/// A retiring secret this relay cannot open (sealed under the key used before a key change) does
/// not stop deliveries signed with the current one; it is left out, with an error log line.
#[tokio::test]
async fn an_unreadable_retiring_secret_is_left_out_of_the_signatures() {
    let (server, url) = receiver().await;
    let h = Harness::new(test_config(5));
    let earlier_key = sealed(&TestKeys::new().sealer(), subscription(&url)).await;
    let mut sub = h.seal(rotated(&url)).await;
    sub.retiring_secrets[0].secret = earlier_key.secret.clone();
    h.add(&sub).await;
    let logs = testkit::logs::capture();
    assert_eq!(h.deliver_new(&sub).await, delivered(1, 200));
    assert_signed_with(&server.received_requests().await.unwrap()[0], &[NEW_SECRET]);
    let lines = logs.with_message("a retiring signing secret cannot be opened: signing without it");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["level"], "ERROR");

    // The current secret unreadable, the retiring one fine: parked.
    let mut sub = h.seal(rotated(&url)).await;
    sub.secret = earlier_key.secret;
    h.add(&sub).await;
    assert_eq!(
        h.deliver_new(&sub).await,
        DeliveryOutcome::DeadLettered {
            reason: SECRET_UNREADABLE.into()
        }
    );
}

/// A throttled or unreachable key service: the record is reported as a batch item failure (SQS
/// hands it out again), nothing is sent, parked, re-sent or counted as an attempt; the redelivered
/// record then makes attempt 1.
#[tokio::test]
async fn an_unavailable_key_service_retries_the_job_later_without_an_attempt() {
    let (server, url) = receiver().await;
    let h = Harness::new(test_config(5));
    let sub = h.seal(subscription(&url)).await;
    h.add(&sub).await;
    let event = one_record_batch(raw(&job_for(&sub, EventType::TelephonyCreated)));

    h.keys.set_unavailable(true);
    let response = h.handle(event.clone()).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["m-1"]);
    assert!(server.received_requests().await.unwrap().is_empty());
    assert!(h.queue.is_empty() && h.dlq.is_empty());
    assert!(h.attempts(&sub.id).await.is_empty());
    assert_eq!(h.sub(&sub.id).await.unwrap().health, sub.health);
    assert_eq!(h.metrics.count(Metric::SecretUnavailable), 1);
    assert_eq!(h.metrics.count(Metric::DeadLettered), 0);

    h.keys.set_unavailable(false);
    let response = h.handle(event).await;
    assert!(response.batch_item_failures.is_empty());
    let log = h.attempts(&sub.id).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].attempt, 1, "no attempt was used up by the outage");
    assert_signed_with(&server.received_requests().await.unwrap()[0], &[SECRET]);
}

/// One `Decrypt` per data key per warm container, however many deliveries (the subscription is
/// re-read for each: the cache is keyed by the wrapped key, not by a cached subscription).
#[tokio::test]
async fn data_keys_are_unwrapped_once_for_many_deliveries() {
    let (server, url) = receiver().await;
    let h = Harness::new(test_config(5));
    let sub = h.seal(rotated(&url)).await;
    h.add(&sub).await;
    for _ in 0..5 {
        assert_eq!(h.deliver_new(&sub).await, delivered(1, 200));
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 5);
    assert_eq!(h.keys.unwraps(), 2, "one per secret (current and retiring)");
}
