//! The ingest scenario set, run in-process through the `axum::Router`:
//! - `memory::*` on the in-memory adapters (always);
//! - `aws::*` on the DynamoDB/SQS adapters when `AWS_ENDPOINT_URL_DYNAMODB` and
//!   `AWS_ENDPOINT_URL_SQS` are set (fresh table and queues per test); skipped with a printed
//!   reason otherwise, unless `RELAY_REQUIRE_AWS=1`, which makes a missing endpoint a failure.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;
use tower::ServiceExt;

use relay_shared::adapters::aws::secrets::parse_webhook_secrets;
use relay_shared::call_state::CallRecord;
use relay_shared::clock::ManualClock;
use relay_shared::delivery::DeliveryJob;
use relay_shared::events::{rfc3339_millis, EventType};
use relay_shared::ids::{EventId, SubscriptionId};
use relay_shared::ports::{CorePorts, DeliveryQueue, EventQuery, QueueConsumer, Stores};
use relay_shared::webex::{
    parse_json, redate_captured, webex_signature, SecretRole, TelephonyEnvelope, WebhookSecrets,
};
use telephony_ingest::config::SecretSource;
use telephony_ingest::envelope::{dedupe_key, event_millis};
use telephony_ingest::{router, Ingest, IngestConfig, WebhookAuth};
use testkit::FlakyQueue;

const SECRET: &str = "local-webex-secret";
const SEED_UPDATED: &str = include_str!("../../../../tests/fixtures/seed001/updated.json");
const SEED_CREATED: &str = include_str!("../../../../tests/fixtures/seed001/created.json");
const SEED_DELETED: &str = include_str!("../../../../tests/fixtures/seed001/deleted.json");
const SEED_ORG: &str =
    "Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi8xNzExMTdkNi04YjgyLTQ0Y2EtOThlOS1hYzExNTdmMmNkMWQ";
const SEED_CALL: &str = "Y2lzY29zcGFyazovL3VzL0NBTEwvY2FsbGhhbGYtOTgyNzEzMjM3MDow";

/// The Webex envelope of a captured telephony webhook fixture (its `items`), as the compact bytes
/// Webex would POST, its call times moved to the present (`redate_captured`: the ingest relays only
/// events inside its dedupe window).
fn envelope(fixture: &str) -> String {
    let mut v: Value = serde_json::from_str(fixture).unwrap();
    redate_captured(&mut v["items"]);
    serde_json::to_string(&v["items"]).unwrap()
}

fn with(fixture: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(&envelope(fixture)).unwrap();
    edit(&mut v);
    serde_json::to_string(&v).unwrap()
}

/// A leg event of `call` (the seed's `created`, edited): `stage` (`created`, `updated`,
/// `deleted`) with Webex's `event_type`, `t` seconds after `start`; created at `start`, answered
/// 5 s in once `t >= 5`, disconnected at `t` when deleted; `edit` sets the rest.
fn leg_event(
    start: DateTime<Utc>,
    call: &str,
    stage: &str,
    event_type: &str,
    t: i64,
    edit: impl FnOnce(&mut Value),
) -> String {
    let at = |s: i64| rfc3339_millis(start + chrono::Duration::seconds(s));
    with(SEED_CREATED, |v| {
        let d = &mut v["data"];
        d["callId"] = call.into();
        d["eventType"] = event_type.into();
        d["eventTimestamp"] = at(t).into();
        d["created"] = at(0).into();
        if t >= 5 {
            d["answered"] = at(5).into();
        }
        if stage == "deleted" {
            d["disconnected"] = at(t).into();
        }
        v["event"] = stage.into();
        edit(v);
    })
}

struct Harness {
    router: Router,
    stores: Stores,
    queue: Arc<FlakyQueue<dyn DeliveryQueue>>,
    consumer: Arc<dyn QueueConsumer>,
    now: DateTime<Utc>,
    /// The ingest's clock (starts at `now`): moved on to age the subscriptions cache.
    clock: Arc<ManualClock>,
    aws: bool,
    /// The EMF lines the ingest emitted.
    metrics: Arc<std::sync::Mutex<Vec<String>>>,
}

struct Reply {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
}

impl Harness {
    fn build(
        stores: Stores,
        queue: Arc<dyn DeliveryQueue>,
        consumer: Arc<dyn QueueConsumer>,
        aws: bool,
    ) -> Self {
        let config = IngestConfig::new(WebhookAuth::secret(SECRET));
        Self::build_with(stores, queue, consumer, aws, config)
    }

    fn build_with(
        stores: Stores,
        queue: Arc<dyn DeliveryQueue>,
        consumer: Arc<dyn QueueConsumer>,
        aws: bool,
        config: IngestConfig,
    ) -> Self {
        // The real time (ms precision), so AWS readers that check `expires_at` against the wall
        // clock agree with the records written.
        let now = Utc::now().trunc_subsecs(3);
        let queue = Arc::new(FlakyQueue::new(queue, 0));
        let clock = Arc::new(ManualClock::new(now));
        let ingest = Ingest::new(
            CorePorts {
                stores: stores.clone(),
                queue: queue.clone(),
                clock: clock.clone(),
            },
            config,
        );
        let metrics = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = metrics.clone();
        let ingest = ingest.with_metrics(Arc::new(move |line| sink.lock().unwrap().push(line)));
        Self {
            router: router(Arc::new(ingest)),
            stores,
            queue,
            consumer,
            now,
            clock,
            aws,
            metrics,
        }
    }

    fn memory() -> Self {
        Self::memory_with(WebhookAuth::secret(SECRET))
    }

    fn memory_with(auth: WebhookAuth) -> Self {
        Self::memory_with_config(IngestConfig::new(auth))
    }

    fn memory_with_config(config: IngestConfig) -> Self {
        let q = Arc::new(relay_shared::adapters::memory::MemoryQueue::new(
            std::time::Duration::from_secs(30),
        ));
        Self::build_with(
            relay_shared::adapters::memory::memory_stores(),
            q.clone(),
            q,
            false,
            config,
        )
    }

    async fn send(&self, req: Request<Body>) -> Reply {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Reply {
            status,
            retry_after,
            body,
        }
    }

    /// POSTs `body` signed with the test secret.
    async fn post(&self, body: &str) -> Reply {
        self.send(signed(body, "x-spark-signature", SECRET)).await
    }

    async fn subscribe(&self, org: &str, types: &[EventType]) -> SubscriptionId {
        let s = testkit::fixtures::subscription(org, types);
        self.stores.subscriptions.create(&s, 1000).await.unwrap();
        s.id
    }

    /// `SUBSCRIPTIONS_CACHE_SECONDS` as every harness has it (the default).
    fn subscriptions_cache_ttl(&self) -> chrono::Duration {
        IngestConfig::new(WebhookAuth::secret(SECRET)).subscriptions_cache_ttl
    }

    /// The seed call's stored state (it must be there).
    async fn seed_call(&self) -> CallRecord {
        let call = self.stores.calls.get(SEED_CALL).await.unwrap();
        call.expect("the seed call is stored")
    }

    /// The seed org's logged events around now (on `createdAt`, the ingest time; the event ids'
    /// time part, the Webex event time, is within the window too).
    async fn logged(&self) -> Vec<relay_shared::events::OutboundEvent> {
        let day = chrono::Duration::days(1);
        let query = EventQuery::new(self.now - day, self.now + day, 10);
        self.stores.events.list(SEED_ORG, query).await.unwrap()
    }

    /// The EMF lines emitted so far that carry `metric`.
    fn metric_lines(&self, metric: &str) -> Vec<String> {
        let lines = self.metrics.lock().unwrap();
        lines
            .iter()
            .filter(|l| serde_json::from_str::<Value>(l).is_ok_and(|d| d.get(metric).is_some()))
            .cloned()
            .collect()
    }

    /// Everything queued so far (acknowledged, so the next call sees only new jobs).
    async fn drain(&self) -> Vec<DeliveryJob> {
        let mut out = Vec::new();
        let wait = if self.aws { 1 } else { 0 };
        loop {
            let got = self.consumer.receive(10, wait).await.unwrap();
            if got.is_empty() {
                break;
            }
            for m in got {
                out.push(serde_json::from_str(&m.body).unwrap());
                self.consumer.ack(&m.receipt).await.unwrap();
            }
        }
        out
    }
}

