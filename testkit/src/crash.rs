//! Crash injection for the handlers (ingest, the delivery worker): a [`CrashPlan`] wraps every
//! store and the delivery and dead-letter queues, and at one chosen store or queue call "crashes"
//! the handler — either before the call is made ([`Variant::Before`]) or after it took effect,
//! its result never returned ([`Variant::After`]). The wrapper then signals and never returns,
//! and [`CrashPlan::run`] drops the handler future: no cleanup, no release, no error path runs,
//! as when a Lambda container dies.
//!
//! A crash point is named by what it is, not by a global call index: the handler run's phase
//! (set by the caller of [`CrashPlan::run`], e.g. `ingest`, `worker call:ringing`), the
//! operation (`dedupe.claim`, `calls.put`, `queue.send`, …), the kind of key where one store
//! holds several (`dedupe.claim` of an `ingest` key, an `attempt` claim, a `held` record), and
//! which occurrence of that operation in the run it is. So a handler that makes independent
//! calls concurrently (in whatever order they are polled) still has the same points, and a
//! sweep over the points a clean run hit ([`CrashPlan::points`]) is deterministic.
//!
//! Once a run crashed, every store or queue call it still makes (a concurrent branch polled
//! after the crash) is not made, and a call already under way keeps its result: nothing the
//! handler does after the crash instant has an effect it could observe.
//!
//! The plan also keeps a timeline of what reached the outside ([`Note`]): each POST to the
//! receiver ([`CrashPlan::receiver`], an [`HttpSender`] that answers 200) and each attempt record
//! the attempt log accepted, so a test can assert that no delivery was POSTed after its success
//! was recorded.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use relay_shared::auth::ApiKeyRecord;
use relay_shared::call_state::CallRecord;
use relay_shared::delivery::{AttemptRecord, AttemptStatus};
use relay_shared::error::{QueueError, StoreError};
use relay_shared::events::OutboundEvent;
use relay_shared::ids::{AttemptId, EventId, SubscriptionId};
use relay_shared::ports::{
    ApiKeyStore, AttemptLog, AttemptQuery, CallPresence, CallStateStore, Claim, DeadLetterSink,
    DedupeStore, DeliveryQueue, EventFilter, EventLog, EventQuery, HttpSender, IdempotencyStore,
    IdempotentResponse, LeaseStore, OutboundRequest, OutboundResponse, Page, PageRequest,
    PersonViews, PresenceRecord, PresenceStore, QueuedJob, RateLimiter, RateWindow, SendError,
    Stores, SubscriptionStore, Term,
};
use relay_shared::subscription::Subscription;
use tokio::sync::Notify;

/// Where the handler dies at its crash point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// The call is not made.
    Before,
    /// The call is made and takes effect; its result never reaches the handler.
    After,
}

impl Variant {
    pub const BOTH: [Variant; 2] = [Variant::Before, Variant::After];
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Variant::Before => "before",
            Variant::After => "after",
        })
    }
}

/// One store or queue call of a handler run: phase, operation, key kind, occurrence.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Point {
    /// What the caller of [`CrashPlan::run`] named the run (`ingest`, `worker telephony:created`).
    pub phase: String,
    /// `store.method` (`dedupe.claim`, `events.append`) or `queue.send`, `dlq.park`.
    pub op: &'static str,
    /// The kind of key or item, where one operation serves several (empty otherwise).
    pub kind: String,
    /// Which call of this operation and kind in the run (1-based).
    pub nth: u32,
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.phase, self.op)?;
        if !self.kind.is_empty() {
            write!(f, "[{}]", self.kind)?;
        }
        if self.nth > 1 {
            write!(f, " #{}", self.nth)?;
        }
        Ok(())
    }
}

/// What reached the outside, in order (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// The receiver got a POST with this `webhook-id`.
    Post { delivery_id: String },
    /// The attempt log accepted an attempt record of this delivery.
    Recorded {
        delivery_id: String,
        status: AttemptStatus,
    },
}

