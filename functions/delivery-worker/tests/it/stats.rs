//! What the worker leaves for `GET …/stats` and `GET …/deliveries/{attemptId}`: each attempt
//! record — the stats count the made ones from the log (a skipped one is not), the worker writes
//! no stats of its own — with the headers sent, signatures redacted, and the body only for a type
//! the event log does not keep.

use crate::common::*;
use delivery_worker::handler::poll_once;
use relay_shared::delivery::AttemptStatus;
use relay_shared::events::EventType;
use relay_shared::stats::{webhook_stats, window_start, WebhookStats};
use wiremock::{MockServer, ResponseTemplate};

#[tokio::test]
async fn made_attempts_are_counted_and_recorded_with_their_headers() {
    let server = MockServer::start().await;
    respond(&server, ResponseTemplate::new(500), Some(1)).await;
    respond(&server, ResponseTemplate::new(200), None).await;
    let (h, sub) = Harness::subscribed(test_config(5), &format!("{}/hook", server.uri())).await;
    let job = job_for(&sub, EventType::TelephonyUpdated);
    assert_first_retry(&h.worker.process_message(&raw(&job), 1).await);
    assert_eq!(
        poll_once(&h.worker, h.queue.as_ref(), 0).await.unwrap(),
        vec![delivered(2, 200)]
    );

    let log = h.attempts(&sub.id).await;
    // Nothing written to the stats per attempt: only the attempt records.
    let at = log[0].at;
    let since = window_start(at, chrono::Duration::hours(24));
    let stored = h.stores.stats.materialised(&sub.id, since).await.unwrap();
    assert_eq!((stored.upto, stored.buckets.len()), (None, 0));
    let w = stats_at(&h, &sub.id, at).await.day;
    assert_eq!((w.attempts, w.successes, w.failures), (2, 1, 1));
    assert_eq!(w.last_success_at, Some(log[0].at));
    assert_eq!(w.last_failure_at, Some(log[1].at));

    // Each attempt's headers as that request carried them, in order, the signatures' values
    // redacted; the event log keeps telephony events, so no body is kept with the attempt.
    let sent = server.received_requests().await.unwrap();
    for a in &log {
        let req = &sent[a.attempt as usize - 1];
        assert_eq!(a.request_body, None);
        let names: Vec<&str> = a.request_headers.iter().map(|(n, _)| n.as_str()).collect();
        for expected in [
            "content-type",
            "webhook-id",
            "webhook-signature",
            "x-hook-signature",
        ] {
            assert!(names.contains(&expected), "{expected} in {names:?}");
        }
        for (name, value) in &a.request_headers {
            let on_the_wire = header(req, name).expect("sent");
            if name.contains("signature") {
                assert!(value.ends_with("<redacted>"), "{name}: {value}");
                assert_ne!(value, on_the_wire);
            } else {
                assert_eq!(value, on_the_wire, "{name}");
            }
        }
    }
}

#[tokio::test]
async fn a_test_events_body_is_kept_and_a_skipped_attempt_is_not_counted() {
    let server = MockServer::start().await;
    respond(&server, ResponseTemplate::new(200), None).await;
    let (h, sub) = Harness::subscribed(test_config(5), &format!("{}/hook", server.uri())).await;
    let job = job_for(&sub, EventType::WebhookTest);
    assert_eq!(
        h.worker.process_message(&raw(&job), 1).await,
        delivered(1, 200)
    );
    let log = h.attempts(&sub.id).await;
    assert_eq!(log[0].request_body.as_deref(), Some(job.body.as_str()));

    // Disabled: the next job is skipped, recorded, and not counted.
    let mut disabled = h.sub(&sub.id).await.unwrap();
    disabled.enabled = false;
    disabled.version += 1;
    h.stores.subscriptions.update(&disabled).await.unwrap();
    h.worker
        .process_message(&raw(&job_for(&sub, EventType::TelephonyCreated)), 1)
        .await;
    let log = h.attempts(&sub.id).await;
    assert_eq!(log[0].status, AttemptStatus::Skipped);
    assert!(log[0].request_headers.is_empty() && log[0].request_body.is_none());
    let w = stats_at(&h, &sub.id, log[0].at).await.hour;
    assert_eq!((w.attempts, w.successes), (1, 1));
}

/// `GET …/stats`' figures at `now`, from the harness's attempt log.
async fn stats_at(
    h: &Harness,
    sub: &relay_shared::ids::SubscriptionId,
    now: chrono::DateTime<chrono::Utc>,
) -> WebhookStats {
    webhook_stats(
        h.stores.stats.as_ref(),
        h.stores.attempts.as_ref(),
        sub,
        now,
    )
    .await
    .unwrap()
}

/// On DynamoDB Local + moto: a failed and a successful attempt (two jobs) leave their records and nothing
/// in the webhook's `STATS#` partition; the figures come from the records.
#[tokio::test]
async fn aws_attempts_write_no_stats_and_are_counted_from_the_log() {
    let test = "aws_attempts_write_no_stats_and_are_counted_from_the_log";
    let Some(aws) = testkit::aws::Resources::for_test(test, "relay-dw-stats").await else {
        return;
    };
    let server = MockServer::start().await;
    respond(&server, ResponseTemplate::new(500), Some(1)).await;
    respond(&server, ResponseTemplate::new(200), None).await;
    let worker = aws_worker(&aws, test_config(5), TestKeys::new().opener());
    let sub = subscription(&format!("{}/hook", server.uri()));
    aws.stores.subscriptions.create(&sub, 10).await.unwrap();
    let job = job_for(&sub, EventType::TelephonyCreated);
    assert_first_retry(&worker.process_message(&raw(&job), 1).await);
    let other = job_for(&sub, EventType::TelephonyUpdated);
    assert_eq!(
        worker.process_message(&raw(&other), 1).await,
        delivered(1, 200)
    );
    let log = attempts(&aws.stores, &sub.id).await;
    assert_eq!(log.len(), 2);
    let stats = &aws.stores.stats;
    let since = window_start(log[0].at, chrono::Duration::hours(24));
    let stored = stats.materialised(&sub.id, since).await.unwrap();
    assert_eq!((stored.upto, stored.buckets.len()), (None, 0));
    let w = webhook_stats(
        stats.as_ref(),
        aws.stores.attempts.as_ref(),
        &sub.id,
        log[0].at,
    )
    .await
    .unwrap()
    .day;
    assert_eq!((w.attempts, w.successes, w.failures), (2, 1, 1));
}