fn signed(body: &str, header: &str, secret: &str) -> Request<Body> {
    Request::post("/webex/telephony")
        .header("content-type", "application/json")
        .header(header, webex_signature(secret.as_bytes(), body.as_bytes()))
        .body(Body::from(body.to_owned()))
        .unwrap()
}

const TELEPHONY: [EventType; 3] = [
    EventType::TelephonyCreated,
    EventType::TelephonyUpdated,
    EventType::TelephonyDeleted,
];

fn expected_body(fixture: &str, now: DateTime<Utc>) -> String {
    body_of(&envelope(fixture), now)
}

/// The delivered body of the envelope `items`.
fn body_of(items: &str, now: DateTime<Utc>) -> String {
    format!(
        r#"{{"Payload":"telephony","timestamp":"{}","items":{items},"orgId":"{SEED_ORG}"}}"#,
        rfc3339_millis(now),
    )
}

fn expected_event_id(fixture: &str) -> EventId {
    let env: TelephonyEnvelope = parse_json(envelope(fixture).as_bytes()).unwrap();
    EventId::derived(event_millis(&env.data), dedupe_key(&env.data).as_bytes())
}

// ---------------------------------------------------------------------------------------------
// Scenarios (each runs on every backend).

/// The captured Webex telephony webhook, in captured order (updated, created, deleted): three
/// deliveries per matching subscription, `items` byte-identical to what Webex sent, call state
/// latest = deleted.
async fn seed_sequence(h: Harness) {
    let a = h.subscribe(SEED_ORG, &TELEPHONY).await;
    let b = h.subscribe(SEED_ORG, &TELEPHONY).await;
    h.subscribe(SEED_ORG, &[EventType::PresenceChanged]).await;
    h.subscribe("another-org", &TELEPHONY).await;

    for (fixture, event_type) in [
        (SEED_UPDATED, EventType::TelephonyUpdated),
        (SEED_CREATED, EventType::TelephonyCreated),
        (SEED_DELETED, EventType::TelephonyDeleted),
    ] {
        let r = h.post(&envelope(fixture)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["status"], "queued");
        assert_eq!(r.body["deliveries"], 2);
        assert_eq!(r.body["eventId"], expected_event_id(fixture).to_string());
        let mut jobs = h.drain().await;
        jobs.sort_by_key(|j| j.subscription_id);
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(
            jobs.iter().map(|j| j.subscription_id).collect::<Vec<_>>(),
            want
        );
        for j in &jobs {
            assert_eq!(j.event_type, event_type);
            assert_eq!(j.org_id, SEED_ORG);
            assert_eq!(j.event_id, expected_event_id(fixture));
            assert_eq!(
                j.body,
                expected_body(fixture, h.now),
                "delivered body must carry the envelope byte for byte"
            );
            assert!(j.attempts.is_empty());
        }
    }

    let call = h
        .stores
        .calls
        .get(SEED_CALL)
        .await
        .unwrap()
        .expect("call state recorded");
    assert_eq!(call.latest.stage, "deleted");
    assert_eq!(call.latest.state.as_deref(), Some("disconnected"));
    assert_eq!(call.stages(), vec!["created", "updated", "deleted"]);
    assert_eq!(call.history.len(), 3);
    assert_eq!(call.org_id, SEED_ORG);

    let logged = h.logged().await;
    let logged_ids: Vec<EventId> = logged.iter().map(|e| e.id).collect();
    for f in [SEED_UPDATED, SEED_CREATED, SEED_DELETED] {
        assert!(
            logged_ids.contains(&expected_event_id(f)),
            "event log misses {}",
            expected_event_id(f)
        );
    }
}

/// The same event twice (a Webex redelivery): answered `duplicate` from the call state, and
/// queued again under the same event id, so each copy has the same delivery id and attempt claim
/// as the first (the worker's claim collapses them into one POST); the call state is written once.
async fn duplicate(h: Harness) {
    h.subscribe(SEED_ORG, &TELEPHONY).await;
    let body = envelope(SEED_CREATED);
    let r = h.post(&body).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "queued");
    let first = h.drain().await;
    assert_eq!(first.len(), 1);
    let version = h.seed_call().await.version;
    let r = h.post(&body).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "duplicate", "{}", r.body);
    assert_eq!(r.body["deliveries"], 1, "{}", r.body);
    assert_eq!(
        r.body["eventId"],
        expected_event_id(SEED_CREATED).to_string()
    );
    let again = h.drain().await;
    assert_eq!(again.len(), 1, "a duplicate is queued again");
    assert_eq!(again[0].delivery_id(), first[0].delivery_id());
    assert_eq!(again[0].attempt_claim_key(), first[0].attempt_claim_key());
    // A second Webex registration (other top-level id) delivering the same call event is a duplicate too.
    let r = h
        .post(&with(SEED_CREATED, |v| {
            v["id"] = "another-registration".into()
        }))
        .await;
    assert_eq!(r.body["status"], "duplicate");
    let again = h.drain().await;
    assert_eq!(again[0].attempt_claim_key(), first[0].attempt_claim_key());
    assert_eq!(h.seed_call().await.version, version, "recorded once");
    assert_eq!(h.logged().await.len(), 1, "logged once");
}

/// Two copies of one event at the same time (nothing holds a lease any more): both answered 200
/// (one `queued`, the other `duplicate` once its call-state write lost the race and re-read), both
/// queued under the same attempt claim; the call state holds the event once.
async fn concurrent_copies(h: Harness) {
    h.subscribe(SEED_ORG, &TELEPHONY).await;
    let body = envelope(SEED_UPDATED);
    let (a, b) = tokio::join!(h.post(&body), h.post(&body));
    let mut statuses = vec![
        a.body["status"].as_str().unwrap().to_owned(),
        b.body["status"].as_str().unwrap().to_owned(),
    ];
    statuses.sort();
    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
    assert_eq!(statuses, ["duplicate", "queued"]);
    let jobs = h.drain().await;
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0].attempt_claim_key(), jobs[1].attempt_claim_key());
    let call = h.seed_call().await;
    assert_eq!(call.history.len(), 1);
    assert_eq!(call.version, 1);
}

/// The org's subscriptions cache (`SUBSCRIPTIONS_CACHE_SECONDS`, default 5 s), on the ingest's
/// clock: a webhook created, or one disabled, after an event of its org reaches the fan-out once
/// the entry is as old as the bound, not before; a disabled one's job is still queued meanwhile
/// (the worker, reading the subscription fresh, skips it). Another org has an entry of its own.
async fn subscriptions_cache_staleness(h: Harness) {
    let bound = IngestConfig::new(WebhookAuth::secret(SECRET)).subscriptions_cache_ttl;
    assert_eq!(bound, chrono::Duration::seconds(5));
    let old = h.subscribe(SEED_ORG, &TELEPHONY).await;
    let r = h.post(&envelope(SEED_UPDATED)).await;
    assert_eq!(r.body["deliveries"], 1, "{}", r.body);
    h.drain().await;

    let new = h.subscribe(SEED_ORG, &TELEPHONY).await;
    let mut off = h.stores.subscriptions.get(&old).await.unwrap().unwrap();
    off.enabled = false;
    off.version += 1;
    h.stores.subscriptions.update(&off).await.unwrap();
    // Just inside the bound: the cached list (the disabled one still gets its job, the new none).
    h.clock.advance(bound - chrono::Duration::milliseconds(1));
    let r = h.post(&envelope(SEED_CREATED)).await;
    assert_eq!(r.body["deliveries"], 1, "{}", r.body);
    let jobs = h.drain().await;
    assert_eq!(jobs[0].subscription_id, old);
    // At the bound: read again.
    h.clock.advance(chrono::Duration::milliseconds(1));
    let r = h.post(&envelope(SEED_DELETED)).await;
    assert_eq!(r.body["deliveries"], 1, "{}", r.body);
    let jobs = h.drain().await;
    assert_eq!(jobs[0].subscription_id, new);

    // Another org: its own entry, read at its first event.
    let other = h.subscribe("another-org", &TELEPHONY).await;
    let r = h
        .post(&with(SEED_CREATED, |v| v["orgId"] = "another-org".into()))
        .await;
    assert_eq!(r.body["deliveries"], 1, "{}", r.body);
    assert_eq!(h.drain().await[0].subscription_id, other);
}