#[derive(Default)]
struct State {
    phase: String,
    /// Calls per (operation, kind) in the current run.
    counts: HashMap<(&'static str, String), u32>,
    /// Every point any run hit, first hit first, each once.
    points: Vec<Point>,
    /// The same, of the runs that began after the first crash (the recovery's points).
    recovery: Vec<Point>,
    /// The current run began after a crash.
    recovering: bool,
    /// The points to crash at, in order: the first one, once it fired, the next (in a later run).
    armed: std::collections::VecDeque<(Point, Variant)>,
    /// The current run crashed: no further call of it is made or answered.
    dead: bool,
    /// Where the plan crashed so far, in order.
    fired: Vec<(Point, Variant)>,
    timeline: Vec<Note>,
}

/// What the gate does with one call.
enum Action {
    Pass,
    Before,
    After,
    Dead,
}

/// See the module docs.
#[derive(Default)]
pub struct CrashPlan {
    state: Mutex<State>,
    notify: Notify,
}

impl CrashPlan {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Crash at `point` (in the first run that reaches it), `variant`. Armed again, the plan
    /// crashes at each point in turn: the next one counts only once the one before has fired
    /// (so in a later run: a crashed run makes no further call).
    pub fn arm(&self, point: Point, variant: Variant) {
        self.state.lock().unwrap().armed.push_back((point, variant));
    }

    /// Where the plan crashed so far, in order.
    pub fn fired(&self) -> Vec<(Point, Variant)> {
        self.state.lock().unwrap().fired.clone()
    }

    /// Every point the runs so far hit, first hit first.
    pub fn points(&self) -> Vec<Point> {
        self.state.lock().unwrap().points.clone()
    }

    /// Every point hit by the runs that began after the first crash (the recovery), first hit
    /// first: where a second crash can strike.
    pub fn recovery_points(&self) -> Vec<Point> {
        self.state.lock().unwrap().recovery.clone()
    }

    /// What reached the outside so far.
    pub fn timeline(&self) -> Vec<Note> {
        self.state.lock().unwrap().timeline.clone()
    }

    pub fn note(&self, note: Note) {
        self.state.lock().unwrap().timeline.push(note);
    }

    /// Runs one handler invocation as phase `phase`: its output, or `None` when it crashed (the
    /// handler future is dropped at the crash point, unfinished). Runs must not overlap.
    pub async fn run<F: Future>(&self, phase: &str, handler: F) -> Option<F::Output> {
        {
            let mut s = self.state.lock().unwrap();
            s.phase = phase.to_owned();
            s.counts.clear();
            s.dead = false;
            s.recovering = !s.fired.is_empty();
        }
        tokio::select! {
            biased;
            () = self.crashed() => None,
            out = handler => Some(out),
        }
    }

    /// Resolves once the current run has crashed.
    async fn crashed(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.state.lock().unwrap().dead {
                return;
            }
            notified.await;
        }
    }

    fn enter(&self, op: &'static str, kind: String) -> (Action, Point) {
        let mut s = self.state.lock().unwrap();
        let nth = {
            let n = s.counts.entry((op, kind.clone())).or_default();
            *n += 1;
            *n
        };
        let point = Point {
            phase: s.phase.clone(),
            op,
            kind,
            nth,
        };
        if s.dead {
            return (Action::Dead, point);
        }
        if !s.points.contains(&point) {
            s.points.push(point.clone());
        }
        if s.recovering && !s.recovery.contains(&point) {
            s.recovery.push(point.clone());
        }
        let action = match s.armed.front() {
            Some((armed, variant)) if *armed == point => {
                let variant = *variant;
                s.armed.pop_front();
                s.fired.push((point.clone(), variant));
                match variant {
                    Variant::Before => {
                        s.dead = true;
                        Action::Before
                    }
                    Variant::After => Action::After,
                }
            }
            _ => Action::Pass,
        };
        (action, point)
    }

