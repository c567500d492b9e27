//! Test kit: the shared fake Webex (`testkit::fake_webex`) and a poller's client of it; a counting
//! `PresenceStore` decorator; builders for pollers and subscriptions.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use presence_poller::token::{http_clients, RefreshingWebex, StaticToken, TokenSource};
use presence_poller::{Poller, PollerConfig, RunOptions, Summary};
use relay_shared::adapters::memory::{memory_stores, MemoryQueue};
use relay_shared::clock::SystemClock;
use relay_shared::delivery::DeliveryJob;
use relay_shared::error::StoreError;
use relay_shared::events::{EventType, OutboundEvent};
use relay_shared::ids::SubscriptionId;
use relay_shared::ports::{
    CallPresence, DeliveryQueue, EventQuery, PersonViews, PresenceRecord, PresenceStore, Stores,
};
use relay_shared::subscription::Subscription;
use serde_json::{json, Value};

pub use testkit::fake_webex::{FakeWebex, Fault, ORG};

/// A client of the fake as `main.rs` builds it (no client-side retries: the poller honours
/// Retry-After).
pub fn client(fake: &FakeWebex, tokens: Arc<dyn TokenSource>) -> Arc<RefreshingWebex> {
    Arc::new(RefreshingWebex::new(tokens, http_clients(&fake.base_url)))
}

/// A client of the Webex API at `base_url` with a fixed token (`GET /people/me` at cold start).
pub fn client_at(base_url: &str, token: &str) -> Arc<RefreshingWebex> {
    Arc::new(RefreshingWebex::new(
        Arc::new(StaticToken(token.into())),
        http_clients(base_url),
    ))
}

/// A Webex person with every field of the presence contract's example person (in its order) plus
/// one field outside the contract (`phoneNumbers`), which is not sent unless opted in.
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

/// `p` as the poller sends it by default: only the presence contract's fields.
pub fn sent(p: &Value) -> Value {
    let mut out = p.clone();
    out.as_object_mut()
        .unwrap()
        .retain(|k, _| relay_shared::webex::PRESENCE_ITEM_FIELDS.contains(&k.as_str()));
    out
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

    async fn person(&self, org_id: &str, person_id: &str) -> Result<PersonViews, StoreError> {
        self.inner.person(org_id, person_id).await
    }

    async fn calls(
        &self,
        org_id: &str,
        person_ids: &[&str],
    ) -> Result<Vec<CallPresence>, StoreError> {
        self.inner.calls(org_id, person_ids).await
    }

    async fn put_call(&self, org_id: &str, call: &CallPresence) -> Result<(), StoreError> {
        self.inner.put_call(org_id, call).await
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
    // Calls a millisecond apart: the budget never paces these tests (tests/it/ticker.rs does).
    c.webex_calls_per_minute = 60_000;
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
        let webex = client(&fake, tokens);
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

    /// After a baseline of `served`: person 1 changes, Webex answers every listing 429 with a
    /// `Retry-After` beyond the invocation's deadline, and one invocation `invocation` runs one
    /// cycle (the test decides how many, not the machine's speed: a wall-clock deadline gave a
    /// loaded machine zero cycles). 120 s is beyond [`far`]'s 60 s even after the poller's cap
    /// (`PRESENCE_MAX_RETRY_AFTER_MS`, 60 s): the cycle fails at once rather than waiting. What
    /// the loop does next (no call until Retry-After has passed) is tests/it/ticker.rs's, in
    /// paused time.
    pub async fn run_throttled(&self, mut served: Vec<Value>, invocation: &str) -> Summary {
        set_status(&mut served, 1, "inactive");
        self.fake.set_people(served);
        self.fake.fault(None, Fault::rate_limited(429, 120));
        run_cycles(&self.poller, invocation, 1).await
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