/// Two different events of one type in the same millisecond are two events (the dedupe key hashes
/// `data`); each one's exact redelivery is still a duplicate.
async fn distinct_data_same_millisecond(h: Harness) {
    h.subscribe(SEED_ORG, &TELEPHONY).await;
    let first = envelope(SEED_UPDATED);
    let second = with(SEED_UPDATED, |v| v["data"]["muted"] = true.into());
    let mut ids = Vec::new();
    for body in [&first, &second] {
        let r = h.post(body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["status"], "queued", "{}", r.body);
        ids.push(r.body["eventId"].clone());
        assert_eq!(h.drain().await.len(), 1);
    }
    assert_ne!(ids[0], ids[1], "two events, two ids");
    for (body, id) in [&first, &second].into_iter().zip(&ids) {
        let r = h.post(body).await;
        assert_eq!(r.body["status"], "duplicate");
        assert_eq!(&r.body["eventId"], id, "re-queued under its own id");
    }
    assert_eq!(h.drain().await.len(), 2);
}

async fn bad_signatures(h: Harness) {
    h.subscribe(SEED_ORG, &TELEPHONY).await;
    let body = envelope(SEED_CREATED);
    // Wrong secret.
    let r = h
        .send(signed(&body, "x-spark-signature", "not-the-secret"))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"], "invalid_signature");
    // Missing.
    let req = Request::post("/webex/telephony")
        .body(Body::from(body.clone()))
        .unwrap();
    let r = h.send(req).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body["detail"].as_str().unwrap().contains("missing"));
    // Signed, then one byte changed.
    let mut req = signed(&body, "x-spark-signature", SECRET);
    *req.body_mut() = Body::from(body.replacen("alerting", "alertinG", 1));
    assert_eq!(h.send(req).await.status, StatusCode::UNAUTHORIZED);
    // Garbage signature.
    let req = Request::post("/webex/telephony")
        .header("x-spark-signature", "zz")
        .body(Body::from(body.clone()))
        .unwrap();
    assert_eq!(h.send(req).await.status, StatusCode::UNAUTHORIZED);
    assert!(h.drain().await.is_empty());
    assert!(
        h.stores.calls.get(SEED_CALL).await.unwrap().is_none(),
        "nothing recorded for an unauthenticated request"
    );
    // The X-Webex-Signature fallback is accepted.
    let r = h.send(signed(&body, "x-webex-signature", SECRET)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(h.drain().await.len(), 1);
}

async fn oversize(h: Harness) {
    let big = format!(
        r#"{{"resource":"telephony_calls","pad":"{}"}}"#,
        "x".repeat(256 * 1024)
    );
    let r = h.post(&big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Without a Content-Length (a streamed body) too.
    let stream = futures_util_stream(big.clone());
    let req = Request::post("/webex/telephony")
        .header("x-spark-signature", "00")
        .body(stream)
        .unwrap();
    assert_eq!(h.send(req).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Exactly at the limit is not "too large" (it fails later, on the signature).
    let at_limit = "x".repeat(256 * 1024);
    let req = Request::post("/webex/telephony")
        .header("x-spark-signature", "00")
        .body(Body::from(at_limit))
        .unwrap();
    assert_eq!(h.send(req).await.status, StatusCode::UNAUTHORIZED);
}

fn futures_util_stream(s: String) -> Body {
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = s
        .into_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    Body::from_stream(futures::stream::iter(chunks))
}

async fn malformed(h: Harness) {
    h.subscribe(SEED_ORG, &TELEPHONY).await;
    let r = h.post("{\"resource\": \"telephony_calls\", ").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "invalid_json");
    assert!(
        r.body["detail"].as_str().unwrap().contains("line 1"),
        "{}",
        r.body
    );

    let no_call_id = with(SEED_CREATED, |v| {
        v["data"].as_object_mut().unwrap().remove("callId");
    });
    let r = h.post(&no_call_id).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "invalid_payload");
    assert_eq!(r.body["detail"], "missing field `$.data.callId`");

    for (field, want) in [
        ("resource", "$.resource"),
        ("event", "$.event"),
        ("orgId", "$.orgId"),
        ("data", "$.data"),
    ] {
        let b = with(SEED_CREATED, |v| {
            v.as_object_mut().unwrap().remove(field);
        });
        let r = h.post(&b).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "without {field}");
        assert!(
            r.body["detail"].as_str().unwrap().contains(want),
            "without {field}: {}",
            r.body
        );
    }
    let wrong_type = with(SEED_CREATED, |v| v["data"]["eventTimestamp"] = 5.into());
    let r = h.post(&wrong_type).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("$.data.eventTimestamp"),
        "{}",
        r.body
    );
    assert!(h.drain().await.is_empty());
}

async fn other_resource(h: Harness) {
    h.subscribe(SEED_ORG, &TELEPHONY).await;
    let body = with(SEED_CREATED, |v| v["resource"] = "messages".into());
    let r = h.post(&body).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.body["status"], "ignored");
    assert!(r.body["note"].as_str().unwrap().contains("messages"));
    assert!(h.drain().await.is_empty());
    assert!(h.stores.calls.get(SEED_CALL).await.unwrap().is_none());
}

/// A queue failure answers 503; Webex's retry then succeeds, same event id. The call state was
/// written by the first try, so the retry is answered `duplicate` (and queues the jobs).
async fn queue_failure_then_retry(h: Harness) {
    h.subscribe(SEED_ORG, &TELEPHONY).await;
    h.subscribe(SEED_ORG, &TELEPHONY).await;
    let body = envelope(SEED_UPDATED);
    h.queue.set_down(true);
    let r = h.post(&body).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.retry_after.as_deref(), Some("5"));
    assert_eq!(r.body["error"], "unavailable");
    assert!(h.drain().await.is_empty());

    h.queue.set_down(false);
    let r = h.post(&body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // One EMF line per answer: the 503 counted as a server error, the retry as a relayed event
    // (a duplicate queues its jobs too).
    let counts: Vec<(Value, Value, Value, Value)> = h
        .metric_lines(telephony_ingest::ingest::REQUESTS_METRIC)
        .iter()
        .map(|l| {
            let d: Value = serde_json::from_str(l).unwrap();
            let m = |k: &str| d[k].clone();
            (
                m("IngestRequests"),
                m("IngestEvents"),
                m("IngestServerError"),
                m("outcome"),
            )
        })
        .collect();
    assert_eq!(
        counts,
        vec![
            (1.into(), 0.into(), 1.into(), "unavailable".into()),
            (1.into(), 1.into(), 0.into(), "duplicate".into()),
        ]
    );
    assert_eq!(r.body["status"], "duplicate");
    assert_eq!(r.body["deliveries"], 2);
    assert_eq!(
        r.body["eventId"],
        expected_event_id(SEED_UPDATED).to_string()
    );
    let jobs = h.drain().await;
    assert_eq!(jobs.len(), 2);
    assert!(jobs
        .iter()
        .all(|j| j.event_id == expected_event_id(SEED_UPDATED)));
    // The call state was written once, not twice.
    assert_eq!(h.seed_call().await.history.len(), 1);
    assert_eq!(h.post(&body).await.body["status"], "duplicate");
}

async fn fan_out(h: Harness, n: usize) {
    for _ in 0..n {
        h.subscribe(SEED_ORG, &TELEPHONY).await;
    }
    let r = h.post(&envelope(SEED_CREATED)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["deliveries"], n);
    let jobs = h.drain().await;
    assert_eq!(jobs.len(), n);
    let mut ids: Vec<_> = jobs.iter().map(|j| j.subscription_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "one job per subscription");
    assert_eq!(h.queue.calls(), usize::from(n > 0));
    // The call state is recorded whether or not anyone listens.
    assert!(h.stores.calls.get(SEED_CALL).await.unwrap().is_some());
}

async fn fan_out_0(h: Harness) {
    fan_out(h, 0).await
}
async fn fan_out_1(h: Harness) {
    fan_out(h, 1).await
}
async fn fan_out_25(h: Harness) {
    fan_out(h, 25).await
}