    fn die(&self) {
        self.state.lock().unwrap().dead = true;
        self.notify.notify_waiters();
    }

    fn is_dead(&self) -> bool {
        self.state.lock().unwrap().dead
    }

    /// Every store and queue call goes through here.
    async fn gate<T>(&self, op: &'static str, kind: String, call: impl Future<Output = T>) -> T {
        let (action, _) = self.enter(op, kind);
        match action {
            Action::Dead => std::future::pending().await,
            Action::Before => {
                self.notify.notify_waiters();
                std::future::pending().await
            }
            Action::After => {
                let _effect = call.await;
                self.die();
                std::future::pending().await
            }
            Action::Pass => {
                let out = call.await;
                if self.is_dead() {
                    // A concurrent branch crashed meanwhile: this result is never seen.
                    std::future::pending::<()>().await;
                }
                out
            }
        }
    }

    /// `stores` with every call going through this plan.
    pub fn stores(self: &Arc<Self>, stores: &Stores) -> Stores {
        fn w<T: ?Sized>(plan: &Arc<CrashPlan>, inner: Arc<T>) -> Wrapped<T> {
            Wrapped {
                plan: plan.clone(),
                inner,
            }
        }
        Stores {
            subscriptions: Arc::new(w(self, stores.subscriptions.clone())),
            api_keys: Arc::new(w(self, stores.api_keys.clone())),
            calls: Arc::new(w(self, stores.calls.clone())),
            dedupe: Arc::new(w(self, stores.dedupe.clone())),
            presence: Arc::new(w(self, stores.presence.clone())),
            leases: Arc::new(w(self, stores.leases.clone())),
            attempts: Arc::new(w(self, stores.attempts.clone())),
            events: Arc::new(w(self, stores.events.clone())),
            rate_limits: Arc::new(w(self, stores.rate_limits.clone())),
            idempotency: Arc::new(w(self, stores.idempotency.clone())),
            // Not wrapped: nothing on a delivery's path writes statistics (they are counted from
            // the attempt log when read), so a crash there could only be an API read's.
            stats: stores.stats.clone(),
        }
    }

    /// The delivery queue, its sends (`queue.send`) going through this plan.
    pub fn queue(self: &Arc<Self>, inner: Arc<dyn DeliveryQueue>) -> Arc<dyn DeliveryQueue> {
        Arc::new(Wrapped {
            plan: self.clone(),
            inner,
        })
    }

    /// The dead-letter queue, its parks (`dlq.park`) going through this plan.
    pub fn dead_letters(
        self: &Arc<Self>,
        inner: Arc<dyn DeadLetterSink>,
    ) -> Arc<dyn DeadLetterSink> {
        Arc::new(Wrapped {
            plan: self.clone(),
            inner,
        })
    }

    /// A receiver that answers every POST 200 at once, noting its `webhook-id` on the timeline.
    pub fn receiver(self: &Arc<Self>) -> Arc<dyn HttpSender> {
        self.receiver_failing_first(0)
    }

    /// The same, answering 500 to the first `failures` POSTs of each delivery (the retry path).
    pub fn receiver_failing_first(self: &Arc<Self>, failures: usize) -> Arc<dyn HttpSender> {
        Arc::new(Receiver {
            plan: self.clone(),
            failures,
        })
    }
}

/// The kind of a dedupe key: an attempt claim (`delivery:…`), an ordered job's held record
/// (`delivery:…:held`), or an ingest event key.
pub fn dedupe_kind(key: &str) -> String {
    let kind = match key {
        k if k.starts_with("delivery:") && k.ends_with(":held") => "held",
        k if k.starts_with("delivery:") => "attempt",
        _ => "ingest",
    };
    kind.to_owned()
}

