//! Test kit: a fake Webex people API on 127.0.0.1 (axum) with paged listings, `Link` headers and
//! scripted faults; a counting `PresenceStore` decorator; builders for pollers and subscriptions.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use presence_poller::token::{ClientFactory, RefreshingWebex, StaticToken, TokenSource};
use presence_poller::{Poller, PollerConfig, RunOptions, Summary};
use relay_shared::adapters::memory::{memory_stores, MemoryQueue};
use relay_shared::adapters::webex_http::WebexHttpClient;
use relay_shared::clock::SystemClock;
use relay_shared::delivery::DeliveryJob;
use relay_shared::error::StoreError;
use relay_shared::events::{EventType, OutboundEvent};
use relay_shared::ids::SubscriptionId;
use relay_shared::ports::{
    DeliveryQueue, EventQuery, PresenceRecord, PresenceStore, Stores, WebexClient,
};
use relay_shared::subscription::Subscription;
use serde_json::{json, Value};

pub const ORG: &str = "org-12345";

/// A scripted answer replacing the next response for a page.
#[derive(Debug, Clone)]
pub enum Fault {
    Status(u16),
    RateLimited { status: u16, retry_after: u64 },
}

impl Fault {
    pub fn rate_limited(status: u16, retry_after: u64) -> Self {
        Fault::RateLimited {
            status,
            retry_after,
        }
    }
}

/// One request the fake saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub page: usize,
    pub query: Vec<(String, String)>,
    pub token: Option<String>,
    pub status: u16,
}

#[derive(Default)]
pub struct Script {
    /// The people served (full Webex person objects).
    pub people: Vec<Value>,
    /// Replaces `people` at each successful first-page request, in order.
    pub snapshots: VecDeque<Vec<Value>>,
    /// (page or any page, fault): applied once to the next matching request.
    pub faults: VecDeque<(Option<usize>, Fault)>,
    /// Accepted bearer tokens (empty: any).
    pub tokens: Vec<String>,
    pub seen: Vec<Seen>,
    base: String,
}

#[derive(Clone)]
pub struct FakeWebex {
    pub base_url: String,
    pub script: Arc<Mutex<Script>>,
}

impl FakeWebex {
    pub async fn start(people: Vec<Value>) -> FakeWebex {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        let script = Arc::new(Mutex::new(Script {
            people,
            base: base_url.clone(),
            ..Script::default()
        }));
        let app = Router::new()
            .route("/v1/people", get(people_handler))
            .route(
                "/v1/people/me",
                get(|| async { axum::Json(json!({"id": "me", "orgId": ORG, "type": "bot"})) }),
            )
            .with_state(script.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeWebex { base_url, script }
    }

    pub fn set_people(&self, people: Vec<Value>) {
        self.script.lock().unwrap().people = people;
    }

    pub fn update(&self, f: impl FnOnce(&mut Vec<Value>)) {
        f(&mut self.script.lock().unwrap().people);
    }

    pub fn push_snapshot(&self, people: Vec<Value>) {
        self.script.lock().unwrap().snapshots.push_back(people);
    }

    pub fn fault(&self, page: Option<usize>, fault: Fault) {
        self.script.lock().unwrap().faults.push_back((page, fault));
    }

    pub fn accept_tokens(&self, tokens: &[&str]) {
        self.script.lock().unwrap().tokens = tokens.iter().map(|t| t.to_string()).collect();
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.script.lock().unwrap().seen.clone()
    }

    pub fn requests(&self) -> usize {
        self.script.lock().unwrap().seen.len()
    }

    /// A client as `main.rs` builds it (no client-side retries: the poller honours Retry-After).
    pub fn client(&self, tokens: Arc<dyn TokenSource>) -> Arc<RefreshingWebex> {
        let base = self.base_url.clone();
        let factory: ClientFactory = Arc::new(move |t: &str| {
            Ok(
                Arc::new(WebexHttpClient::new(&base, t)?.with_retries(0, Duration::ZERO))
                    as Arc<dyn WebexClient>,
            )
        });
        Arc::new(RefreshingWebex::new(tokens, factory))
    }
}

async fn people_handler(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let mut s = script.lock().unwrap();
    let param = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.clone());
    assert!(
        param("id").is_none(),
        "the poller must never list people by id: {query:?}"
    );
    assert!(
        param("orgId").is_some() || param("locationId").is_some(),
        "orgId or locationId expected: {query:?}"
    );
    let max: usize = param("max").and_then(|m| m.parse().ok()).unwrap_or(100);
    let offset: usize = param("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    let page = offset / max.max(1);
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let mut seen = Seen {
        page,
        query: query.clone(),
        token: token.clone(),
        status: 200,
    };

    if !s.tokens.is_empty() && !token.as_ref().is_some_and(|t| s.tokens.contains(t)) {
        seen.status = 401;
        s.seen.push(seen);
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"message": "The request requires a valid access token set in the Authorization request header."}))).into_response();
    }
    if let Some(i) = s
        .faults
        .iter()
        .position(|(p, _)| p.is_none_or(|p| p == page))
    {
        let (_, fault) = s.faults.remove(i).unwrap();
        let resp = match fault {
            Fault::Status(code) => {
                seen.status = code;
                (
                    StatusCode::from_u16(code).unwrap(),
                    axum::Json(json!({"message": "scripted failure", "trackingId": "t"})),
                )
                    .into_response()
            }
            Fault::RateLimited {
                status,
                retry_after,
            } => {
                seen.status = status;
                let mut r = (
                    StatusCode::from_u16(status).unwrap(),
                    axum::Json(json!({"message": "Too Many Requests"})),
                )
                    .into_response();
                r.headers_mut()
                    .insert("retry-after", retry_after.to_string().parse().unwrap());
                r
            }
        };
        s.seen.push(seen);
        return resp;
    }
    if offset == 0 {
        if let Some(next) = s.snapshots.pop_front() {
            s.people = next;
        }
    }
    let end = (offset + max).min(s.people.len());
    let items: Vec<Value> = s
        .people
        .get(offset..end)
        .map(<[Value]>::to_vec)
        .unwrap_or_default();
    let mut resp = axum::Json(json!({ "items": items })).into_response();
    if end < s.people.len() {
        let mut next = url::Url::parse(&format!("{}/people", s.base)).unwrap();
        {
            let mut q = next.query_pairs_mut();
            for (k, v) in query.iter().filter(|(k, _)| k != "cursor") {
                q.append_pair(k, v);
            }
            q.append_pair("cursor", &end.to_string());
        }
        resp.headers_mut()
            .insert("link", format!("<{next}>; rel=\"next\"").parse().unwrap());
    }
    s.seen.push(seen);
    resp
}