/// Subscriptions of another org, disabled ones, or ones for other event types get nothing.
async fn filtering(h: Harness) {
    h.subscribe("another-org", &TELEPHONY).await;
    h.subscribe(SEED_ORG, &[EventType::PresenceChanged]).await;
    h.subscribe(SEED_ORG, &[EventType::TelephonyDeleted]).await;
    let mut off = testkit::fixtures::subscription(SEED_ORG, &TELEPHONY);
    off.enabled = false;
    h.stores.subscriptions.create(&off, 1000).await.unwrap();
    let only_created = h.subscribe(SEED_ORG, &[EventType::TelephonyCreated]).await;

    let r = h.post(&envelope(SEED_CREATED)).await;
    assert_eq!(r.body["deliveries"], 1);
    let jobs = h.drain().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].subscription_id, only_created);
    let r = h.post(&envelope(SEED_UPDATED)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["deliveries"], 0);
    assert!(h.drain().await.is_empty());
    let r = h.post(&envelope(SEED_DELETED)).await;
    assert_eq!(r.body["deliveries"], 1);
    assert_eq!(h.drain().await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Backends.

/// Freshness (docs/telephony-ingest.md): a validly signed event dated outside `[now - dedupe TTL,
/// now + 5 min]` (a capture re-sent once its dedupe record expired, or one dated ahead) is answered
/// 200 `stale`, with a metric line, and nothing is stored or queued; inside the window it is relayed.
async fn stale_events(h: Harness) {
    h.subscribe(SEED_ORG, &TELEPHONY).await;
    let ttl = IngestConfig::new(WebhookAuth::secret(SECRET)).dedupe_ttl;
    let dated = |at: DateTime<Utc>, call: &str| {
        with(SEED_CREATED, |v| {
            v["data"]["eventTimestamp"] = rfc3339_millis(at).into();
            v["data"]["callId"] = call.into();
        })
    };
    let old_2001 = DateTime::parse_from_rfc3339("2001-09-09T01:46:40.000Z")
        .unwrap()
        .to_utc();
    for (at, reason) in [
        (old_2001, "older_than_dedupe_window"),
        (
            h.now - ttl - chrono::Duration::minutes(1),
            "older_than_dedupe_window",
        ),
        (h.now + chrono::Duration::minutes(6), "in_the_future"),
    ] {
        let r = h.post(&dated(at, "stale-call")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["status"], "stale", "{}", r.body);
        assert_eq!(r.body["reason"], reason, "{}", r.body);
    }
    assert!(h.drain().await.is_empty(), "a stale event is not relayed");
    assert!(h.stores.calls.get("stale-call").await.unwrap().is_none());
    let metrics = h.metric_lines(telephony_ingest::ingest::STALE_METRIC);
    assert_eq!(metrics.len(), 3, "{metrics:?}");
    for (line, reason) in metrics.iter().zip([
        "older_than_dedupe_window",
        "older_than_dedupe_window",
        "in_the_future",
    ]) {
        let doc: Value = serde_json::from_str(line).unwrap();
        assert_eq!(doc[telephony_ingest::ingest::STALE_METRIC], 1, "{line}");
        assert_eq!(doc["reason"], reason, "{line}");
    }

    // Just inside both edges: relayed.
    for (at, call) in [
        (h.now - ttl + chrono::Duration::minutes(1), "old-but-fresh"),
        (h.now + chrono::Duration::minutes(4), "slightly-ahead"),
    ] {
        let r = h.post(&dated(at, call)).await;
        assert_eq!(r.body["status"], "queued", "{}", r.body);
    }
    assert_eq!(h.drain().await.len(), 2);
}

/// An event within the body limit whose delivery job exceeds the queue's message limit (its body
/// is quoted once more inside the job) is kept in the event log and answered 200 `parked`, with a
/// metric line: not a 503 that Webex would retry forever. Webex's retry meets the same limit:
/// parked again (the event logged once).
async fn too_large_to_queue_is_parked(h: Harness) {
    h.subscribe(SEED_ORG, &TELEPHONY).await;
    let body = with(SEED_CREATED, |v| {
        v["data"]["note"] = "\"".repeat(100_000).into();
    });
    assert!(body.len() <= telephony_ingest::MAX_BODY_BYTES);
    let r = h.post(&body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "parked", "{}", r.body);
    assert_eq!(r.body["reason"], "too_large");
    assert!(h.drain().await.is_empty());
    let logged = h.logged().await;
    assert_eq!(logged.len(), 1, "the parked event is in the event log");
    assert_eq!(
        logged[0].id.to_string(),
        r.body["eventId"].as_str().unwrap()
    );
    let metrics = h.metric_lines(telephony_ingest::ingest::PARKED_METRIC);
    assert_eq!(metrics.len(), 1, "{metrics:?}");
    let doc: Value = serde_json::from_str(&metrics[0]).unwrap();
    assert_eq!(doc[telephony_ingest::ingest::PARKED_METRIC], 1);
    let again = h.post(&body).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["status"], "parked");
    assert_eq!(again.body["eventId"], r.body["eventId"]);
    assert_eq!(h.logged().await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Derived call events (docs/call-events.md).

/// The call event jobs among `jobs`, sorted by type name, with their parsed bodies.
fn call_jobs(jobs: &[DeliveryJob]) -> Vec<(EventType, Value, &DeliveryJob)> {
    let mut out: Vec<_> = jobs
        .iter()
        .filter(|j| j.event_type.is_call_event())
        .map(|j| (j.event_type, serde_json::from_str(&j.body).unwrap(), j))
        .collect();
    out.sort_by_key(|(t, _, _)| t.as_str());
    out
}

/// The captured call in captured order: a subscriber of the call events gets exactly one
/// `call:ringing` (with the first event) and one `call:ended`, outcome `answeredElsewhere`; the
/// raw events go only to the telephony subscriber, unchanged.
async fn call_events_of_the_captured_call(h: Harness) {
    let raw = h.subscribe(SEED_ORG, &TELEPHONY).await;
    let calls = h.subscribe(SEED_ORG, &EventType::CALL).await;
    let mut seen = Vec::new();
    for (fixture, want) in [
        (SEED_UPDATED, vec![EventType::CallRinging]),
        (SEED_CREATED, vec![]),
        (SEED_DELETED, vec![EventType::CallEnded]),
    ] {
        let r = h.post(&envelope(fixture)).await;
        assert_eq!(r.body["status"], "queued", "{}", r.body);
        assert_eq!(r.body["deliveries"], 1 + want.len(), "{}", r.body);
        if want.is_empty() {
            assert!(r.body.get("callEvents").is_none(), "{}", r.body);
        } else {
            assert_eq!(r.body["callEvents"], serde_json::json!(want), "{}", r.body);
        }
        let jobs = h.drain().await;
        let raw_jobs: Vec<_> = jobs
            .iter()
            .filter(|j| !j.event_type.is_call_event())
            .collect();
        assert_eq!(raw_jobs.len(), 1);
        assert_eq!(raw_jobs[0].subscription_id, raw);
        assert_eq!(raw_jobs[0].body, expected_body(fixture, h.now));
        let derived = call_jobs(&jobs);
        assert_eq!(derived.iter().map(|(t, _, _)| *t).collect::<Vec<_>>(), want);
        // Every job carries its place in the call: the raw event's Webex time in ms, a call
        // event's own sequence.
        let env: TelephonyEnvelope = parse_json(envelope(fixture).as_bytes()).unwrap();
        assert_eq!(raw_jobs[0].sequence, Some(event_millis(&env.data)));
        for (_, body, job) in derived {
            assert_eq!(job.subscription_id, calls);
            assert_eq!(job.sequence, body["sequence"].as_u64());
            seen.push(body);
        }
    }
    assert_eq!(seen[0]["type"], "call:ringing");
    assert_eq!(seen[0]["sequence"], 1);
    assert_eq!(seen[1]["type"], "call:ended");
    assert_eq!(seen[1]["sequence"], 2);
    assert_eq!(seen[1]["data"]["outcome"], "answeredElsewhere");
    assert_eq!(seen[1]["data"]["callId"], SEED_CALL);
    assert_eq!(seen[1]["data"]["ringSeconds"], 1.629);
    assert_eq!(seen[1]["data"]["talkSeconds"], 0);
    assert_eq!(seen[1]["data"]["redirections"][0]["reason"], "callQueue");
    // The record keeps the marks on the observations that caused them.
    let call = h.seed_call().await;
    assert_eq!(call.marks().count(), 2);
    assert_eq!(call.history.len(), 3);
    // Call events are not in the event log (no write of their own).
    assert_eq!(h.logged().await.len(), 3);
}

/// A queue failure after the call state (with its call events) was written: Webex's retry is an
/// event already recorded (`duplicate`), which writes nothing and re-queues the same call event
/// (same id, same body), so the worker's attempt claim keeps it to one delivery.
async fn call_events_survive_a_queue_failure(h: Harness) {
    h.subscribe(SEED_ORG, &EventType::CALL).await;
    let body = envelope(SEED_DELETED);
    h.queue.set_down(true);
    assert_eq!(h.post(&body).await.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(h.drain().await.is_empty());
    let stored = h.seed_call().await;
    assert_eq!(
        stored.marks().count(),
        2,
        "ringing + ended recorded with the state"
    );
    h.queue.set_down(false);
    let r = h.post(&body).await;
    assert_eq!(r.body["status"], "duplicate", "{}", r.body);
    assert_eq!(
        r.body["callEvents"],
        serde_json::json!(["call:ringing", "call:ended"])
    );
    let jobs = h.drain().await;
    let derived = call_jobs(&jobs);
    assert_eq!(
        derived.iter().map(|(t, _, _)| *t).collect::<Vec<_>>(),
        [EventType::CallEnded, EventType::CallRinging]
    );
    for (_, _, job) in &derived {
        let mark = stored.marks().find(|m| m.event == job.event_type).unwrap();
        assert_eq!(
            job.event_id,
            relay_shared::call_events::event_id(SEED_CALL, mark)
        );
    }
    assert_eq!(
        h.seed_call().await.version,
        stored.version,
        "the retry wrote nothing"
    );
    // The later events of the call add nothing (the call already rang and ended).
    for f in [SEED_CREATED, SEED_UPDATED] {
        let r = h.post(&envelope(f)).await;
        assert!(r.body.get("callEvents").is_none(), "{}", r.body);
    }
    assert!(call_jobs(&h.drain().await).is_empty());
    assert_eq!(h.post(&body).await.body["status"], "duplicate");
    assert_eq!(call_jobs(&h.drain().await).len(), 2, "re-queued, same ids");
}

/// A received → answered → held → resumed → disconnected leg, posted shuffled and with
/// duplicates: ringing, answered, held, resumed and ended once each, `talkSeconds` right.
async fn call_events_of_a_shuffled_leg(h: Harness) {
    h.subscribe(SEED_ORG, &EventType::CALL).await;
    let start = h.now - chrono::Duration::minutes(10);
    let at = |s: i64| rfc3339_millis(start + chrono::Duration::seconds(s));
    let leg_event = |stage: &str, event_type: &str, state: &str, t: i64| {
        leg_event(start, "shuffled-call", stage, event_type, t, |v| {
            v["data"]["state"] = state.into();
        })
    };
    let leg = [
        leg_event("created", "received", "alerting", 0),
        leg_event("updated", "answered", "connected", 5),
        leg_event("updated", "held", "held", 30),
        leg_event("updated", "resumed", "connected", 45),
        leg_event("deleted", "disconnected", "disconnected", 125),
    ];
    // Each call event once per event id (what the worker's attempt claim delivers): a
    // redelivery re-queues the call events its Webex event caused, with the same id and body.
    let mut derived: Vec<(EventType, Value)> = Vec::new();
    let mut by_id = std::collections::HashMap::new();
    for i in [3, 4, 3, 0, 2, 4, 1, 0, 2] {
        let r = h.post(&leg[i]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        for (t, b, job) in call_jobs(&h.drain().await) {
            match by_id.entry(job.event_id) {
                std::collections::hash_map::Entry::Occupied(first) => {
                    assert_eq!(first.get(), &job.body, "a re-queued copy is the same")
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(job.body.clone());
                    derived.push((t, b));
                }
            }
        }
    }
    let mut types: Vec<&str> = derived.iter().map(|(t, _)| t.as_str()).collect();
    types.sort();
    assert_eq!(
        types,
        [
            "call:answered",
            "call:ended",
            "call:held",
            "call:resumed",
            "call:ringing"
        ]
    );
    let mut seqs: Vec<u64> = derived
        .iter()
        .map(|(_, b)| b["sequence"].as_u64().unwrap())
        .collect();
    seqs.sort();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    let ended = &derived
        .iter()
        .find(|(t, _)| *t == EventType::CallEnded)
        .unwrap()
        .1;
    assert_eq!(ended["data"]["outcome"], "answered");
    assert_eq!(ended["data"]["talkSeconds"], 120);
    assert_eq!(ended["data"]["ringSeconds"], 5);
    assert_eq!(ended["data"]["answeredAt"], at(5));
}

/// Presence from calls (`PRESENCE_FROM_CALLS`, docs/presence-poller.md): the leg's person, as
/// the poller recorded them, goes to `call` when the leg is answered and back when it ends, each
/// once (a retried Webex event re-queues the same event id), logged for replay; a person the
/// poller never recorded gets nothing. Off by default (every other scenario).
async fn presence_from_calls(h: Harness) {
    let mut config = IngestConfig::new(WebhookAuth::secret(SECRET));
    config.presence_from_calls = true;
    let h = Harness::build_with(
        h.stores.clone(),
        h.queue.clone(),
        h.consumer.clone(),
        h.aws,
        config,
    );
    h.subscribe(SEED_ORG, &[EventType::PresenceChanged]).await;
    let created: Value = serde_json::from_str(&envelope(SEED_CREATED)).unwrap();
    let person = created["actorId"].as_str().unwrap().to_owned();
    let item = |status: &str| {
        format!(
            r#"{{"id":"{person}","emails":["ana@example.com"],"displayName":"Ana","status":"{status}","type":"person"}}"#
        )
    };
    let polled = (h.now - chrono::Duration::minutes(1)).timestamp_millis() as u64;
    let record = relay_shared::ports::PresenceRecord {
        person_id: person.clone(),
        fingerprint: "active".into(),
        version: polled,
        item: Some(item("active")),
    };
    h.stores.presence.write(SEED_ORG, &[record]).await.unwrap();

    let start = h.now - chrono::Duration::minutes(2);
    let leg = |call: &str, actor: &str, stage: &str, event_type: &str, t: i64| {
        leg_event(start, call, stage, event_type, t, |v| {
            v["actorId"] = actor.into();
        })
    };
    let presence_jobs = |jobs: Vec<DeliveryJob>| -> Vec<DeliveryJob> {
        jobs.into_iter()
            .filter(|j| j.event_type == EventType::PresenceChanged)
            .collect()
    };
    let expected = |status: &str| {
        format!(
            r#"{{"payload":"user-presence","items":[{}]}}"#,
            item(status)
        )
    };

    let ringing = leg("presence-call", &person, "created", "received", 0);
    assert_eq!(h.post(&ringing).await.status, StatusCode::OK);
    assert!(
        presence_jobs(h.drain().await).is_empty(),
        "ringing is not a call yet"
    );
    let answered = leg("presence-call", &person, "updated", "answered", 5);
    assert_eq!(h.post(&answered).await.status, StatusCode::OK);
    let jobs = presence_jobs(h.drain().await);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].body, expected("call"));
    assert_eq!(jobs[0].org_id, SEED_ORG);
    let connected_id = jobs[0].event_id;

    let ended = leg("presence-call", &person, "deleted", "disconnected", 65);
    assert_eq!(h.post(&ended).await.status, StatusCode::OK);
    let jobs = presence_jobs(h.drain().await);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].body, expected("active"));
    let logged: Vec<_> = h
        .logged()
        .await
        .into_iter()
        .filter(|e| e.event_type == EventType::PresenceChanged)
        .map(|e| e.id)
        .collect();
    assert_eq!(logged.len(), 2, "both are in the event log");
    assert!(logged.contains(&connected_id));

    // A person the poller never recorded: nothing to build the contract's item from.
    for (stage, t, ty) in [("updated", 5, "answered"), ("deleted", 65, "disconnected")] {
        let r = h
            .post(&leg("stranger-call", "stranger", stage, ty, t))
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    assert!(presence_jobs(h.drain().await).is_empty());
    let (record, call) = h
        .stores
        .presence
        .person(SEED_ORG, "stranger")
        .await
        .unwrap();
    assert_eq!((record, call), (None, None));
}

/// Payload filters at fan-out (relay_shared::filters): a subscriber filtering on
/// `data.personality` = `originator` receives none of the captured (terminator) events and costs
/// no queue message; `terminator` receives all three; a call-event subscriber filtering on the
/// outcome receives only `call:ended`.
async fn payload_filters_at_fan_out(h: Harness) {
    let filtered = |types: &[EventType], filter: Value| {
        let mut s = testkit::fixtures::subscription(SEED_ORG, types);
        s.filter = Some(relay_shared::filters::Filter::parse(&filter).unwrap());
        s
    };
    let originator = filtered(
        &TELEPHONY,
        serde_json::json!({"data.personality": "originator"}),
    );
    h.stores
        .subscriptions
        .create(&originator, 1000)
        .await
        .unwrap();
    // Another call, so that the seed call is new below.
    let other_call = with(SEED_UPDATED, |v| v["data"]["callId"] = "other-call".into());
    let r = h.post(&other_call).await;
    assert_eq!(r.body["status"], "queued", "{}", r.body);
    assert_eq!(r.body["deliveries"], 0);
    assert_eq!(
        h.queue.calls(),
        0,
        "a filtered-out event costs no queue message"
    );

    let terminator = filtered(
        &TELEPHONY,
        serde_json::json!({"data.personality": {"in": ["terminator"]}}),
    );
    h.stores
        .subscriptions
        .create(&terminator, 1000)
        .await
        .unwrap();
    let ended_only = filtered(
        &EventType::CALL,
        serde_json::json!({"data.outcome": {"exists": true}, "data.remoteParty.callType": "external"}),
    );
    h.stores
        .subscriptions
        .create(&ended_only, 1000)
        .await
        .unwrap();
    // New webhooks reach the fan-out once the org's cached list is as old as its bound.
    h.clock.advance(h.subscriptions_cache_ttl());
    for f in [SEED_UPDATED, SEED_CREATED, SEED_DELETED] {
        let r = h.post(&envelope(f)).await;
        assert_eq!(r.body["status"], "queued", "{}", r.body);
    }
    let jobs = h.drain().await;
    assert!(jobs.iter().all(|j| j.subscription_id != originator.id));
    assert_eq!(
        jobs.iter()
            .filter(|j| j.subscription_id == terminator.id)
            .count(),
        3
    );
    let calls: Vec<_> = jobs
        .iter()
        .filter(|j| j.subscription_id == ended_only.id)
        .collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].event_type, EventType::CallEnded);
}