/// An event's kind: its type's family (`telephony`, `call`, `presence`, `webhook`, …).
fn event_kind(event: &OutboundEvent) -> String {
    let t = event.event_type.as_str();
    t.split(':').next().unwrap_or(t).to_owned()
}

struct Wrapped<T: ?Sized> {
    plan: Arc<CrashPlan>,
    inner: Arc<T>,
}

fn none() -> String {
    String::new()
}

struct Receiver {
    plan: Arc<CrashPlan>,
    failures: usize,
}

#[async_trait]
impl HttpSender for Receiver {
    async fn post(&self, request: OutboundRequest) -> Result<OutboundResponse, SendError> {
        let delivery_id = request
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("webhook-id"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let earlier = {
            let s = self.plan.state.lock().unwrap();
            s.timeline
                .iter()
                .filter(|n| matches!(n, Note::Post { delivery_id: d } if *d == delivery_id))
                .count()
        };
        self.plan.note(Note::Post { delivery_id });
        Ok(OutboundResponse {
            status: if earlier < self.failures { 500 } else { 200 },
            retry_after: None,
            body_snippet: "ok".into(),
        })
    }
}

#[async_trait]
impl DeliveryQueue for Wrapped<dyn DeliveryQueue> {
    async fn send(&self, jobs: &[QueuedJob]) -> Result<(), QueueError> {
        self.plan
            .gate("queue.send", none(), self.inner.send(jobs))
            .await
    }

