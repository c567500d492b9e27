//! The delivery core end to end: memory adapters + a real HTTP receiver on 127.0.0.1 (wiremock).

use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use chrono::Utc;
use delivery_worker::handler::{poll_once, run_consumer};
use delivery_worker::{DeferReason, DeliveryOutcome, Metric};
use relay_shared::clock::ManualClock;
use relay_shared::delivery::{AttemptStatus, ErrorClass};
use relay_shared::events::EventType;
use relay_shared::signing::{standard_webhooks_signature, SigningSecret};
use relay_shared::subscription::Health;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn receiver(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&server)
        .await;
    server
}

fn url(server: &MockServer) -> String {
    format!("{}/hook", server.uri())
}

#[tokio::test]
async fn success_delivers_signed_exact_body() {
    let server = receiver(200).await;
    let (h, sub) = Harness::subscribed(test_config(5), &url(&server)).await;
    let job = job_for(&sub, EventType::TelephonyCreated);

    let outcome = h.worker.process_message(&raw(&job), 1).await;
    assert_eq!(outcome, delivered(1, 200));

    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.body, job.body.as_bytes(), "body bytes exactly as queued");
    assert_eq!(header(r, "content-type"), Some("application/json"));
    assert_eq!(
        header(r, "user-agent").unwrap(),
        format!("webex-relay/{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(header(r, "webhook-id").unwrap(), job.delivery_id());
    let ts: i64 = header(r, "webhook-timestamp").unwrap().parse().unwrap();
    assert!((Utc::now().timestamp() - ts).abs() < 300);
    let expected = standard_webhooks_signature(
        &SigningSecret::new(SECRET),
        &job.delivery_id(),
        ts,
        job.body.as_bytes(),
    );
    assert_eq!(header(r, "webhook-signature").unwrap(), expected);
    assert!(header(r, "x-hook-signature")
        .unwrap()
        .starts_with("sha256="));
    assert_eq!(header(r, "x-servicehook-event"), Some("telephony:created"));
    assert_eq!(header(r, "x-servicehook-uuid").unwrap(), sub.id.to_string());
    assert!(header(r, "x-servicehook-signature").is_some());
    assert!(header(r, "x-servicehook-timestamp").unwrap().ends_with('Z'));
    assert_eq!(
        header(r, "x-org-id"),
        None,
        "x-org-id only on presence events"
    );

    let log = h.attempts(&sub.id).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, AttemptStatus::Succeeded);
    assert_eq!(log[0].status_code, Some(200));
    assert_eq!(log[0].attempt, 1);
    assert_eq!(log[0].delivery_id, job.delivery_id());
    assert!(h.queue.is_empty() && h.dlq.is_empty());
    assert_eq!(h.metrics.count(Metric::Delivered), 1);
}

#[tokio::test]
async fn presence_events_carry_the_org_header() {
    let server = receiver(204).await;
    let (h, sub) = Harness::subscribed(test_config(5), &url(&server)).await;
    let mut job = job_for(&sub, EventType::PresenceChanged);
    job.body = r#"{"payload":"user-presence","items":[{"id":"p1","status":"active"}]}"#.into();
    assert_eq!(
        h.worker.process_message(&raw(&job), 1).await,
        delivered(1, 204)
    );
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(header(&reqs[0], "x-org-id"), Some("org-1"));
}

#[tokio::test]
async fn server_error_then_success_with_stable_delivery_id() {
    let server = MockServer::start().await;
    respond(
        &server,
        ResponseTemplate::new(500).set_body_string("boom"),
        Some(1),
    )
    .await;
    respond(
        &server,
        ResponseTemplate::new(200).set_body_string("ok"),
        None,
    )
    .await;
    let (h, sub) = Harness::subscribed(test_config(5), &url(&server)).await;
    let job = job_for(&sub, EventType::TelephonyUpdated);

    let first = h.worker.process_message(&raw(&job), 1).await;
    assert_first_retry(&first);
    let queued = h.queued_jobs();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].attempts.len(), 1);
    assert_eq!(queued[0].attempts[0].status_code, Some(500));
    assert!(queued[0].not_before.is_some());
    assert_eq!(queued[0].body, job.body);

    let outcomes = poll_once(&h.worker, h.queue.as_ref(), 0).await.unwrap();
    assert_eq!(outcomes, vec![delivered(2, 200)]);
    assert!(h.queue.is_empty(), "acked");

    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        header(&reqs[0], "webhook-id"),
        header(&reqs[1], "webhook-id")
    );
    let log = h.attempts(&sub.id).await;
    assert_eq!(log.len(), 2);
    let failed = log.iter().find(|a| a.attempt == 1).unwrap();
    assert_eq!(
        (failed.status, failed.status_code, failed.error_class),
        (
            AttemptStatus::Failed,
            Some(500),
            Some(ErrorClass::HttpStatus)
        )
    );
    assert_eq!(failed.response_snippet.as_deref(), Some("boom"));
    assert_eq!(h.metrics.count(Metric::Failed), 1);
    assert_eq!(h.metrics.count(Metric::Retried), 1);
    assert_eq!(h.metrics.count(Metric::Delivered), 1);
}