/// A Webex person with every field of the presence contract's example person (in its order) plus
/// one field the relay does not model, which must be passed through.
pub fn person(i: usize, status: &str) -> Value {
    json!({
        "id": format!("Y2lzY29zcGFyazovL3VzL1BFT1BMRS{i:06}"),
        "emails": [format!("user{i}@example.com")],
        "sipAddresses": [{"type": "cloud", "value": format!("sip:user{i}@example.com"), "primary": true}],
        "displayName": format!("User {i}"),
        "nickName": format!("U{i}"),
        "firstName": "User",
        "lastName": format!("{i}"),
        "orgId": ORG,
        "status": status,
        "lastModified": "2025-06-30T10:05:00Z",
        "lastActivity": "2025-06-30T10:10:00Z",
        "type": "person",
        "department": "Engineering",
        "phoneNumbers": [{"type": "work", "value": format!("+1 555 {i:04}")}],
    })
}

pub fn people(n: usize, status: &str) -> Vec<Value> {
    (0..n).map(|i| person(i, status)).collect()
}

pub fn set_status(people: &mut [Value], i: usize, status: &str) {
    people[i]["status"] = json!(status);
}

/// Counts store calls per kind (wraps the real adapter).
pub struct CountingPresence {
    pub inner: Arc<dyn PresenceStore>,
    pub loads: AtomicU32,
    pub writes: AtomicU32,
    pub records: AtomicUsize,
}

impl CountingPresence {
    pub fn new(inner: Arc<dyn PresenceStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            loads: AtomicU32::new(0),
            writes: AtomicU32::new(0),
            records: AtomicUsize::new(0),
        })
    }

    /// (loads, write calls, records written)
    pub fn counts(&self) -> (u32, u32, usize) {
        (
            self.loads.load(Ordering::SeqCst),
            self.writes.load(Ordering::SeqCst),
            self.records.load(Ordering::SeqCst),
        )
    }
}

#[async_trait]
impl PresenceStore for CountingPresence {
    async fn load(&self, org_id: &str) -> Result<Vec<PresenceRecord>, StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load(org_id).await
    }

    async fn write(&self, org_id: &str, records: &[PresenceRecord]) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.records.fetch_add(records.len(), Ordering::SeqCst);
        self.inner.write(org_id, records).await
    }
}

