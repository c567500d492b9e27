//! The ingest's sequential round trips (issue 17: at most 3 before it answers): every call to
//! the call state, the event log, the org's subscriptions and the queue is traced, and the calls
//! of round 1 (call-state read, event-log append and, on a cache miss, the subscriptions query)
//! wait for each other at a barrier before they complete, so they can only finish if the ingest
//! has them all in flight at once. A round is a busy period: from the first call started while
//! none was in flight to the moment none is. The runtime's clock is paused, so a handler that
//! made them one after the other deadlocks at the barrier, the runtime goes idle and the bounded
//! wait fails at once (no wall-clock timing).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use relay_shared::adapters::aws::RoundTracker;
use relay_shared::call_state::CallRecord;
use relay_shared::clock::ManualClock;
use relay_shared::error::{QueueError, StoreError};
use relay_shared::events::{EventType, OutboundEvent};
use relay_shared::ids::{EventId, SubscriptionId};
use relay_shared::ports::{
    CallStateStore, CorePorts, DeliveryQueue, EventFilter, EventLog, EventQuery, Page, PageRequest,
    QueuedJob, SubscriptionStore,
};
use relay_shared::subscription::Subscription;
use relay_shared::webex::{redate_captured, webex_signature};
use telephony_ingest::{Ingest, IngestConfig, WebhookAuth};
use tokio::sync::Barrier;

const SECRET: &str = "rounds-secret";