#[tokio::test]
async fn timeout_is_a_retryable_failure() {
    let server = MockServer::start().await;
    respond(
        &server,
        ResponseTemplate::new(200).set_delay(Duration::from_secs(3)),
        None,
    )
    .await;
    let mut config = test_config(3);
    config.delivery_timeout = Duration::from_millis(200);
    let h = Harness::new(config);
    let sub = subscription(&url(&server));
    h.add(&sub).await;
    let outcome = h.deliver_new(&sub).await;
    assert_first_retry(&outcome);
    let log = h.attempts(&sub.id).await;
    assert_eq!(
        log[0].error_class,
        Some(ErrorClass::Timeout),
        "{:?}",
        log[0]
    );
    assert_eq!(log[0].status_code, None);
}

#[tokio::test]
async fn connection_refused_is_a_retryable_failure() {
    let h = Harness::new(test_config(3));
    let sub = subscription(&format!(
        "http://127.0.0.1:{}/tls-certificate-dns-hook",
        closed_port()
    ));
    h.add(&sub).await;
    let outcome = h.deliver_new(&sub).await;
    assert_first_retry(&outcome);
    assert_eq!(
        h.attempts(&sub.id).await[0].error_class,
        Some(ErrorClass::Connect)
    );
    assert_eq!(
        h.queued_jobs()[0].attempts[0].error_class,
        Some(ErrorClass::Connect)
    );
}

#[tokio::test]
async fn redirect_is_not_followed_and_fails() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(301).insert_header("Location", "/elsewhere"))
        .mount(&server)
        .await;
    Mock::given(path("/elsewhere"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let (h, sub) = Harness::subscribed(test_config(3), &url(&server)).await;
    let outcome = h.deliver_new(&sub).await;
    assert_first_retry(&outcome);
    let log = h.attempts(&sub.id).await;
    assert_eq!(
        (log[0].status_code, log[0].error_class),
        (Some(301), Some(ErrorClass::Redirect))
    );
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "the Location was not followed"
    );
}