/// One invocation of at most `cycles` cycles, with no deadline.
pub async fn run_cycles(poller: &Poller, invocation: &str, cycles: u32) -> Summary {
    poller
        .run(RunOptions::until(invocation, far()).max_cycles(cycles))
        .await
}

/// The org's event log of the last hour (and the next), at most `limit` events.
pub async fn logged_events(stores: &Stores, limit: u32) -> Vec<OutboundEvent> {
    let hour = chrono::Duration::hours(1);
    let query = EventQuery::new(chrono::Utc::now() - hour, chrono::Utc::now() + hour, limit);
    stores.events.list(ORG, query).await.unwrap()
}

pub fn subscription(org: &str, types: &[EventType], enabled: bool) -> Subscription {
    Subscription {
        enabled,
        ..testkit::fixtures::subscription(org, types)
    }
}

/// A config for fast tests: short interval and back-off.
pub fn fast_config() -> PollerConfig {
    let mut c = PollerConfig::new(ORG);
    c.poll_interval = Duration::from_millis(20);
    c.safety_margin = Duration::ZERO;
    c.backoff_base = Duration::from_millis(5);
    c.backoff_max = Duration::from_millis(20);
    c.page_size = 100;
    c
}

/// A poller on memory adapters against the fake, with a counting presence store.
pub struct Rig {
    pub fake: FakeWebex,
    pub stores: Stores,
    pub presence: Arc<CountingPresence>,
    pub queue: Arc<MemoryQueue>,
    pub webex: Arc<RefreshingWebex>,
    pub poller: Poller,
}

impl Rig {
    pub async fn new(people: Vec<Value>, config: PollerConfig) -> Rig {
        let fake = FakeWebex::start(people).await;
        Self::with_fake(
            fake,
            config,
            Arc::new(StaticToken("token".into())),
            memory_stores(),
            Arc::new(MemoryQueue::new(Duration::from_secs(30))),
        )
        .await
    }

    pub async fn with_fake(
        fake: FakeWebex,
        config: PollerConfig,
        tokens: Arc<dyn TokenSource>,
        mut stores: Stores,
        queue: Arc<MemoryQueue>,
    ) -> Rig {
        let presence = CountingPresence::new(stores.presence.clone());
        stores.presence = presence.clone();
        let webex = fake.client(tokens);
        webex.warm_up().await.unwrap();
        let poller = Poller::new(
            &stores,
            webex.clone(),
            queue.clone() as Arc<dyn DeliveryQueue>,
            Arc::new(SystemClock),
            config,
        );
        Rig {
            fake,
            stores,
            presence,
            queue,
            webex,
            poller,
        }
    }

    /// Two subscriptions wanting presence, one telephony-only, one disabled, one of another org.
    pub async fn subscribe(&self) -> Vec<SubscriptionId> {
        let subs = [
            subscription(ORG, &[EventType::PresenceChanged], true),
            subscription(
                ORG,
                &[EventType::PresenceChanged, EventType::TelephonyCreated],
                true,
            ),
            subscription(ORG, &[EventType::TelephonyCreated], true),
            subscription(ORG, &[EventType::PresenceChanged], false),
            subscription("other-org", &[EventType::PresenceChanged], true),
        ];
        for s in &subs {
            self.stores.subscriptions.create(s, 100).await.unwrap();
        }
        vec![subs[0].id, subs[1].id]
    }

    /// The queued delivery jobs, in order.
    pub fn jobs(&self) -> Vec<DeliveryJob> {
        self.queue
            .bodies()
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect()
    }

    /// The distinct event bodies queued, in order.
    pub fn bodies(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut ids = Vec::new();
        for j in self.jobs() {
            if !ids.contains(&j.event_id) {
                ids.push(j.event_id);
                out.push(j.body);
            }
        }
        out
    }

    /// The people of every queued event body.
    pub fn emitted_items(&self) -> Vec<Vec<Value>> {
        self.bodies()
            .iter()
            .map(|b| {
                serde_json::from_str::<Value>(b).unwrap()["items"]
                    .as_array()
                    .unwrap()
                    .clone()
            })
            .collect()
    }
}

/// The `user-presence` body the presence webhook contract fixes for these people, compact.
pub fn expected_body(items: &[Value]) -> String {
    serde_json::to_string(&json!({"payload": "user-presence", "items": items})).unwrap()
}

/// A far deadline, for runs bounded by `max_cycles`.
pub fn far() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(60)
}