/// Traces each call's start and end on the project's round tracker (the OpCounter's, one home of
/// "a round is a busy period"); holds the round-1 operations at a barrier.
#[derive(Default)]
struct Tracer {
    rounds: RoundTracker,
    /// The operations still to meet at the barrier (each once), and the barrier.
    gate: Mutex<Option<(BTreeSet<&'static str>, Arc<Barrier>)>>,
}

impl Tracer {
    fn gate(&self, ops: &[&'static str]) {
        *self.gate.lock().unwrap() = Some((
            ops.iter().copied().collect(),
            Arc::new(Barrier::new(ops.len())),
        ));
    }

    fn reset(&self) {
        self.rounds.take_log();
    }

    async fn call<T>(&self, op: &'static str, f: impl std::future::Future<Output = T>) -> T {
        let barrier = {
            let mut gate = self.gate.lock().unwrap();
            gate.as_mut()
                .and_then(|(ops, b)| ops.remove(op).then(|| b.clone()))
        };
        self.rounds
            .traced(op, async {
                if let Some(b) = barrier {
                    b.wait().await;
                }
                f.await
            })
            .await
    }

    fn rounds(&self) -> Vec<BTreeSet<String>> {
        self.rounds.take_log()
    }
}

struct Calls(Arc<dyn CallStateStore>, Arc<Tracer>);
struct Events(Arc<dyn EventLog>, Arc<Tracer>);
struct Subs(Arc<dyn SubscriptionStore>, Arc<Tracer>);
struct Queue(Arc<dyn DeliveryQueue>, Arc<Tracer>);

#[async_trait]
impl CallStateStore for Calls {
    async fn get(&self, call_id: &str) -> Result<Option<CallRecord>, StoreError> {
        self.1.call("calls.get", self.0.get(call_id)).await
    }
    async fn put(&self, record: &CallRecord) -> Result<(), StoreError> {
        self.1.call("calls.put", self.0.put(record)).await
    }
}

#[async_trait]
impl EventLog for Events {
    async fn append(&self, event: &OutboundEvent, until: DateTime<Utc>) -> Result<(), StoreError> {
        self.1
            .call("events.append", self.0.append(event, until))
            .await
    }
    async fn list(&self, org: &str, q: EventQuery) -> Result<Vec<OutboundEvent>, StoreError> {
        self.0.list(org, q).await
    }
    async fn get(&self, org: &str, id: &EventId) -> Result<Option<OutboundEvent>, StoreError> {
        self.0.get(org, id).await
    }
    async fn page(
        &self,
        org: &str,
        f: EventFilter,
        p: &PageRequest,
    ) -> Result<Page<OutboundEvent>, StoreError> {
        self.0.page(org, f, p).await
    }
}

#[async_trait]
impl SubscriptionStore for Subs {
    async fn create(&self, sub: &Subscription, max: u32) -> Result<(), StoreError> {
        self.0.create(sub, max).await
    }
    async fn get(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        self.0.get(id).await
    }
    async fn list_by_owner(
        &self,
        owner: &str,
        page: &PageRequest,
    ) -> Result<Page<Subscription>, StoreError> {
        self.0.list_by_owner(owner, page).await
    }
    async fn list_by_org(&self, org: &str) -> Result<Vec<Subscription>, StoreError> {
        self.1
            .call("subscriptions.list_by_org", self.0.list_by_org(org))
            .await
    }
    async fn list_all(&self, page: &PageRequest) -> Result<Page<Subscription>, StoreError> {
        self.0.list_all(page).await
    }
    async fn update(&self, sub: &Subscription) -> Result<(), StoreError> {
        self.0.update(sub).await
    }
    async fn delete(&self, owner: &str, id: &SubscriptionId) -> Result<bool, StoreError> {
        self.0.delete(owner, id).await
    }
}

#[async_trait]
impl DeliveryQueue for Queue {
    async fn send(&self, jobs: &[QueuedJob]) -> Result<(), QueueError> {
        self.1.call("queue.send", self.0.send(jobs)).await
    }
}

/// The captured `fixture` event (its times moved to now) of call `call`.
fn event(fixture: &str, call: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(fixture).unwrap();
    redate_captured(&mut v["items"]);
    v["items"]["data"]["callId"] = call.into();
    v["items"].to_string()
}

const CREATED: &str = include_str!("../../../../tests/fixtures/seed001/created.json");

fn set(ops: &[&str]) -> BTreeSet<String> {
    ops.iter().map(|op| op.to_string()).collect()
}

/// A new event: 3 rounds (read + append + subscriptions; the call-state write; the send); the
/// next event of the org with the subscriptions cached: 3 rounds, no query. A redelivery: the
/// read and the append (its conflict) in one round, no write, the send: 2 rounds.
#[tokio::test(start_paused = true)]
async fn ingest_makes_at_most_three_sequential_round_trips() {
    let tracer = Arc::new(Tracer::default());
    let q = Arc::new(relay_shared::adapters::memory::MemoryQueue::new(
        std::time::Duration::from_secs(30),
    ));
    let mut stores = relay_shared::adapters::memory::memory_stores();
    stores.calls = Arc::new(Calls(stores.calls.clone(), tracer.clone()));
    stores.events = Arc::new(Events(stores.events.clone(), tracer.clone()));
    stores.subscriptions = Arc::new(Subs(stores.subscriptions.clone(), tracer.clone()));
    let org = serde_json::from_str::<serde_json::Value>(CREATED).unwrap()["items"]["orgId"]
        .as_str()
        .unwrap()
        .to_owned();
    let types = [EventType::TelephonyCreated];
    stores
        .subscriptions
        .create(&testkit::fixtures::subscription(&org, &types), 10)
        .await
        .unwrap();
    let ingest = Ingest::new(
        CorePorts {
            stores,
            queue: Arc::new(Queue(q.clone(), tracer.clone())),
            clock: Arc::new(ManualClock::new(Utc::now().trunc_subsecs(3))),
        },
        IngestConfig::new(WebhookAuth::secret(SECRET)),
    )
    .with_metrics(Arc::new(|_| {}));
    let handle = |body: String| {
        let ingest = &ingest;
        async move {
            let signature = webex_signature(SECRET.as_bytes(), body.as_bytes());
            // Bounded: a handler stuck at the barrier fails here (the paused clock jumps).
            tokio::time::timeout(
                std::time::Duration::from_secs(60),
                ingest.handle(body.as_bytes(), Some(&signature)),
            )
            .await
            .expect("round 1's calls were not all in flight together")
        }
    };

    let round_1 = ["calls.get", "events.append", "subscriptions.list_by_org"];
    tracer.gate(&round_1);
    let r = handle(event(CREATED, "call-1")).await;
    assert_eq!(r.body["status"], "queued", "{}", r.body);
    assert_eq!(
        tracer.rounds(),
        [set(&round_1), set(&["calls.put"]), set(&["queue.send"])]
    );

    tracer.reset();
    tracer.gate(&["calls.get", "events.append"]);
    let r = handle(event(CREATED, "call-2")).await;
    assert_eq!(r.body["status"], "queued", "{}", r.body);
    assert_eq!(
        tracer.rounds(),
        [
            set(&["calls.get", "events.append"]),
            set(&["calls.put"]),
            set(&["queue.send"])
        ],
        "the org's subscriptions came from the cache"
    );

    tracer.reset();
    tracer.gate(&["calls.get", "events.append"]);
    let r = handle(event(CREATED, "call-2")).await;
    assert_eq!(r.body["status"], "duplicate", "{}", r.body);
    assert_eq!(
        tracer.rounds(),
        [set(&["calls.get", "events.append"]), set(&["queue.send"])]
    );
    assert_eq!(q.len(), 3);
}
