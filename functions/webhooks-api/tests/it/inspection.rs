//! The routes that look into deliveries (issue 14 item 6, issue 15 item 5): a webhook's stats,
//! one attempt's detail, the delivery log's filters, resending one event, the org's event log
//! and the dead-letter depth. Each case on the memory adapters and, when the AWS endpoints are
//! set, on DynamoDB Local + moto (as the route suite).

use chrono::{DateTime, Duration, Utc};
use relay_shared::auth::Role;
use relay_shared::delivery::{AttemptRecord, AttemptStatus, DeliveryJob, ErrorClass};
use relay_shared::events::{EventType, OutboundEvent};
use relay_shared::ids::{AttemptId, EventId, SubscriptionId};
use relay_shared::ports::Clock;
use relay_shared::stats::{bucket_start, ReadLimits};
use serde_json::{json, Value};
use webhooks_api::ApiConfig;

use crate::common::{request, suite, unique, Backend, Harness};

const HOOKS: &str = "/api/hooks/webhooks";

suite!(
    stats_add_up_the_last_hour_and_day,
    stats_answer_503_until_a_long_catch_up_is_done,
    stats_of_a_webhook_busier_than_the_budget_are_exact,
    an_attempts_detail_shows_what_was_sent,
    the_delivery_log_filters_by_type_and_time,
    resend_queues_a_new_run_of_one_event,
    resend_has_a_quota_and_is_idempotent,
    the_event_log_is_paged_newest_first_and_filtered,
    the_dead_letter_depth_is_for_admins,
);

async fn h_with(b: Backend, edit: impl FnOnce(&mut ApiConfig)) -> Option<Harness> {
    let mut config = ApiConfig::default();
    edit(&mut config);
    b.harness(config).await
}

/// A webhook of a fresh user in `org` (presence:changed + telephony:created): (key, id).
async fn webhook(h: &Harness, org: &str) -> (String, SubscriptionId) {
    let key = h.key(&unique("user"), org, Role::User).await;
    let c = h.create(&key, "inspect").await;
    (key, c["id"].as_str().unwrap().parse().unwrap())
}