macro_rules! scenarios {
    ($make:expr) => {
        #[tokio::test]
        async fn seed_sequence() {
            if let Some(h) = $make {
                super::seed_sequence(h).await
            }
        }
        #[tokio::test]
        async fn duplicate() {
            if let Some(h) = $make {
                super::duplicate(h).await
            }
        }
        #[tokio::test]
        async fn concurrent_copies() {
            if let Some(h) = $make {
                super::concurrent_copies(h).await
            }
        }
        #[tokio::test]
        async fn subscriptions_cache_staleness() {
            if let Some(h) = $make {
                super::subscriptions_cache_staleness(h).await
            }
        }
        #[tokio::test]
        async fn distinct_data_same_millisecond() {
            if let Some(h) = $make {
                super::distinct_data_same_millisecond(h).await
            }
        }
        #[tokio::test]
        async fn bad_signatures() {
            if let Some(h) = $make {
                super::bad_signatures(h).await
            }
        }
        #[tokio::test]
        async fn oversize() {
            if let Some(h) = $make {
                super::oversize(h).await
            }
        }
        #[tokio::test]
        async fn malformed() {
            if let Some(h) = $make {
                super::malformed(h).await
            }
        }
        #[tokio::test]
        async fn other_resource() {
            if let Some(h) = $make {
                super::other_resource(h).await
            }
        }
        #[tokio::test]
        async fn queue_failure_then_retry() {
            if let Some(h) = $make {
                super::queue_failure_then_retry(h).await
            }
        }
        #[tokio::test]
        async fn fan_out_0() {
            if let Some(h) = $make {
                super::fan_out_0(h).await
            }
        }
        #[tokio::test]
        async fn fan_out_1() {
            if let Some(h) = $make {
                super::fan_out_1(h).await
            }
        }
        #[tokio::test]
        async fn fan_out_25() {
            if let Some(h) = $make {
                super::fan_out_25(h).await
            }
        }
        #[tokio::test]
        async fn filtering() {
            if let Some(h) = $make {
                super::filtering(h).await
            }
        }
        #[tokio::test]
        async fn too_large_to_queue_is_parked() {
            if let Some(h) = $make {
                super::too_large_to_queue_is_parked(h).await
            }
        }
        #[tokio::test]
        async fn call_events_of_the_captured_call() {
            if let Some(h) = $make {
                super::call_events_of_the_captured_call(h).await
            }
        }
        #[tokio::test]
        async fn call_events_survive_a_queue_failure() {
            if let Some(h) = $make {
                super::call_events_survive_a_queue_failure(h).await
            }
        }
        #[tokio::test]
        async fn call_events_of_a_shuffled_leg() {
            if let Some(h) = $make {
                super::call_events_of_a_shuffled_leg(h).await
            }
        }
        #[tokio::test]
        async fn payload_filters_at_fan_out() {
            if let Some(h) = $make {
                super::payload_filters_at_fan_out(h).await
            }
        }
        #[tokio::test]
        async fn stale_events() {
            if let Some(h) = $make {
                super::stale_events(h).await
            }
        }
        #[tokio::test]
        async fn presence_from_calls() {
            if let Some(h) = $make {
                super::presence_from_calls(h).await
            }
        }
    };
}