#[tokio::test]
async fn gone_disables_the_subscription() {
    let server = receiver(410).await;
    let (h, sub) = Harness::subscribed(test_config(5), &url(&server)).await;
    let outcome = h.deliver_new(&sub).await;
    assert!(
        matches!(outcome, DeliveryOutcome::DeadLettered { .. }),
        "{outcome:?}"
    );
    let stored = h.sub(&sub.id).await.unwrap();
    assert!(!stored.enabled);
    assert!(stored.disabled_reason.as_deref().unwrap().contains("410"));
    assert_eq!(stored.version, sub.version + 1);
    assert!(h.queue.is_empty(), "no retries after 410");
    let parked = h.parked_jobs();
    assert_eq!(parked.len(), 1);
    assert!(parked[0]
        .dead_letter_reason
        .as_deref()
        .unwrap()
        .contains("410"));

    // The next job for it is skipped, with an attempt record, and nothing is sent.
    let outcome = h.deliver_new(&sub).await;
    assert!(
        matches!(outcome, DeliveryOutcome::Skipped { .. }),
        "{outcome:?}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    let log = h.attempts(&sub.id).await;
    assert_eq!(
        log.iter()
            .filter(|a| a.status == AttemptStatus::Skipped)
            .count(),
        1
    );
}

#[tokio::test]
async fn disabling_retries_on_a_concurrent_update() {
    // Another writer bumps the version between our read and write: the optimistic update retries.
    let server = receiver(410).await;
    let (h, sub) = Harness::subscribed(test_config(5), &url(&server)).await;
    let mut renamed = sub.clone();
    renamed.name = "renamed".into();
    renamed.version += 1;
    h.stores.subscriptions.update(&renamed).await.unwrap();
    h.deliver_new(&sub).await;
    let stored = h.sub(&sub.id).await.unwrap();
    assert!(!stored.enabled);
    assert_eq!(stored.name, "renamed", "the concurrent change is kept");
    assert_eq!(stored.version, sub.version + 2);
}

#[tokio::test]
async fn too_many_requests_honours_retry_after_within_bounds() {
    let server = MockServer::start().await;
    respond(
        &server,
        ResponseTemplate::new(429).insert_header("Retry-After", "15"),
        Some(1),
    )
    .await;
    respond(
        &server,
        ResponseTemplate::new(503).insert_header("Retry-After", "3600"),
        Some(1),
    )
    .await;
    respond(
        &server,
        ResponseTemplate::new(429).insert_header("Retry-After", "1"),
        None,
    )
    .await;
    let mut config = test_config(5);
    config.schedule = delivery_worker::schedule::RetrySchedule::new(vec![0, 10, 10, 10, 10], 0);
    let h = Harness::new(config);
    let sub = subscription(&url(&server));
    h.add(&sub).await;

    // Three different jobs (one message is only ever attempted once per attempt number).
    let job = job_for(&sub, EventType::TelephonyCreated);
    // 15 s is within [10, 20]: honoured.
    let o = h.worker.process_message(&raw(&job), 1).await;
    assert_eq!(o, retrying(1, 15));
    // 3600 s is capped at twice the schedule.
    let o = h.deliver_new(&sub).await;
    assert_eq!(o, retrying(1, 20));
    // 1 s never shortens the schedule.
    let o = h.deliver_new(&sub).await;
    assert_eq!(o, retrying(1, 10));
    let first = &h.queued_jobs()[0];
    let wait = first.not_before.unwrap() - first.attempts[0].at;
    assert_eq!(wait.num_seconds(), 15);
    assert_eq!(first.attempts[0].status_code, Some(429));
}

#[tokio::test]
async fn rate_limit_defers_without_counting_an_attempt() {
    let server = receiver(200).await;
    let clock = Arc::new(ManualClock::new(at("2026-11-23T12:00:30Z")));
    let config = test_config(5);
    let http = sender(&config);
    let h = Harness::with(config, http, clock.clone());
    let mut sub = subscription(&url(&server));
    sub.rate_limit_per_minute = 1;
    h.add(&sub).await;

    let first = job_for(&sub, EventType::TelephonyCreated);
    let second = job_for(&sub, EventType::TelephonyUpdated);
    assert!(matches!(
        h.worker.process_message(&raw(&first), 1).await,
        DeliveryOutcome::Delivered { .. }
    ));
    let o = h.worker.process_message(&raw(&second), 1).await;
    let DeliveryOutcome::Deferred {
        reason: DeferReason::RateLimited,
        delay,
    } = o
    else {
        panic!("{o:?}")
    };
    assert!(
        delay >= Duration::from_secs(30) && delay <= Duration::from_secs(36),
        "{delay:?}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert_eq!(
        h.attempts(&sub.id).await.len(),
        1,
        "a deferral is not an attempt"
    );
    let deferred = h.queued_jobs();
    assert_eq!(deferred.len(), 1);
    assert!(deferred[0].attempts.is_empty());
    assert!(deferred[0].not_before.unwrap() >= at("2026-11-23T12:01:00Z"));
    assert_eq!(h.metrics.count(Metric::Deferred), 1);

    // Received again before its not_before: deferred again, still no attempt.
    let o = h.worker.process_message(&h.queue.bodies()[0], 2).await;
    assert!(
        matches!(
            o,
            DeliveryOutcome::Deferred {
                reason: DeferReason::NotYetDue,
                ..
            }
        ),
        "{o:?}"
    );
    assert_eq!(h.attempts(&sub.id).await.len(), 1);

    // In the next window it goes out as attempt 1.
    clock.set(at("2026-11-23T12:01:10Z"));
    let o = h.worker.process_message(&h.queue.bodies()[0], 3).await;
    assert_eq!(o, delivered(1, 200));
}

#[tokio::test]
async fn not_yet_due_job_is_resent_with_the_remaining_delay() {
    let clock = Arc::new(ManualClock::new(at("2026-11-23T12:00:00Z")));
    let config = test_config(5);
    let http = sender(&config);
    let h = Harness::with(config, http, clock);
    let sub = subscription("https://example.invalid/hook");
    h.add(&sub).await;
    let mut job = job_for(&sub, EventType::TelephonyCreated);
    job.not_before = Some(at("2026-11-23T14:00:00Z"));
    let o = h.worker.process_message(&raw(&job), 1).await;
    assert_eq!(
        o,
        DeliveryOutcome::Deferred {
            reason: DeferReason::NotYetDue,
            delay: Duration::from_secs(7200)
        }
    );
    assert_eq!(h.queued_jobs(), vec![job], "re-sent unchanged");
    assert!(h.attempts(&sub.id).await.is_empty());
}

#[tokio::test]
async fn long_backoff_is_carried_by_not_before() {
    // The default schedule's 2-hour wait: the re-send is delayed 15 min (SQS's cap) and carries not_before.
    let server = receiver(500).await;
    let mut config = test_config(5);
    config.schedule =
        delivery_worker::schedule::RetrySchedule::new(vec![0, 60, 300, 1800, 7200], 0);
    let h = Harness::new(config);
    let sub = subscription(&url(&server));
    h.add(&sub).await;
    let mut job = job_for(&sub, EventType::TelephonyCreated);
    job.attempts.extend(failed_attempts(3, 500));
    let o = h.worker.process_message(&raw(&job), 1).await;
    assert_eq!(o, retrying(4, 7200));
    let q = &h.queued_jobs()[0];
    assert_eq!(q.attempts.len(), 4);
    let wait = q.not_before.unwrap() - q.attempts[3].at;
    assert_eq!(wait.num_seconds(), 7200);
}

#[tokio::test]
async fn full_schedule_ends_in_the_dlq_and_success_clears_failing() {
    let server = MockServer::start().await;
    respond(&server, ResponseTemplate::new(502), Some(5)).await;
    respond(&server, ResponseTemplate::new(200), None).await;
    let (h, sub) = Harness::subscribed(test_config(5), &url(&server)).await;
    h.queue.push_raw(
        raw(&job_for(&sub, EventType::TelephonyCreated)),
        Duration::ZERO,
    );

    let mut all = Vec::new();
    for _ in 0..10 {
        if h.queue.is_empty() {
            break;
        }
        all.extend(poll_once(&h.worker, h.queue.as_ref(), 0).await.unwrap());
    }
    assert_eq!(all.len(), 5, "{all:?}");
    assert!(all[..4]
        .iter()
        .all(|o| matches!(o, DeliveryOutcome::Retrying { .. })));
    assert!(
        matches!(&all[4], DeliveryOutcome::DeadLettered { reason } if reason.contains("all 5 attempts")),
        "{:?}",
        all[4]
    );
    assert!(h.queue.is_empty());
    let parked = h.parked_jobs();
    assert_eq!(parked.len(), 1);
    assert_eq!(
        parked[0]
            .attempts
            .iter()
            .map(|a| a.attempt)
            .collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert!(parked[0]
        .attempts
        .iter()
        .all(|a| a.status_code == Some(502)));
    assert!(parked[0]
        .dead_letter_reason
        .as_deref()
        .unwrap()
        .contains("HTTP 502"));
    assert_eq!(h.sub(&sub.id).await.unwrap().health, Health::Failing);
    assert_eq!(h.attempts(&sub.id).await.len(), 5);
    assert_eq!(h.metrics.count(Metric::DeadLettered), 1);

    // A later success clears it.
    let o = h.deliver_new(&sub).await;
    assert!(matches!(o, DeliveryOutcome::Delivered { .. }));
    assert_eq!(h.sub(&sub.id).await.unwrap().health, Health::Healthy);
}

#[tokio::test]
async fn deleted_subscription_drops_the_job() {
    let h = Harness::new(test_config(5));
    let sub = subscription("https://example.invalid/hook");
    let o = h.deliver_new(&sub).await;
    assert!(matches!(o, DeliveryOutcome::Dropped { .. }), "{o:?}");
    assert!(o.acknowledged());
    assert!(h.queue.is_empty() && h.dlq.is_empty());
}

#[tokio::test]
async fn unparseable_job_goes_to_the_dlq_with_its_reason() {
    let h = Harness::new(test_config(5));
    let o = h.worker.process_message("{not json", 1).await;
    assert!(matches!(o, DeliveryOutcome::DeadLettered { .. }), "{o:?}");
    let parked: serde_json::Value = serde_json::from_str(&h.dlq.bodies()[0]).unwrap();
    assert!(parked["deadLetterReason"]
        .as_str()
        .unwrap()
        .contains("unparseable"));
    assert_eq!(parked["receivedBody"], "{not json");
}

#[tokio::test]
async fn secret_rotation_signs_with_both_secrets() {
    let server = receiver(200).await;
    let h = Harness::new(test_config(5));
    let mut sub = subscription(&url(&server));
    let new_secret = "whsec_dGhpcyBpcyB0aGUgbmV3IHNlY3JldCBrZXkhIQ==";
    sub.rotate_secret(new_secret.into(), Utc::now(), chrono::Duration::hours(24));
    h.add(&sub).await;
    let job = job_for(&sub, EventType::TelephonyCreated);
    assert!(matches!(
        h.worker.process_message(&raw(&job), 1).await,
        DeliveryOutcome::Delivered { .. }
    ));
    let r = &server.received_requests().await.unwrap()[0];
    let sigs: Vec<&str> = header(r, "webhook-signature").unwrap().split(' ').collect();
    assert_eq!(sigs.len(), 2);
    let ts: i64 = header(r, "webhook-timestamp").unwrap().parse().unwrap();
    let id = header(r, "webhook-id").unwrap();
    assert_eq!(
        sigs[0],
        standard_webhooks_signature(&SigningSecret::new(new_secret), id, ts, &r.body)
    );
    assert_eq!(
        sigs[1],
        standard_webhooks_signature(&SigningSecret::new(SECRET), id, ts, &r.body)
    );
}

#[tokio::test]
async fn response_body_is_capped_and_snippet_is_one_kib() {
    let server = MockServer::start().await;
    respond(
        &server,
        ResponseTemplate::new(500).set_body_string("é".repeat(100_000)),
        None,
    )
    .await;
    let (h, sub) = Harness::subscribed(test_config(2), &url(&server)).await;
    h.deliver_new(&sub).await;
    let snippet = h.attempts(&sub.id).await[0]
        .response_snippet
        .clone()
        .unwrap();
    assert!(
        snippet.len() <= 1024 && snippet.len() >= 1020,
        "{}",
        snippet.len()
    );
    assert!(snippet.chars().all(|c| c == 'é'));
}

/// A crash in the middle of a batch: the re-send / DLQ park fails for one record. Only that record
/// is reported as a batch item failure; the others are acknowledged; the failed one is not lost and
/// goes through on redelivery.
#[tokio::test]
async fn crash_mid_batch_reports_only_the_failed_record() {
    use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
    use relay_shared::adapters::memory::{memory_stores, MemoryQueue};

    let ok = receiver(200).await;
    let failing = receiver(500).await;
    let config = test_config(5);
    let http = sender(&config);
    let queue = Arc::new(MemoryQueue::new(Duration::from_secs(30)));
    let dlq = Arc::new(MemoryQueue::new(Duration::from_secs(30)));
    let flaky_send = Arc::new(FlakyQueue::new(queue.clone(), 1));
    let flaky_park = Arc::new(FlakyQueue::new(dlq.clone(), 1));
    let h = Harness::with_queues(
        config,
        http,
        Arc::new(relay_shared::clock::SystemClock),
        memory_stores(),
        queue,
        flaky_send,
        dlq,
        flaky_park,
    );
    let good = subscription(&url(&ok));
    let bad = subscription(&url(&failing));
    h.add(&good).await;
    h.add(&bad).await;
    let good_job = job_for(&good, EventType::TelephonyCreated);
    let retry_job = job_for(&bad, EventType::TelephonyCreated);
    let mut last_job = job_for(&bad, EventType::TelephonyUpdated);
    last_job.attempts.extend(failed_attempts(4, 500));

    let mut event = SqsEvent::default();
    for (id, body) in [
        ("m-good", raw(&good_job)),
        ("m-retry", raw(&retry_job)),
        ("m-last", raw(&last_job)),
    ] {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        m.body = Some(body);
        m.attributes
            .insert("ApproximateReceiveCount".into(), "1".into());
        event.records.push(m);
    }
    let response = h.handle(event.clone()).await;
    let mut failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    failed.sort();
    assert_eq!(failed, vec!["m-last".to_owned(), "m-retry".to_owned()]);
    assert!(
        h.queue.is_empty() && h.dlq.is_empty(),
        "nothing was stored for the failed records"
    );

    // SQS redelivers the two failed records: now the queue and the DLQ work again.
    event
        .records
        .retain(|m| m.message_id.as_deref() != Some("m-good"));
    let response = h.handle(event).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(h.queued_jobs().len(), 1, "the retry was re-sent");
    assert_eq!(h.parked_jobs().len(), 1, "the exhausted job was parked");
    assert_eq!(
        ok.received_requests().await.unwrap().len(),
        1,
        "the good record was delivered once"
    );
}

#[tokio::test]
async fn batch_is_delivered_concurrently_and_bad_records_do_not_fail_it() {
    use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
    let server = receiver(200).await;
    let (h, sub) = Harness::subscribed(test_config(5), &url(&server)).await;
    let mut event = SqsEvent::default();
    for i in 0..10 {
        let mut m = SqsMessage::default();
        m.message_id = Some(format!("m{i}"));
        m.body = Some(if i == 3 {
            "garbage".into()
        } else {
            raw(&job_for(&sub, EventType::TelephonyCreated))
        });
        event.records.push(m);
    }
    let response = h.handle(event).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(server.received_requests().await.unwrap().len(), 9);
    assert_eq!(h.dlq.len(), 1);
}

#[tokio::test]
async fn sample_event_file_is_a_valid_batch() {
    let path = std::fs::canonicalize(env!("CARGO_MANIFEST_DIR"))
        .unwrap()
        .join("../../events/delivery-job.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_str(&text).unwrap();
    assert_eq!(event.records.len(), 1);
    let job: relay_shared::delivery::DeliveryJob =
        serde_json::from_str(event.records[0].body.as_deref().unwrap()).unwrap();

    let server = receiver(200).await;
    let h = Harness::new(test_config(5));
    let mut sub = subscription(&url(&server));
    sub.id = job.subscription_id;
    h.add(&sub).await;
    let response = h.handle(event).await;
    assert!(response.batch_item_failures.is_empty());
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].body, job.body.as_bytes());
    // The response shape Lambda expects.
    let json = serde_json::to_value(&response).unwrap();
    assert_eq!(json, serde_json::json!({"batchItemFailures": []}));
}

#[tokio::test]
async fn local_consumer_loop_delivers_and_stops() {
    let server = receiver(200).await;
    let (h, sub) = Harness::subscribed(test_config(5), &url(&server)).await;
    for _ in 0..3 {
        h.queue.push_raw(
            raw(&job_for(&sub, EventType::TelephonyCreated)),
            Duration::ZERO,
        );
    }
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run_consumer(h.worker.clone(), h.queue.clone(), async {
        let _ = rx.await;
    }));
    // Bounded wait for the three deliveries (no timing assertion: just a generous cap).
    for _ in 0..200 {
        if h.queue.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    assert!(h.queue.is_empty());
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn tls_failure_is_classified() {
    // https to a plain-http receiver: the TLS handshake fails.
    let server = receiver(200).await;
    let h = Harness::new(test_config(3));
    let sub = subscription(&format!(
        "https://127.0.0.1:{}/hook",
        server.address().port()
    ));
    h.add(&sub).await;
    let outcome = h.deliver_new(&sub).await;
    assert_first_retry(&outcome);
    let log = h.attempts(&sub.id).await;
    assert_eq!(log[0].error_class, Some(ErrorClass::Tls), "{:?}", log[0]);
}

#[tokio::test]
async fn duplicate_queue_messages_never_post_twice() {
    // SQS standard queues are at-least-once: the same message can reach two consumers at
    // once, or come back after it was handled. Either way the receiver sees one POST.
    let server = receiver(200).await;
    let (h, sub) = Harness::subscribed(test_config(5), &url(&server)).await;
    let job = job_for(&sub, EventType::TelephonyCreated);
    let body = raw(&job);

    let (a, b) = tokio::join!(
        h.worker.process_message(&body, 1),
        h.worker.process_message(&body, 1)
    );
    let delivered = [&a, &b]
        .iter()
        .filter(|o| matches!(o, DeliveryOutcome::Delivered { .. }))
        .count();
    assert_eq!(delivered, 1, "one copy delivers: {a:?} / {b:?}");
    let late = h.worker.process_message(&body, 2).await;
    assert!(
        matches!(late, DeliveryOutcome::Dropped { .. }),
        "a copy after the success is dropped: {late:?}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert_eq!(h.attempts(&sub.id).await.len(), 1);
}