/// Logs an event of `org` created at `at`; returns it.
async fn logged(h: &Harness, org: &str, t: EventType, at: DateTime<Utc>) -> OutboundEvent {
    let e = OutboundEvent {
        id: EventId::new_at(at.timestamp_millis() as u64),
        event_type: t,
        org_id: org.to_owned(),
        created_at: at,
        body: format!(r#"{{"n":"{}","at":"{}"}}"#, unique("e"), at.to_rfc3339()),
    };
    h.stores
        .events
        .append(&e, h.clock.now() + Duration::days(30))
        .await
        .unwrap();
    e
}

/// Records one attempt of `event` for `sub`, made at `at`.
async fn attempted(
    h: &Harness,
    sub: SubscriptionId,
    event: &OutboundEvent,
    status: AttemptStatus,
    at: DateTime<Utc>,
    duration_ms: u64,
) -> AttemptRecord {
    let mut a = testkit::fixtures::attempt(sub, event.id, 1, status, at);
    a.event_type = event.event_type;
    a.duration_ms = duration_ms;
    if status == AttemptStatus::Failed {
        a.error_class = Some(ErrorClass::HttpStatus);
    }
    h.stores
        .attempts
        .record(&a, h.clock.now() + Duration::days(7))
        .await
        .unwrap();
    a
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The figures from a known set of attempts in the attempt log: three in the current bucket, two
/// three hours ago, one two days ago (outside both windows), one skipped (never counted). A
/// second GET (the closed bucket of three hours ago now materialised) gives the same figures.
async fn stats_add_up_the_last_hour_and_day(b: Backend) {
    let Some(h) = h_with(b, |_| {}).await else {
        return;
    };
    let org = unique("org");
    let (key, sid) = webhook(&h, &org).await;
    let now = h.clock.now();
    let here = bucket_start(now);
    let earlier = here - Duration::hours(3);
    let event = logged(&h, &org, EventType::PresenceChanged, now).await;
    let made = [
        (here, AttemptStatus::Succeeded, 10),
        (here, AttemptStatus::Succeeded, 20),
        (here, AttemptStatus::Failed, 1_000),
        (earlier, AttemptStatus::Failed, 40),
        (earlier + Duration::seconds(1), AttemptStatus::Succeeded, 50),
        (here - Duration::days(2), AttemptStatus::Failed, 5),
        (here, AttemptStatus::Skipped, 0),
    ];
    for (at, status, ms) in made {
        attempted(&h, sid, &event, status, at, ms).await;
    }
    let p = format!("{HOOKS}/{sid}/stats");
    let r = h.call("GET", &p, Some(&key), None).await.assert_status(200);
    let again = h.call("GET", &p, Some(&key), None).await.assert_status(200);
    assert_eq!(again, r);
    assert_eq!(r["webhookId"], sid.to_string());
    let time = |t: DateTime<Utc>| webhooks_api::model::time(t);
    assert_eq!(
        r["windows"]["1h"],
        json!({"attempts": 3, "successes": 2, "failures": 1, "successRate": 2.0 / 3.0,
               "p50Ms": 20, "p95Ms": 1000,
               "lastSuccessAt": time(here), "lastFailureAt": time(here)})
    );
    assert_eq!(
        r["windows"]["24h"],
        json!({"attempts": 5, "successes": 3, "failures": 2, "successRate": 0.6,
               "p50Ms": 40, "p95Ms": 1000,
               "lastSuccessAt": time(here), "lastFailureAt": time(here)})
    );
    // A webhook without attempts: zeros and nulls.
    let (key2, other) = webhook(&h, &org).await;
    let r = h
        .call("GET", &format!("{HOOKS}/{other}/stats"), Some(&key2), None)
        .await
        .assert_status(200);
    assert_eq!(
        r["windows"]["1h"],
        json!({"attempts": 0, "successes": 0, "failures": 0, "successRate": null,
               "p50Ms": null, "p95Ms": null, "lastSuccessAt": null, "lastFailureAt": null})
    );
    // Another owner's webhook (same org) is not found; so is a malformed id.
    h.call("GET", &p, Some(&key2), None)
        .await
        .assert_error(404, "not_found");
    h.call("GET", &format!("{HOOKS}/nope/stats"), Some(&key), None)
        .await
        .assert_error(404, "not_found");
}

/// A webhook with more attempt records since its watermark than one GET reads (a budget of 60
/// records in pages of 20 here; `RECORD_BUDGET` deployed): a GET that reaches the budget
/// answers `503 unavailable` (retry), never partial figures; each one goes on where the last
/// stopped, so after a few the figures are the exact ones, and stay so.
async fn stats_answer_503_until_a_long_catch_up_is_done(b: Backend) {
    let Some(h) = h_with(b, |c| {
        c.stats_limits = ReadLimits {
            page: 20,
            budget: 60,
        }
    })
    .await
    else {
        return;
    };
    let org = unique("org");
    let (key, sid) = webhook(&h, &org).await;
    let now = h.clock.now();
    let event = logged(&h, &org, EventType::PresenceChanged, now).await;
    // 200 attempts, one every six minutes from 23 hours ago: every fifth failed.
    for i in 0..200i32 {
        let status = if i % 5 == 0 {
            AttemptStatus::Failed
        } else {
            AttemptStatus::Succeeded
        };
        let at = now - Duration::hours(23) + Duration::minutes(6) * i;
        attempted(&h, sid, &event, status, at, 30).await;
    }
    let p = format!("{HOOKS}/{sid}/stats");
    let mut refused = 0;
    let figures = loop {
        let r = h
            .send_allowing_5xx(request("GET", &p, Some(&key), None, &[]))
            .await;
        if r.status.as_u16() == 200 {
            break r.json();
        }
        assert_eq!(r.headers["retry-after"], "1");
        let e = r.assert_error(503, "unavailable");
        assert!(
            e["detail"].as_str().unwrap().contains("60 records read"),
            "{e}"
        );
        refused += 1;
        assert!(refused <= 6, "the catch-up does not end");
    };
    assert!(refused >= 2, "{refused} GETs refused");
    assert_eq!(
        (
            &figures["windows"]["24h"]["attempts"],
            &figures["windows"]["24h"]["failures"],
            &figures["windows"]["1h"]["attempts"],
        ),
        (&json!(200), &json!(40), &json!(0))
    );
    let again = h.call("GET", &p, Some(&key), None).await.assert_status(200);
    assert_eq!(again, figures);
}

/// A webhook whose open buckets (the last 16–21 minutes, not materialised yet) alone hold more
/// records than one GET's budget (100 attempts in the last 15 minutes, a budget of 60): those
/// records do not count against it, so the GET answers 200 with the exact figures, every time —
/// not 503 forever.
async fn stats_of_a_webhook_busier_than_the_budget_are_exact(b: Backend) {
    let Some(h) = h_with(b, |c| {
        c.stats_limits = ReadLimits {
            page: 20,
            budget: 60,
        }
    })
    .await
    else {
        return;
    };
    let org = unique("org");
    let (key, sid) = webhook(&h, &org).await;
    let now = h.clock.now();
    let event = logged(&h, &org, EventType::PresenceChanged, now).await;
    // 100 attempts, one every eight seconds from 15 minutes ago: every fifth failed.
    for i in 0..100i32 {
        let status = if i % 5 == 0 {
            AttemptStatus::Failed
        } else {
            AttemptStatus::Succeeded
        };
        let at = now - Duration::minutes(15) + Duration::seconds(8) * i;
        attempted(&h, sid, &event, status, at, 30).await;
    }
    let p = format!("{HOOKS}/{sid}/stats");
    for _ in 0..2 {
        let r = h.call("GET", &p, Some(&key), None).await.assert_status(200);
        for window in ["1h", "24h"] {
            assert_eq!(
                (
                    &r["windows"][window]["attempts"],
                    &r["windows"][window]["failures"],
                    &r["windows"][window]["p95Ms"],
                ),
                (&json!(100), &json!(20), &json!(30)),
                "{window}"
            );
        }
    }
}

async fn an_attempts_detail_shows_what_was_sent(b: Backend) {
    let Some(h) = h_with(b, |_| {}).await else {
        return;
    };
    let org = unique("org");
    let (key, sid) = webhook(&h, &org).await;
    let now = h.clock.now();
    let event = logged(&h, &org, EventType::PresenceChanged, now).await;
    // From the event log: the headers as the worker records them, the body the log's.
    let mut a = testkit::fixtures::attempt(sid, event.id, 2, AttemptStatus::Failed, now);
    a.event_type = event.event_type;
    a.error_class = Some(ErrorClass::HttpStatus);
    a.request_headers = vec![
        ("content-type".into(), "application/json".into()),
        ("webhook-signature".into(), "v1,<redacted>".into()),
    ];
    h.stores
        .attempts
        .record(&a, now + Duration::days(7))
        .await
        .unwrap();
    let p = format!("{HOOKS}/{sid}/deliveries/{}", a.id);
    let d = h.call("GET", &p, Some(&key), None).await.assert_status(200);
    assert_eq!(d["id"], a.id.to_string());
    assert_eq!(d["eventId"], event.id.to_string());
    assert_eq!(
        (d["attempt"].clone(), d["statusCode"].clone()),
        (json!(2), json!(500))
    );
    assert_eq!(d["errorClass"], "http_status");
    assert_eq!(d["responseSnippet"], "ok");
    assert_eq!(d["durationMs"], 12);
    assert_eq!(
        d["requestHeaders"],
        json!([
            ["content-type", "application/json"],
            ["webhook-signature", "v1,<redacted>"]
        ])
    );
    assert_eq!(d["body"], event.body);
    assert!(d.get("bodyUnavailable").is_none(), "{d}");
    assert_eq!(d["traceId"], Value::Null);
    // A test event is not logged: its body is kept with the attempt.
    let test_event = OutboundEvent {
        event_type: EventType::WebhookTest,
        id: EventId::new_at(now.timestamp_millis() as u64),
        ..event.clone()
    };
    let mut t = testkit::fixtures::attempt(sid, test_event.id, 1, AttemptStatus::Succeeded, now);
    t.event_type = EventType::WebhookTest;
    t.request_body =
        relay_shared::delivery::recorded_body(&DeliveryJob::for_event(&test_event, sid));
    h.stores
        .attempts
        .record(&t, now + Duration::days(7))
        .await
        .unwrap();
    let d = h
        .call(
            "GET",
            &format!("{HOOKS}/{sid}/deliveries/{}", t.id),
            Some(&key),
            None,
        )
        .await
        .assert_status(200);
    assert_eq!(d["body"], test_event.body);
    // An event no longer in the log: no body, and why.
    let gone = OutboundEvent {
        id: EventId::new_at(1_000),
        ..event.clone()
    };
    let g = attempted(&h, sid, &gone, AttemptStatus::Succeeded, now, 3).await;
    let d = h
        .call(
            "GET",
            &format!("{HOOKS}/{sid}/deliveries/{}", g.id),
            Some(&key),
            None,
        )
        .await
        .assert_status(200);
    assert_eq!(
        (d["body"].clone(), d["bodyUnavailable"].clone()),
        (Value::Null, json!("expired"))
    );
    // Not found: another owner's webhook, another webhook's attempt, an unknown or malformed id.
    let (key2, other) = webhook(&h, &org).await;
    h.call("GET", &p, Some(&key2), None)
        .await
        .assert_error(404, "not_found");
    h.call(
        "GET",
        &format!("{HOOKS}/{other}/deliveries/{}", a.id),
        Some(&key2),
        None,
    )
    .await
    .assert_error(404, "not_found");
    let unknown = AttemptId::new_at(now.timestamp_millis() as u64);
    for id in [unknown.to_string(), "att_nope".to_owned()] {
        h.call(
            "GET",
            &format!("{HOOKS}/{sid}/deliveries/{id}"),
            Some(&key),
            None,
        )
        .await
        .assert_error(404, "not_found");
    }
}

async fn the_delivery_log_filters_by_type_and_time(b: Backend) {
    let Some(h) = h_with(b, |_| {}).await else {
        return;
    };
    let org = unique("org");
    let (key, sid) = webhook(&h, &org).await;
    let t0 = h.clock.now() - Duration::hours(2);
    let mut made = Vec::new();
    for i in 0..6i64 {
        let t = if i % 2 == 0 {
            EventType::PresenceChanged
        } else {
            EventType::TelephonyCreated
        };
        let at = t0 + Duration::minutes(10 * i);
        let e = logged(&h, &org, t, at).await;
        let status = if i < 3 {
            AttemptStatus::Succeeded
        } else {
            AttemptStatus::Failed
        };
        made.push(attempted(&h, sid, &e, status, at, 5).await.id.to_string());
    }
    let p = format!("{HOOKS}/{sid}/deliveries");
    let get = |q: String| {
        let h = &h;
        let key = &key;
        let p = &p;
        async move {
            h.call("GET", &format!("{p}?{q}"), Some(key), None)
                .await
                .assert_status(200)
        }
    };
    let enc = |t: DateTime<Utc>| t.to_rfc3339().replace('+', "%2B");
    let presence = get("eventType=presence:changed".into()).await;
    assert_eq!(
        ids(&presence),
        [made[4].clone(), made[2].clone(), made[0].clone()]
    );
    let window = get(format!(
        "since={}&until={}",
        enc(t0 + Duration::minutes(10)),
        enc(t0 + Duration::minutes(40))
    ))
    .await;
    assert_eq!(
        ids(&window),
        [made[3].clone(), made[2].clone(), made[1].clone()],
        "[since, until)"
    );
    let combined = get(format!(
        "status=failed&eventType=telephony:created&since={}&limit=1",
        enc(t0)
    ))
    .await;
    assert_eq!(ids(&combined), [made[5].clone()]);
    let cursor = combined["nextCursor"].as_str().unwrap().to_owned();
    let next = get(format!(
        "status=failed&eventType=telephony:created&since={}&limit=1&cursor={cursor}",
        enc(t0)
    ))
    .await;
    assert_eq!(ids(&next), [made[3].clone()]);
    assert!(next["nextCursor"].is_null());
    // Bad values: 422 naming the parameter.
    for (q, field) in [
        ("eventType=nope", "eventType"),
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        (
            "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
            "until",
        ),
        ("status=skipped", "status"),
    ] {
        let e = h
            .call("GET", &format!("{p}?{q}"), Some(&key), None)
            .await
            .assert_error(422, "validation_failed");
        assert_eq!(e["field"], field, "{q}: {e}");
    }
    // Another owner's webhook.
    let (key2, _) = webhook(&h, &org).await;
    h.call("GET", &p, Some(&key2), None)
        .await
        .assert_error(404, "not_found");
}

async fn resend_queues_a_new_run_of_one_event(b: Backend) {
    let Some(h) = h_with(b, |_| {}).await else {
        return;
    };
    let org = unique("org");
    let (key, sid) = webhook(&h, &org).await;
    let now = h.clock.now();
    let event = logged(
        &h,
        &org,
        EventType::PresenceChanged,
        now - Duration::hours(1),
    )
    .await;
    let p = format!("{HOOKS}/{sid}/events/{}/resend", event.id);
    let r = h
        .call("POST", &p, Some(&key), None)
        .await
        .assert_status(202);
    let jobs = h.drain_queue().await;
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(
        r,
        json!({"eventId": event.id.to_string(), "webhookId": sid.to_string(),
               "deliveryId": job.delivery_id(), "run": job.run})
    );
    assert_eq!(
        (job.event_id, job.subscription_id, job.body.as_str()),
        (event.id, sid, event.body.as_str())
    );
    assert!(!job.run.is_empty() && job.attempts.is_empty());
    assert!(job.not_before.is_some(), "in a delivery slot of its own");
    // A second resend is another run of the same delivery.
    let r2 = h
        .call("POST", &p, Some(&key), None)
        .await
        .assert_status(202);
    assert_eq!(r2["deliveryId"], r["deliveryId"]);
    assert_ne!(r2["run"], r["run"]);
    h.drain_queue().await;
    // Not found: an event not in the log, another org's event, another owner's webhook.
    let missing = EventId::new_at(now.timestamp_millis() as u64);
    h.call(
        "POST",
        &format!("{HOOKS}/{sid}/events/{missing}/resend"),
        Some(&key),
        None,
    )
    .await
    .assert_error(404, "not_found");
    h.call(
        "POST",
        &format!("{HOOKS}/{sid}/events/evt_nope/resend"),
        Some(&key),
        None,
    )
    .await
    .assert_error(404, "not_found");
    let foreign = logged(&h, &unique("org"), EventType::PresenceChanged, now).await;
    h.call(
        "POST",
        &format!("{HOOKS}/{sid}/events/{}/resend", foreign.id),
        Some(&key),
        None,
    )
    .await
    .assert_error(404, "not_found");
    let (key2, _) = webhook(&h, &org).await;
    h.call("POST", &p, Some(&key2), None)
        .await
        .assert_error(404, "not_found");
    // A type the webhook does not subscribe to.
    let other_type = logged(&h, &org, EventType::TelephonyDeleted, now).await;
    let e = h
        .call(
            "POST",
            &format!("{HOOKS}/{sid}/events/{}/resend", other_type.id),
            Some(&key),
            None,
        )
        .await
        .assert_error(422, "validation_failed");
    assert_eq!(e["field"], "eventId");
    // A disabled webhook.
    h.call(
        "PATCH",
        &format!("{HOOKS}/{sid}"),
        Some(&key),
        Some(json!({"enabled": false})),
    )
    .await
    .assert_status(200);
    h.call("POST", &p, Some(&key), None)
        .await
        .assert_error(409, "webhook_disabled");
    assert!(h.drain_queue().await.iter().all(|j| j.event_id != event.id));
}

async fn resend_has_a_quota_and_is_idempotent(b: Backend) {
    let Some(h) = h_with(b, |c| {
        c.quotas.test_per_webhook = 2;
    })
    .await
    else {
        return;
    };
    let org = unique("org");
    let (key, sid) = webhook(&h, &org).await;
    let event = logged(&h, &org, EventType::PresenceChanged, h.clock.now()).await;
    let p = format!("{HOOKS}/{sid}/events/{}/resend", event.id);
    let idem = [("idempotency-key", "resend-1")];
    let first = h
        .call_with("POST", &p, Some(&key), None, &idem)
        .await
        .assert_status(202);
    let again = h.call_with("POST", &p, Some(&key), None, &idem).await;
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.assert_status(202), first, "the same answer");
    assert_eq!(h.drain_queue().await.len(), 1, "and nothing queued again");
    h.call("POST", &p, Some(&key), None)
        .await
        .assert_status(202);
    let r = h.call("POST", &p, Some(&key), None).await;
    r.assert_error(429, "rate_limited");
    assert!(r.headers.contains_key("retry-after"));
    h.clock.advance(Duration::minutes(1));
    h.call("POST", &p, Some(&key), None)
        .await
        .assert_status(202);
}

async fn the_event_log_is_paged_newest_first_and_filtered(b: Backend) {
    let Some(h) = h_with(b, |_| {}).await else {
        return;
    };
    let org = unique("org");
    let key = h.key(&unique("user"), &org, Role::User).await;
    let t0 = h.clock.now() - Duration::hours(3);
    let mut made = Vec::new();
    for i in 0..5i64 {
        let t = if i == 2 {
            EventType::TelephonyCreated
        } else {
            EventType::PresenceChanged
        };
        made.push(logged(&h, &org, t, t0 + Duration::minutes(30 * i)).await);
    }
    logged(&h, &unique("other-org"), EventType::PresenceChanged, t0).await;
    let get = |q: &str| {
        let (h, key) = (&h, &key);
        let q = q.to_owned();
        async move {
            h.call("GET", &format!("/api/hooks/events?{q}"), Some(key), None)
                .await
                .assert_status(200)
        }
    };
    let id = |i: usize| made[i].id.to_string();
    let all = get("").await;
    assert_eq!(
        ids(&all),
        [id(4), id(3), id(2), id(1), id(0)],
        "newest first, org only"
    );
    let first = &all["data"][4];
    assert_eq!(first["eventType"], "presence:changed");
    assert_eq!(
        first["createdAt"],
        webhooks_api::model::time(made[0].created_at)
    );
    assert_eq!(
        first["payload"],
        serde_json::from_str::<Value>(&made[0].body).unwrap(),
        "the body as JSON"
    );
    // Paged.
    let p1 = get("limit=2").await;
    assert_eq!(ids(&p1), [id(4), id(3)]);
    let c = p1["nextCursor"].as_str().unwrap().to_owned();
    let p2 = get(&format!("limit=2&cursor={c}")).await;
    assert_eq!(ids(&p2), [id(2), id(1)]);
    let c = p2["nextCursor"].as_str().unwrap().to_owned();
    let p3 = get(&format!("limit=2&cursor={c}")).await;
    assert_eq!(ids(&p3), [id(0)]);
    assert!(p3["nextCursor"].is_null());
    // Filtered.
    assert_eq!(ids(&get("eventType=telephony:created").await), [id(2)]);
    let enc = |t: DateTime<Utc>| t.to_rfc3339().replace('+', "%2B");
    let window = get(&format!(
        "since={}&until={}&eventType=presence:changed",
        enc(t0 + Duration::minutes(30)),
        enc(t0 + Duration::minutes(120))
    ))
    .await;
    assert_eq!(ids(&window), [id(3), id(1)]);
    // Bad values.
    for (q, field) in [
        ("eventType=bogus", "eventType"),
        ("since=nope", "since"),
        ("until=2026-01-01", "until"),
        ("limit=0", "limit"),
        ("limit=251", "limit"),
        ("cursor=!!!", "cursor"),
        // Types the log never holds (sent once, never logged): nothing to read the log for.
        ("eventType=webhook:test", "eventType"),
        ("eventType=webhook:failing", "eventType"),
        ("eventType=delivery:dead-lettered", "eventType"),
    ] {
        let e = h
            .call("GET", &format!("/api/hooks/events?{q}"), Some(&key), None)
            .await
            .assert_error(422, "validation_failed");
        assert_eq!(e["field"], field, "{q}: {e}");
    }
    // A cursor kept while the window changed: the same answer on every backend.
    let c = p1["nextCursor"].as_str().unwrap();
    let e = h
        .call(
            "GET",
            &format!(
                "/api/hooks/events?since={}&until={}&cursor={c}",
                enc(t0 - Duration::days(10)),
                enc(t0 - Duration::days(9))
            ),
            Some(&key),
            None,
        )
        .await
        .assert_error(422, "validation_failed");
    assert_eq!(e["field"], "cursor", "{e}");
    h.call("GET", "/api/hooks/events", None, None)
        .await
        .assert_error(401, "unauthorized");
}

async fn the_dead_letter_depth_is_for_admins(b: Backend) {
    let Some(h) = h_with(b, |_| {}).await else {
        return;
    };
    let org = unique("org");
    let admin = h.key(&unique("admin"), &org, Role::Admin).await;
    let user = h.key(&unique("user"), &org, Role::User).await;
    let r = h
        .call("GET", "/api/hooks/dlq", Some(&admin), None)
        .await
        .assert_status(200);
    assert_eq!(r, json!({"approximateMessages": 0}));
    for body in ["one", "two"] {
        h.dead_letter_sink.park(body).await.unwrap();
    }
    let r = h
        .call("GET", "/api/hooks/dlq", Some(&admin), None)
        .await
        .assert_status(200);
    assert_eq!(r, json!({"approximateMessages": 2}));
    h.call("GET", "/api/hooks/dlq", Some(&user), None)
        .await
        .assert_error(403, "forbidden");
}