mod memory {
    scenarios!(Some(super::Harness::memory()));
}

mod aws {
    use super::*;

    /// A harness on fresh AWS resources, or `None` when they are not configured (`testkit::aws`).
    pub(super) async fn harness() -> Option<Harness> {
        let aws =
            testkit::aws::Resources::for_test("the aws::* ingest scenarios", "ingest").await?;
        Some(Harness::build(
            aws.stores,
            aws.queue.clone(),
            aws.queue,
            true,
        ))
    }

    scenarios!(harness().await);
}

/// An event log that refuses every event as over its item limit.
struct FullLog;

#[async_trait::async_trait]
impl relay_shared::ports::EventLog for FullLog {
    async fn append(
        &self,
        _: &relay_shared::events::OutboundEvent,
        _: DateTime<Utc>,
    ) -> Result<(), relay_shared::error::StoreError> {
        Err(relay_shared::error::StoreError::TooLarge {
            bytes: 500_000,
            max: relay_shared::error::MAX_STORE_ITEM_BYTES,
        })
    }
    async fn list(
        &self,
        _: &str,
        _: EventQuery,
    ) -> Result<Vec<relay_shared::events::OutboundEvent>, relay_shared::error::StoreError> {
        Ok(vec![])
    }
    async fn get(
        &self,
        _: &str,
        _: &relay_shared::ids::EventId,
    ) -> Result<Option<relay_shared::events::OutboundEvent>, relay_shared::error::StoreError> {
        Ok(None)
    }
    async fn page(
        &self,
        _: &str,
        _: relay_shared::ports::EventFilter,
        _: &relay_shared::ports::PageRequest,
    ) -> Result<
        relay_shared::ports::Page<relay_shared::events::OutboundEvent>,
        relay_shared::error::StoreError,
    > {
        Ok(relay_shared::ports::Page {
            items: vec![],
            next_cursor: None,
        })
    }
}