    fn takes_ordered_jobs(&self) -> bool {
        self.inner.takes_ordered_jobs()
    }
}

#[async_trait]
impl DeadLetterSink for Wrapped<dyn DeadLetterSink> {
    async fn park(&self, raw_body: &str) -> Result<(), QueueError> {
        self.plan
            .gate("dlq.park", none(), self.inner.park(raw_body))
            .await
    }
}

#[async_trait]
impl SubscriptionStore for Wrapped<dyn SubscriptionStore> {
    async fn create(&self, sub: &Subscription, max_per_owner: u32) -> Result<(), StoreError> {
        let call = self.inner.create(sub, max_per_owner);
        self.plan.gate("subscriptions.create", none(), call).await
    }
    async fn get(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        let call = self.inner.get(id);
        self.plan.gate("subscriptions.get", none(), call).await
    }
    async fn list_by_owner(
        &self,
        owner_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Subscription>, StoreError> {
        let call = self.inner.list_by_owner(owner_id, page);
        self.plan
            .gate("subscriptions.list_by_owner", none(), call)
            .await
    }
    async fn list_by_org(&self, org_id: &str) -> Result<Vec<Subscription>, StoreError> {
        let call = self.inner.list_by_org(org_id);
        self.plan
            .gate("subscriptions.list_by_org", none(), call)
            .await
    }
    async fn list_all(&self, page: &PageRequest) -> Result<Page<Subscription>, StoreError> {
        let call = self.inner.list_all(page);
        self.plan.gate("subscriptions.list_all", none(), call).await
    }
    async fn update(&self, sub: &Subscription) -> Result<(), StoreError> {
        let call = self.inner.update(sub);
        self.plan.gate("subscriptions.update", none(), call).await
    }
    async fn delete(&self, owner_id: &str, id: &SubscriptionId) -> Result<bool, StoreError> {
        let call = self.inner.delete(owner_id, id);
        self.plan.gate("subscriptions.delete", none(), call).await
    }
}

#[async_trait]
impl ApiKeyStore for Wrapped<dyn ApiKeyStore> {
    async fn put(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let call = self.inner.put(key);
        self.plan.gate("api_keys.put", none(), call).await
    }
    async fn get(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let call = self.inner.get(key_hash);
        self.plan.gate("api_keys.get", none(), call).await
    }
    async fn delete(&self, key_hash: &str) -> Result<bool, StoreError> {
        let call = self.inner.delete(key_hash);
        self.plan.gate("api_keys.delete", none(), call).await
    }
}

#[async_trait]
impl CallStateStore for Wrapped<dyn CallStateStore> {
    async fn get(&self, call_id: &str) -> Result<Option<CallRecord>, StoreError> {
        let call = self.inner.get(call_id);
        self.plan.gate("calls.get", none(), call).await
    }
    async fn put(&self, record: &CallRecord) -> Result<(), StoreError> {
        let call = self.inner.put(record);
        self.plan.gate("calls.put", none(), call).await
    }
}

#[async_trait]
impl DedupeStore for Wrapped<dyn DedupeStore> {
    async fn claim(
        &self,
        key: &str,
        lease: Term,
        expires_at: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let call = self.inner.claim(key, lease, expires_at);
        self.plan.gate("dedupe.claim", dedupe_kind(key), call).await
    }
    async fn claim_attempt(
        &self,
        key: &str,
        record: relay_shared::ports::AttemptRef,
        lease: Term,
        expires_at: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let call = self.inner.claim_attempt(key, record, lease, expires_at);
        self.plan.gate("dedupe.claim", dedupe_kind(key), call).await
    }
    async fn complete(&self, key: &str, expires_at: DateTime<Utc>) -> Result<(), StoreError> {
        let call = self.inner.complete(key, expires_at);
        self.plan
            .gate("dedupe.complete", dedupe_kind(key), call)
            .await
    }
    async fn release(
        &self,
        key: &str,
        holder: Option<relay_shared::ports::AttemptRef>,
    ) -> Result<(), StoreError> {
        let call = self.inner.release(key, holder);
        self.plan
            .gate("dedupe.release", dedupe_kind(key), call)
            .await
    }
    async fn exists(&self, key: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let call = self.inner.exists(key, now);
        self.plan
            .gate("dedupe.exists", dedupe_kind(key), call)
            .await
    }
}

#[async_trait]
impl PresenceStore for Wrapped<dyn PresenceStore> {
    async fn load(&self, org_id: &str) -> Result<Vec<PresenceRecord>, StoreError> {
        let call = self.inner.load(org_id);
        self.plan.gate("presence.load", none(), call).await
    }
    async fn write(&self, org_id: &str, records: &[PresenceRecord]) -> Result<(), StoreError> {
        let call = self.inner.write(org_id, records);
        self.plan.gate("presence.write", none(), call).await
    }
    async fn person(&self, org_id: &str, person_id: &str) -> Result<PersonViews, StoreError> {
        let call = self.inner.person(org_id, person_id);
        self.plan.gate("presence.person", none(), call).await
    }
    async fn calls(
        &self,
        org_id: &str,
        person_ids: &[&str],
    ) -> Result<Vec<CallPresence>, StoreError> {
        let call = self.inner.calls(org_id, person_ids);
        self.plan.gate("presence.calls", none(), call).await
    }
    async fn put_call(&self, org_id: &str, presence: &CallPresence) -> Result<(), StoreError> {
        let call = self.inner.put_call(org_id, presence);
        self.plan.gate("presence.put_call", none(), call).await
    }
}

#[async_trait]
impl LeaseStore for Wrapped<dyn LeaseStore> {
    async fn acquire(&self, name: &str, holder: &str, term: Term) -> Result<bool, StoreError> {
        let call = self.inner.acquire(name, holder, term);
        self.plan.gate("leases.acquire", none(), call).await
    }
    async fn release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let call = self.inner.release(name, holder);
        self.plan.gate("leases.release", none(), call).await
    }
}

#[async_trait]
impl AttemptLog for Wrapped<dyn AttemptLog> {
    async fn record(
        &self,
        attempt: &AttemptRecord,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let call = async {
            let recorded = self.inner.record(attempt, expires_at).await;
            if recorded.is_ok() {
                self.plan.note(Note::Recorded {
                    delivery_id: attempt.delivery_id.clone(),
                    status: attempt.status,
                });
            }
            recorded
        };
        let kind = match attempt.status {
            AttemptStatus::Succeeded => "succeeded",
            AttemptStatus::Failed => "failed",
            AttemptStatus::Skipped => "skipped",
        };
        self.plan.gate("attempts.record", kind.into(), call).await
    }
    async fn list(
        &self,
        query: AttemptQuery,
        page: &PageRequest,
    ) -> Result<Page<AttemptRecord>, StoreError> {
        let call = self.inner.list(query, page);
        self.plan.gate("attempts.list", none(), call).await
    }
    async fn get(
        &self,
        subscription_id: &SubscriptionId,
        id: &AttemptId,
    ) -> Result<Option<AttemptRecord>, StoreError> {
        let call = self.inner.get(subscription_id, id);
        self.plan.gate("attempts.get", none(), call).await
    }
}

#[async_trait]
impl EventLog for Wrapped<dyn EventLog> {
    async fn append(
        &self,
        event: &OutboundEvent,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let call = self.inner.append(event, expires_at);
        self.plan
            .gate("events.append", event_kind(event), call)
            .await
    }
    async fn list(
        &self,
        org_id: &str,
        query: EventQuery,
    ) -> Result<Vec<OutboundEvent>, StoreError> {
        let call = self.inner.list(org_id, query);
        self.plan.gate("events.list", none(), call).await
    }
    async fn get(&self, org_id: &str, id: &EventId) -> Result<Option<OutboundEvent>, StoreError> {
        let call = self.inner.get(org_id, id);
        self.plan.gate("events.get", none(), call).await
    }
    async fn page(
        &self,
        org_id: &str,
        filter: EventFilter,
        page: &PageRequest,
    ) -> Result<Page<OutboundEvent>, StoreError> {
        let call = self.inner.page(org_id, filter, page);
        self.plan.gate("events.page", none(), call).await
    }
}

#[async_trait]
impl RateLimiter for Wrapped<dyn RateLimiter> {
    async fn try_acquire_named(&self, name: &str, window: RateWindow) -> Result<bool, StoreError> {
        let call = self.inner.try_acquire_named(name, window);
        self.plan.gate("rate_limits.acquire", none(), call).await
    }
    async fn try_acquire(
        &self,
        subscription_id: &SubscriptionId,
        window: RateWindow,
    ) -> Result<bool, StoreError> {
        let call = self.inner.try_acquire(subscription_id, window);
        self.plan.gate("rate_limits.acquire", none(), call).await
    }
    async fn give_back(
        &self,
        subscription_id: &SubscriptionId,
        window: RateWindow,
    ) -> Result<(), StoreError> {
        let call = self.inner.give_back(subscription_id, window);
        self.plan.gate("rate_limits.give_back", none(), call).await
    }
    async fn reserve_slots(
        &self,
        subscription_id: &SubscriptionId,
        earliest: DateTime<Utc>,
        interval: chrono::Duration,
        count: u32,
    ) -> Result<DateTime<Utc>, StoreError> {
        let call = self
            .inner
            .reserve_slots(subscription_id, earliest, interval, count);
        self.plan
            .gate("rate_limits.reserve_slots", none(), call)
            .await
    }
    async fn next_free_slot(
        &self,
        subscription_id: &SubscriptionId,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let call = self.inner.next_free_slot(subscription_id);
        self.plan
            .gate("rate_limits.next_free_slot", none(), call)
            .await
    }
}

#[async_trait]
impl IdempotencyStore for Wrapped<dyn IdempotencyStore> {
    async fn get(
        &self,
        scope_key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotentResponse>, StoreError> {
        let call = self.inner.get(scope_key, now);
        self.plan.gate("idempotency.get", none(), call).await
    }
    async fn put(
        &self,
        scope_key: &str,
        response: &IdempotentResponse,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let call = self.inner.put(scope_key, response, expires_at);
        self.plan.gate("idempotency.put", none(), call).await
    }
}