/// An event the event log refuses as too large is relayed all the same (not a 503 that Webex
/// would retry forever), with a metric line saying it is not replayable.
#[tokio::test]
async fn an_event_too_large_for_the_log_is_relayed_anyway() {
    let q = Arc::new(relay_shared::adapters::memory::MemoryQueue::new(
        std::time::Duration::from_secs(30),
    ));
    let mut stores = relay_shared::adapters::memory::memory_stores();
    stores.events = Arc::new(FullLog);
    let h = Harness::build(stores, q.clone(), q, false);
    h.subscribe(SEED_ORG, &TELEPHONY).await;
    let r = h.post(&envelope(SEED_CREATED)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "queued");
    assert_eq!(h.drain().await.len(), 1);
    let metrics = h.metric_lines(telephony_ingest::ingest::NOT_LOGGED_METRIC);
    assert_eq!(metrics.len(), 1, "{metrics:?}");
    let doc: Value = serde_json::from_str(&metrics[0]).unwrap();
    assert_eq!(doc[telephony_ingest::ingest::NOT_LOGGED_METRIC], 1);
}

// ---------------------------------------------------------------------------------------------
// The checked-in API Gateway events (events/telephony-*.json) through lambda_http's own request
// conversion, as `cargo lambda invoke` would deliver them.

fn event_request(name: &str) -> lambda_http::Request {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    lambda_http::request::from_str(&text)
        .unwrap_or_else(|e| panic!("{name} is not an API Gateway event: {e}"))
}

/// The checked-in events carry the capture's own (2025) times, signed: they are relayed with a
/// dedupe window reaching back to them (docs/telephony-ingest.md, `DEDUPE_TTL_HOURS`).
fn capture_window() -> IngestConfig {
    IngestConfig {
        dedupe_ttl: chrono::Duration::days(3650),
        ..IngestConfig::new(WebhookAuth::secret(SECRET))
    }
}

#[tokio::test]
async fn sample_events_answer_as_documented() {
    let h = Harness::memory_with_config(capture_window());
    h.subscribe(SEED_ORG, &TELEPHONY).await;
    for (name, status) in [
        ("telephony-updated.json", 200),
        ("telephony-created.json", 200),
        ("telephony-deleted.json", 200),
        ("telephony-bad-signature.json", 401),
        ("telephony-malformed.json", 400),
    ] {
        let resp = h.router.clone().oneshot(event_request(name)).await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{name}");
    }
    assert_eq!(h.drain().await.len(), 3);
    assert_eq!(
        h.seed_call().await.stages(),
        vec!["created", "updated", "deleted"]
    );
}

#[tokio::test]
async fn base64_encoded_api_gateway_body_is_verified_on_the_decoded_bytes() {
    use base64::Engine;
    let h = Harness::memory_with_config(capture_window());
    h.subscribe(SEED_ORG, &TELEPHONY).await;
    let path = format!(
        "{}/../../events/telephony-created.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut ev: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let body = ev["body"].as_str().unwrap().to_owned();
    ev["body"] = base64::engine::general_purpose::STANDARD
        .encode(body.as_bytes())
        .into();
    ev["isBase64Encoded"] = true.into();
    let req = lambda_http::request::from_str(&ev.to_string()).unwrap();
    let resp = h.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let items: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h.drain().await[0].body, body_of(&items.to_string(), h.now));
}

/// With `IngestFrontDoor=FunctionUrl` (template.yaml) Webex POSTs to the function URL: the same
/// payload version 2.0, with routeKey `$default` and the function URL's host. lambda_http reads it
/// as an HTTP API request, so the router sees `POST /webex/telephony` and relays it as usual; the
/// function URL passes any path, so one without the route is a 404 (why `WebexIngestUrl` ends in
/// `/webex/telephony` in both cases).
#[tokio::test]
async fn a_function_url_event_reaches_the_same_route() {
    let h = Harness::memory_with_config(capture_window());
    h.subscribe(SEED_ORG, &TELEPHONY).await;
    let req = event_request("telephony-function-url.json");
    assert!(
        matches!(
            req.extensions()
                .get::<lambda_http::request::RequestContext>(),
            Some(lambda_http::request::RequestContext::ApiGatewayV2(_))
        ),
        "a function URL event is an HTTP API (payload 2.0) request to lambda_http"
    );
    let resp = h.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(answer["status"], "queued", "{answer}");
    let path = format!(
        "{}/../../events/telephony-function-url.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut ev: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let body = ev["body"].as_str().unwrap().to_owned();
    let items: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h.drain().await[0].body, body_of(&items.to_string(), h.now));

    ev["rawPath"] = "/".into();
    ev["requestContext"]["http"]["path"] = "/".into();
    let req = lambda_http::request::from_str(&ev.to_string()).unwrap();
    let resp = h.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(h.drain().await.is_empty());
}

#[tokio::test]
async fn insecure_mode_accepts_unsigned() {
    let q = Arc::new(relay_shared::adapters::memory::MemoryQueue::new(
        std::time::Duration::from_secs(30),
    ));
    let stores = relay_shared::adapters::memory::memory_stores();
    stores
        .subscriptions
        .create(&testkit::fixtures::subscription(SEED_ORG, &TELEPHONY), 10)
        .await
        .unwrap();
    let ingest = Ingest::new(
        CorePorts {
            stores,
            queue: q.clone(),
            clock: Arc::new(ManualClock::new(Utc::now())),
        },
        IngestConfig::new(WebhookAuth::InsecureUnsigned),
    );
    let req = Request::post("/webex/telephony")
        .body(Body::from(envelope(SEED_CREATED)))
        .unwrap();
    let resp = router(Arc::new(ingest)).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(q.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Secret rotation and one secret per org (docs/telephony-ingest.md, "Webhook secrets").

/// During a rotation an event signed with the previous secret is accepted; one signed with an
/// unrelated secret is not; the request line says which secret verified it.
#[tokio::test]
async fn previous_secret_accepted_during_a_rotation_unrelated_one_refused() {
    let h = Harness::memory_with(WebhookAuth::secrets(WebhookSecrets::single(
        "new-secret".into(),
        Some("old-secret".into()),
    )));
    h.subscribe(SEED_ORG, &TELEPHONY).await;
    let created = envelope(SEED_CREATED);
    let r = h
        .send(signed(&created, "x-spark-signature", "old-secret"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "queued");
    let updated = envelope(SEED_UPDATED);
    let r = h
        .send(signed(&updated, "x-spark-signature", "new-secret"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(h.drain().await.len(), 2);
    let deleted = envelope(SEED_DELETED);
    for secret in ["unrelated-secret", SECRET] {
        let r = h.send(signed(&deleted, "x-spark-signature", secret)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{secret}");
        assert_eq!(r.body["error"], "invalid_signature");
    }
    assert!(h.drain().await.is_empty());
}

/// With one secret per org, a valid signature under org A's secret on a body claiming org B is
/// refused (401, nothing recorded); B's own secret, current or previous, is accepted.
#[tokio::test]
async fn an_orgs_secret_vouches_for_its_own_org_only() {
    let mut secrets = WebhookSecrets::default();
    secrets.push(Some("org-a".into()), SecretRole::Current, "a-secret".into());
    secrets.push(
        Some(SEED_ORG.into()),
        SecretRole::Current,
        "seed-secret".into(),
    );
    secrets.push(
        Some(SEED_ORG.into()),
        SecretRole::Previous,
        "seed-old".into(),
    );
    let h = Harness::memory_with(WebhookAuth::secrets(secrets));
    h.subscribe(SEED_ORG, &TELEPHONY).await;
    let body = envelope(SEED_CREATED);
    let r = h.send(signed(&body, "x-spark-signature", "a-secret")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(r.body["error"], "org_mismatch");
    assert!(h.drain().await.is_empty());
    assert!(
        h.stores.calls.get(SEED_CALL).await.unwrap().is_none(),
        "nothing recorded for another org's signature"
    );
    let r = h.send(signed(&body, "x-spark-signature", "seed-old")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = h
        .send(signed(
            &envelope(SEED_UPDATED),
            "x-spark-signature",
            "seed-secret",
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(h.drain().await.len(), 2);
    // The same body re-labelled as org A's, signed by A: A's to accept (its subscriptions only).
    let as_a = with(SEED_DELETED, |v| v["orgId"] = "org-a".into());
    let r = h.send(signed(&as_a, "x-spark-signature", "a-secret")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["deliveries"], 0);
}

/// The secret JSON a Secrets Manager secret holds, end to end through the shared parser.
#[tokio::test]
async fn secret_json_with_orgs_drives_verification() {
    let raw = format!(
        r#"{{"orgs":{{"{SEED_ORG}":{{"secret":"s-new","previous":"s-old"}},"org-a":"a"}}}}"#
    );
    let h = Harness::memory_with(WebhookAuth::secrets(parse_webhook_secrets(&raw).unwrap()));
    h.subscribe(SEED_ORG, &TELEPHONY).await;
    for (fixture, secret, status) in [
        (SEED_CREATED, "s-old", StatusCode::OK),
        (SEED_UPDATED, "s-new", StatusCode::OK),
        (SEED_DELETED, "a", StatusCode::UNAUTHORIZED),
        (SEED_DELETED, "other", StatusCode::UNAUTHORIZED),
    ] {
        let r = h
            .send(signed(&envelope(fixture), "x-spark-signature", secret))
            .await;
        assert_eq!(r.status, status, "{secret}: {}", r.body);
    }
    assert_eq!(h.drain().await.len(), 2);
}

/// A cold start's read of the webhook secret from Secrets Manager (moto under
/// `scripts/start-local-aws`), for each form an operator may store: what it accepts and refuses.
#[tokio::test]
async fn secrets_manager_forms_load_at_cold_start() {
    const VAR: &str = "AWS_ENDPOINT_URL_SECRETS_MANAGER";
    let unset = std::env::var(VAR).map_or(true, |v| v.trim().is_empty());
    let missing: Vec<&str> = unset.then_some(VAR).into_iter().collect();
    if !testkit::gate(
        "secrets_manager_forms_load_at_cold_start",
        "Secrets Manager (moto)",
        &missing,
    ) {
        return;
    }
    let sdk = testkit::aws::sdk_config().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let rotation = r#"{"secret":"new","previous":"old"}"#.to_owned();
    let per_org =
        format!(r#"{{"orgs":{{"{SEED_ORG}":{{"secret":"s","previous":"s0"}},"org-a":"a"}}}}"#);
    for (raw, accepted, refused) in [
        ("plain\n".to_owned(), &["plain"][..], &["old"][..]),
        (rotation, &["new", "old"], &["other"]),
        (per_org, &["s", "s0"], &["a", "other"]),
    ] {
        let out = client
            .create_secret()
            .name(testkit::aws::unique("ingest-webhook-secret"))
            .secret_string(&raw)
            .send()
            .await
            .unwrap();
        let arn = out.arn().expect("an ARN").to_owned();
        let auth = SecretSource::SecretsManager(arn)
            .load(Some(&sdk))
            .await
            .unwrap();
        let h = Harness::memory_with(auth);
        let body = envelope(SEED_CREATED);
        for secret in accepted {
            let r = h.send(signed(&body, "x-spark-signature", secret)).await;
            assert!(r.status.is_success(), "{raw}: {secret}: {}", r.body);
        }
        for secret in refused {
            let r = h.send(signed(&body, "x-spark-signature", secret)).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{raw}: {secret}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Event types and the tracking id.

/// The newly known event types and an unknown one are relayed with `items` byte for byte.
#[tokio::test]
async fn every_event_type_is_relayed_untouched() {
    let h = Harness::memory();
    h.subscribe(SEED_ORG, &TELEPHONY).await;
    for (i, event_type) in [
        "answered",
        "held",
        "resumed",
        "forwarded",
        "recording",
        "parked-in-a-future-release",
    ]
    .into_iter()
    .enumerate()
    {
        let body = with(SEED_UPDATED, |v| {
            v["data"]["eventType"] = event_type.into();
            v["data"]["eventTimestamp"] =
                rfc3339_millis(h.now - chrono::Duration::seconds(10 - i as i64)).into();
        });
        let r = h.post(&body).await;
        assert_eq!(r.status, StatusCode::OK, "{event_type}: {}", r.body);
        let jobs = h.drain().await;
        assert_eq!(jobs.len(), 1, "{event_type}");
        let sent: Value = serde_json::from_str(&jobs[0].body).unwrap();
        assert_eq!(
            serde_json::to_string(&sent["items"]).unwrap(),
            body,
            "{event_type}"
        );
    }
}

/// Webex's tracking id (`TrackingID`, any case) is on the request log line, accepted or refused,
/// next to the secret role that verified it.
#[tokio::test]
async fn tracking_id_is_on_the_request_line() {
    let logs = testkit::logs::capture();
    let h = Harness::memory_with(WebhookAuth::secrets(WebhookSecrets::single(
        SECRET.into(),
        Some("old".into()),
    )));
    h.subscribe(SEED_ORG, &TELEPHONY).await;
    let body = envelope(SEED_CREATED);
    let mut req = signed(&body, "x-spark-signature", "old");
    req.headers_mut()
        .insert("TrackingID", "WEBHOOK_7d210c25_PROD_0".parse().unwrap());
    assert_eq!(h.send(req).await.status, StatusCode::OK);
    let mut req = signed(&body, "x-spark-signature", "unrelated");
    req.headers_mut()
        .insert("trackingid", "WEBHOOK_refused_1".parse().unwrap());
    assert_eq!(h.send(req).await.status, StatusCode::UNAUTHORIZED);

    let requests = logs.with_message("telephony webhook");
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(
        requests[0]["fields"]["tracking_id"],
        "WEBHOOK_7d210c25_PROD_0"
    );
    assert_eq!(requests[0]["fields"]["verified_with"], "previous");
    assert_eq!(requests[0]["fields"]["outcome"], "queued");
    assert_eq!(requests[1]["fields"]["tracking_id"], "WEBHOOK_refused_1");
    assert_eq!(requests[1]["fields"]["outcome"], "unauthorized");
    assert_eq!(requests[1]["fields"]["verified_with"], "");
}

/// The longest freshness window `DEDUPE_TTL_HOURS` allows, and an event dated as far ahead as the
/// ingest accepts: relayed at once, and a re-sent capture of it is already stale when the worker's
/// attempt claims (remembered `ATTEMPT_CLAIM_DAYS` from the first ingest, at the earliest) end,
/// so it can never be POSTed again by a claim that was forgotten (review 21, F6).
#[tokio::test]
async fn a_re_sent_capture_is_stale_before_the_attempt_memory_ends() {
    use relay_shared::delivery::ATTEMPT_CLAIM_DAYS;
    use telephony_ingest::config::MAX_DEDUPE_TTL_HOURS;
    use telephony_ingest::ingest::MAX_CLOCK_SKEW;
    let mut config = IngestConfig::new(WebhookAuth::secret(SECRET));
    config.dedupe_ttl = chrono::Duration::hours(MAX_DEDUPE_TTL_HOURS);
    let h = Harness::memory_with_config(config);
    h.subscribe(SEED_ORG, &TELEPHONY).await;
    let capture = with(SEED_CREATED, |v| {
        v["data"]["eventTimestamp"] = rfc3339_millis(h.now + MAX_CLOCK_SKEW).into();
        v["data"]["callId"] = "ahead-call".into();
    });
    let r = h.post(&capture).await;
    assert_eq!(r.body["status"], "queued", "{}", r.body);
    assert_eq!(h.drain().await.len(), 1);
    // At the window's end: still fresh, relayed again (`duplicate` while the call state lasts,
    // `queued` once it expired), for the worker's claims to collapse.
    let last_fresh = MAX_CLOCK_SKEW + chrono::Duration::hours(MAX_DEDUPE_TTL_HOURS);
    assert!(last_fresh < chrono::Duration::days(ATTEMPT_CLAIM_DAYS));
    h.clock.advance(last_fresh);
    let r = h.post(&capture).await;
    assert!(
        r.body["status"] == "duplicate" || r.body["status"] == "queued",
        "{}",
        r.body
    );
    h.drain().await;
    // From one millisecond after it, and so whenever the claims are gone: stale.
    h.clock.advance(chrono::Duration::milliseconds(1));
    let r = h.post(&capture).await;
    assert_eq!(r.body["status"], "stale", "{}", r.body);
    assert_eq!(r.body["reason"], "older_than_dedupe_window", "{}", r.body);
    assert!(h.drain().await.is_empty());
}
