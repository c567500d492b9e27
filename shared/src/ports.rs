//! Ports: every piece of I/O the handlers do goes through one of these traits, so the same handler
//! code runs on Lambda (AWS adapters), in the local stack and in tests (in-memory adapters).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, DurationRound, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::ApiKeyRecord;
pub use crate::call_presence::CallPresence;
use crate::call_state::CallRecord;
use crate::delivery::{AttemptRecord, AttemptStatus, DeliveryJob};
use crate::error::{QueueError, StoreError};
use crate::events::{EventType, OutboundEvent};
use crate::ids::{AttemptId, EventId, SubscriptionId};
use crate::stats::{Materialised, StatsBucket};
use crate::subscription::Subscription;
use crate::webex_api;

/// A page of results and the opaque cursor of the next page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PageRequest {
    pub limit: u32,
    pub cursor: Option<String>,
}

impl PageRequest {
    /// How many items the page holds at most (a limit of 0 is read as 1).
    pub fn size(&self) -> usize {
        self.limit.max(1) as usize
    }
}

impl<T> Page<T> {
    /// The page of a listing that read one item more than `size` (when there was one): at most
    /// `size` items and, when more follow, the cursor `cursor_of` makes from the last item kept.
    pub fn from_lookahead(
        mut items: Vec<T>,
        size: usize,
        cursor_of: impl FnOnce(&T) -> Result<String, StoreError>,
    ) -> Result<Self, StoreError> {
        let next_cursor = if items.len() > size {
            items.truncate(size);
            items.last().map(cursor_of).transpose()?
        } else {
            None
        };
        Ok(Self { items, next_cursor })
    }

    /// The same page with every item converted by `f`.
    pub fn try_map<U>(
        self,
        f: impl FnMut(&T) -> Result<U, StoreError>,
    ) -> Result<Page<U>, StoreError> {
        Ok(Page {
            items: self.items.iter().map(f).collect::<Result<_, _>>()?,
            next_cursor: self.next_cursor,
        })
    }
}

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The time a lease or a dedupe claim is asked for: from `from` (when it is taken) until `until`.
/// Another holder's term counts only while its `until` is after this one's `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl Term {
    pub fn new(from: DateTime<Utc>, until: DateTime<Utc>) -> Self {
        Self { from, until }
    }

    /// Is this term still running at `at`?
    pub fn runs_at(&self, at: DateTime<Utc>) -> bool {
        self.until > at
    }
}

/// Subscriptions. Every write is conditional: creation checks the owner's limit atomically, updates
/// check `version` (and store `version + 1`).
#[async_trait]
pub trait SubscriptionStore: Send + Sync {
    /// Stores a new subscription unless its owner already has `max_per_owner`
    /// (`StoreError::LimitReached`); two racing creates can never exceed the limit.
    async fn create(&self, sub: &Subscription, max_per_owner: u32) -> Result<(), StoreError>;
    async fn get(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError>;
    /// The owner's subscriptions, oldest first.
    async fn list_by_owner(
        &self,
        owner_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Subscription>, StoreError>;
    /// Every subscription bound to the org (fan-out).
    async fn list_by_org(&self, org_id: &str) -> Result<Vec<Subscription>, StoreError>;
    /// Every subscription of every owner, one page at a time, in no promised order: operator
    /// sweeps only (`relayctl seal-secrets`), never a request path (on DynamoDB it is a Scan).
    /// Each subscription that exists for the whole sweep is listed exactly once.
    async fn list_all(&self, page: &PageRequest) -> Result<Page<Subscription>, StoreError>;
    /// Replaces the stored subscription if its version is still `sub.version - 1`
    /// (`StoreError::Conflict` otherwise, `NotFound` if it was deleted).
    async fn update(&self, sub: &Subscription) -> Result<(), StoreError>;
    /// Deletes the owner's subscription; `false` if there was none.
    async fn delete(&self, owner_id: &str, id: &SubscriptionId) -> Result<bool, StoreError>;
}

#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Stores a key record; `Conflict` if that hash exists.
    async fn put(&self, key: &ApiKeyRecord) -> Result<(), StoreError>;
    async fn get(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError>;
    /// `false` if there was no such key.
    async fn delete(&self, key_hash: &str) -> Result<bool, StoreError>;
}

/// Per-call lifecycle state, guarded by optimistic concurrency.
#[async_trait]
pub trait CallStateStore: Send + Sync {
    async fn get(&self, call_id: &str) -> Result<Option<CallRecord>, StoreError>;
    /// Writes `record` if the stored version is `record.version - 1` (0 meaning "absent").
    async fn put(&self, record: &CallRecord) -> Result<(), StoreError>;
}

/// The outcome of a claim ([`DedupeStore`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First time (or a previous claim's memory ran out): go ahead.
    Claimed,
    /// A previous holder's lease ran out unsettled and this claim took it over: go ahead, but the
    /// previous holder may have got past its work before it crashed (the worker's retry path:
    /// attempt n's successor re-sent, its record not written), which the caller may check for.
    TakenOver,
    /// Already done: completed, or the attempt record the claim names exists.
    Done,
    /// Another holder's claim is live and not settled yet.
    InProgress,
}

/// The attempt-log record an attempt claim names ([`AttemptLog::get`] of `subscription_id`,
/// `attempt_id`): the record the claimed attempt will leave. Once it exists the claim counts as
/// done, so settling an attempt is that one write, with no "claim done" write after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptRef {
    pub subscription_id: SubscriptionId,
    pub attempt_id: AttemptId,
}

/// Claims of work done at most once (the delivery worker's attempts, an ordered job's held
/// records): claim → (work) → settled (the named record written, or [`DedupeStore::complete`]),
/// or released on failure so a retry can claim. A claim is remembered until its `expires_at`.
///
/// Meeting another holder's claim: done (completed, or any record it names exists) → `Done`;
/// else its lease still running → `InProgress`; else (the holder crashed unsettled, or is still
/// running past its lease) it is taken over (`TakenOver`), conditionally on the claim seen, so of
/// two copies taking over the same claim one wins. A take-over keeps the names the claim had: a late record
/// of an overtaken holder still settles it. After taking over, the earlier holders' records are
/// read again, and `Done` is returned if one was written meanwhile.
#[async_trait]
pub trait DedupeStore: Send + Sync {
    /// Claims `key` for `lease`, naming no record: it is settled only by `complete`.
    async fn claim(
        &self,
        key: &str,
        lease: Term,
        expires_at: DateTime<Utc>,
    ) -> Result<Claim, StoreError>;
    /// Claims `key` for `lease`, naming `record`, the attempt record whose write settles it.
    async fn claim_attempt(
        &self,
        key: &str,
        record: AttemptRef,
        lease: Term,
        expires_at: DateTime<Utc>,
    ) -> Result<Claim, StoreError>;
    /// Marks `key` done without a record: an ordered job's held record, or the fallback when
    /// the attempt record cannot be written (the made attempt is still remembered).
    async fn complete(&self, key: &str, expires_at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Gives up a pending claim held by `holder` (the record its claim named; `None` for a
    /// claim naming none). A done key stays done, and a claim another copy has taken over since
    /// stays that copy's.
    async fn release(&self, key: &str, holder: Option<AttemptRef>) -> Result<(), StoreError>;
    /// Is there a live claim on `key` at `now`, in any state (pending, done)? One strongly
    /// consistent read; the worker's take-over path only ([`Claim::TakenOver`]).
    async fn exists(&self, key: &str, now: DateTime<Utc>) -> Result<bool, StoreError>;
}

/// Last-known presence of one person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceRecord {
    pub person_id: String,
    /// The fields the diff compares (by default just `status`), as a fingerprint string.
    pub fingerprint: String,
    /// Monotonic version (the poll cycle's time in ms); a write never lowers it.
    pub version: u64,
    /// The person's sent item (the presence contract's fields and `PRESENCE_EXTRA_FIELDS`) as
    /// compact JSON, as the poller last recorded it: what presence from calls
    /// (`call_presence`) emits with `status` changed. `None` in records written before it was kept.
    pub item: Option<String>,
}

/// Both views of one person: the poller's record and the ingest's call presence (each if any).
pub type PersonViews = (Option<PresenceRecord>, Option<CallPresence>);

#[async_trait]
pub trait PresenceStore: Send + Sync {
    /// Every record of the org, in one query.
    async fn load(&self, org_id: &str) -> Result<Vec<PresenceRecord>, StoreError>;
    /// Writes the changed records (batched by the adapter).
    async fn write(&self, org_id: &str, records: &[PresenceRecord]) -> Result<(), StoreError>;
    /// One person's record and the ingest's call presence of them, in one consistent read
    /// (presence from calls, `call_presence`).
    async fn person(&self, org_id: &str, person_id: &str) -> Result<PersonViews, StoreError>;
    /// The call presences of these people (those that have one), consistently read: what the
    /// poller checks for the people whose status changed.
    async fn calls(
        &self,
        org_id: &str,
        person_ids: &[&str],
    ) -> Result<Vec<CallPresence>, StoreError>;
    /// Writes `call` if the stored one has version `call.version - 1` (none for version 1), else
    /// `StoreError::Conflict`.
    async fn put_call(&self, org_id: &str, call: &CallPresence) -> Result<(), StoreError>;
}

/// A named lease with expiry, so two pollers never run at once.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes the lease for `term` if it is free, expired at `term.from`, or already held by
    /// `holder`.
    async fn acquire(&self, name: &str, holder: &str, term: Term) -> Result<bool, StoreError>;
    async fn release(&self, name: &str, holder: &str) -> Result<(), StoreError>;
}

/// Which attempts to list: one subscription's, optionally only those with one status, of one
/// event type, and made in `[since, until)`; newest first unless `oldest_first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptQuery {
    pub subscription_id: SubscriptionId,
    pub status: Option<AttemptStatus>,
    pub event_type: Option<EventType>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Oldest (smallest id, i.e. earliest `at`) first: the stats' catch-up from its watermark
    /// (`crate::stats`), which materialises what it has read past page by page.
    pub oldest_first: bool,
}

impl AttemptQuery {
    /// Every attempt of the subscription.
    pub fn of(subscription_id: SubscriptionId) -> Self {
        Self {
            subscription_id,
            status: None,
            event_type: None,
            since: None,
            until: None,
            oldest_first: false,
        }
    }

    /// The range of attempt ids (keys) of the window, `None` without one: attempt ids carry the
    /// attempt's time (`at`, in ms). A cursor outside it belongs to another window.
    pub fn id_range(&self) -> Option<(String, String)> {
        if self.since.is_none() && self.until.is_none() {
            return None;
        }
        let since = self.since.unwrap_or(DateTime::UNIX_EPOCH);
        let until = self.until.unwrap_or_else(crate::ids::last_id_instant);
        Some(crate::ids::ulid_range(AttemptId::PREFIX, since, until))
    }

    /// Does `attempt` pass the filters (the subscription is the adapter's to check)?
    pub fn matches(&self, attempt: &AttemptRecord) -> bool {
        self.status.is_none_or(|s| attempt.status == s)
            && self.event_type.is_none_or(|t| attempt.event_type == t)
            && self.since.is_none_or(|t| attempt.at >= t)
            && self.until.is_none_or(|t| attempt.at < t)
    }

    /// Only the attempts with `status`.
    pub fn only(self, status: AttemptStatus) -> Self {
        Self {
            status: Some(status),
            ..self
        }
    }
}

/// The delivery attempt log (records expire after a TTL).
#[async_trait]
pub trait AttemptLog: Send + Sync {
    async fn record(
        &self,
        attempt: &AttemptRecord,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Newest first (oldest first with `query.oldest_first`); a page's cursor goes on in the
    /// same order.
    async fn list(
        &self,
        query: AttemptQuery,
        page: &PageRequest,
    ) -> Result<Page<AttemptRecord>, StoreError>;
    /// One attempt of the subscription (`None`: none, or expired).
    async fn get(
        &self,
        subscription_id: &SubscriptionId,
        id: &AttemptId,
    ) -> Result<Option<AttemptRecord>, StoreError>;
}

/// Outbound events kept for replay (records expire after a TTL).
#[async_trait]
pub trait EventLog: Send + Sync {
    async fn append(
        &self,
        event: &OutboundEvent,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The org's events that `query` covers, at most `query.limit`, roughly oldest first. (An
    /// event id's own timestamp may precede `created_at` by up to a day: ingest stamps ids with
    /// Webex's `eventTimestamp`.)
    async fn list(&self, org_id: &str, query: EventQuery)
        -> Result<Vec<OutboundEvent>, StoreError>;
    /// One logged event of the org (`None`: not logged, or expired).
    async fn get(&self, org_id: &str, id: &EventId) -> Result<Option<OutboundEvent>, StoreError>;
    /// The org's events that `filter` lets through, newest (largest id) first, one page at a
    /// time (`GET /api/hooks/events`).
    async fn page(
        &self,
        org_id: &str,
        filter: EventFilter,
        page: &PageRequest,
    ) -> Result<Page<OutboundEvent>, StoreError>;
}

/// Which of an org's logged events a paged listing shows: optionally only one type, and only
/// those whose `created_at` is in `[since, until)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventFilter {
    pub event_type: Option<EventType>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// How much earlier than its `createdAt` an event id's timestamp may be: ingest stamps ids with
/// Webex's `eventTimestamp` (so a retried webhook keeps its id), which precedes the ingest time by
/// Webex's delivery delay, retries included.
pub const EVENT_ID_MAY_PRECEDE_CREATION: chrono::Duration = chrono::Duration::hours(24);
/// And how much later (clock skew between Webex and us).
pub const EVENT_ID_MAY_FOLLOW_CREATION: chrono::Duration = chrono::Duration::minutes(5);

/// The most stored items one page of a paged log listing ([`EventLog::page`],
/// [`AttemptLog::list`]) reads, whatever its filters: a filter that matches little stops there
/// with a shorter page (even an empty one) and a cursor to go on from, rather than reading the
/// whole partition in one request.
pub const PAGE_SCAN_BUDGET: usize = 500;

impl EventFilter {
    /// The range of event ids (keys) the window's events can have, `None` without a window:
    /// widened by how far an id's timestamp may stray from `createdAt`, which is then checked
    /// exactly ([`matches`](Self::matches)). A cursor outside it belongs to another window.
    pub fn id_range(&self) -> Option<(String, String)> {
        if self.since.is_none() && self.until.is_none() {
            return None;
        }
        let since = self
            .since
            .and_then(|t| t.checked_sub_signed(EVENT_ID_MAY_PRECEDE_CREATION))
            .unwrap_or(DateTime::UNIX_EPOCH);
        let until = self
            .until
            .and_then(|t| t.checked_add_signed(EVENT_ID_MAY_FOLLOW_CREATION))
            .unwrap_or_else(crate::ids::last_id_instant);
        Some(crate::ids::ulid_range(EventId::PREFIX, since, until))
    }

    pub fn matches(&self, event: &OutboundEvent) -> bool {
        self.event_type.is_none_or(|t| event.event_type == t)
            && self.since.is_none_or(|t| event.created_at >= t)
            && self.until.is_none_or(|t| event.created_at < t)
    }
}

/// Which of an org's logged events to list (replay): those whose `created_at` is in
/// `[since, until)`, at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventQuery {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub limit: u32,
}

impl EventQuery {
    pub fn new(since: DateTime<Utc>, until: DateTime<Utc>, limit: u32) -> Self {
        Self {
            since,
            until,
            limit,
        }
    }

    /// A query that cannot match anything (no room, or an empty window).
    pub fn is_empty(&self) -> bool {
        self.limit == 0 || self.since >= self.until
    }

    /// Was `event` created inside the window?
    pub fn covers(&self, event: &OutboundEvent) -> bool {
        event.created_at >= self.since && event.created_at < self.until
    }
}

/// The materialised part of per-webhook delivery statistics (`crate::stats`): five-minute
/// buckets counted from the attempt log once closed, written once by the API's read
/// (`GET /api/hooks/webhooks/{id}/stats`), and a watermark up to which they are. Nothing is written
/// per attempt. Buckets expire after `stats::BUCKET_TTL`.
#[async_trait]
pub trait StatsStore: Send + Sync {
    /// The webhook's watermark and its materialised buckets that start at or after `since`,
    /// oldest first (only those with attempts exist), in one read.
    async fn materialised(
        &self,
        subscription_id: &SubscriptionId,
        since: DateTime<Utc>,
    ) -> Result<Materialised, StoreError>;
    /// Stores `buckets` (closed, whole: a rewrite puts the same figures), then moves the
    /// watermark to `upto` unless it is there or later already (never back). Buckets first, so
    /// a crash in between leaves a watermark that does not cover them (readers recount them).
    async fn materialise(
        &self,
        subscription_id: &SubscriptionId,
        buckets: &[StatsBucket],
        upto: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

/// Named fixed-window counters shared by every instance: a subscription's deliveries (the
/// worker), and the API's quotas (`test#…`, `replay#…`, per webhook and per tenant).
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one unit against the counter `name` in `window`; `false` when `window.limit` were
    /// already counted in it.
    async fn try_acquire_named(&self, name: &str, window: RateWindow) -> Result<bool, StoreError>;

    /// Counts one delivery of `subscription_id` in `window` (the counter named by its id).
    async fn try_acquire(
        &self,
        subscription_id: &SubscriptionId,
        window: RateWindow,
    ) -> Result<bool, StoreError> {
        self.try_acquire_named(&subscription_id.to_string(), window)
            .await
    }

    /// Gives back one unit counted by [`RateLimiter::try_acquire`] in `window` (a duplicate
    /// copy that made no attempt: its token is not spent). One conditional decrement, never
    /// below zero; a window already expired or gone is left as it is.
    async fn give_back(
        &self,
        subscription_id: &SubscriptionId,
        window: RateWindow,
    ) -> Result<(), StoreError>;

    /// Reserves `count` consecutive delivery slots of `subscription_id`, the first at or after
    /// `earliest`, `interval` apart (one minute / the rate limit), and returns the first: the n-th
    /// job waiting for the rate limit gets the n-th slot and comes back once, at it
    /// (docs/delivery-worker.md, "Rate limit"). Atomic across instances.
    async fn reserve_slots(
        &self,
        subscription_id: &SubscriptionId,
        earliest: DateTime<Utc>,
        interval: chrono::Duration,
        count: u32,
    ) -> Result<DateTime<Utc>, StoreError>;

    /// The slot the next reservation of `subscription_id` would get (`None`: none reserved): its
    /// backlog of slotted jobs ends there.
    async fn next_free_slot(
        &self,
        subscription_id: &SubscriptionId,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;
}

/// One fixed rate-limit window (a whole minute) and how many deliveries it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateWindow {
    pub start: DateTime<Utc>,
    pub limit: u32,
}

impl RateWindow {
    pub const LENGTH: chrono::Duration = chrono::Duration::minutes(1);

    pub fn new(start: DateTime<Utc>, limit: u32) -> Self {
        Self { start, limit }
    }

    /// The window `now` falls in.
    pub fn containing(now: DateTime<Utc>, limit: u32) -> Self {
        Self {
            start: now.duration_trunc(Self::LENGTH).unwrap_or(now),
            limit,
        }
    }

    /// When the next window starts.
    pub fn end(&self) -> DateTime<Utc> {
        self.start + Self::LENGTH
    }
}

/// A stored API response for `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdempotentResponse {
    pub status: u16,
    pub body: String,
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    async fn get(
        &self,
        scope_key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotentResponse>, StoreError>;
    /// Stores the first response; `Conflict` if one is stored already.
    async fn put(
        &self,
        scope_key: &str,
        response: &IdempotentResponse,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

/// A job to enqueue, visible after `delay_seconds` (0–900).
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedJob {
    pub job: DeliveryJob,
    pub delay_seconds: u32,
}

impl QueuedJob {
    /// A job visible at once.
    pub fn now(job: DeliveryJob) -> Self {
        Self {
            job,
            delay_seconds: 0,
        }
    }
}

/// The delivery queue. `send` returns only when every job is accepted, retrying refused entries;
/// otherwise an error, and the caller must not acknowledge its input.
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    async fn send(&self, jobs: &[QueuedJob]) -> Result<(), QueueError>;

    /// Can this queue take per-call-ordered jobs (`DeliveryJob::is_ordered`)? A [`RoutedQueue`]
    /// only with an ordered queue configured; the API refuses `"ordering": "per-call"` otherwise,
    /// rather than let every later event of the org fail at fan-out (docs/ordering.md).
    fn takes_ordered_jobs(&self) -> bool {
        true
    }
}

/// The delivery queue that fan-out, the API and redrive send to: the jobs of per-call-ordered
/// webhooks (`DeliveryJob::is_ordered`) go to the ordered (FIFO) queue, the others to the
/// standard one, each in the order given (docs/ordering.md).
pub struct RoutedQueue {
    pub standard: Arc<dyn DeliveryQueue>,
    /// `None` where no ordered queue is configured: an ordered job is then refused, never
    /// delivered unordered.
    pub ordered: Option<Arc<dyn DeliveryQueue>>,
}

#[async_trait]
impl DeliveryQueue for RoutedQueue {
    async fn send(&self, jobs: &[QueuedJob]) -> Result<(), QueueError> {
        let (ordered, standard): (Vec<QueuedJob>, Vec<QueuedJob>) =
            jobs.iter().cloned().partition(|q| q.job.is_ordered());
        if !standard.is_empty() {
            self.standard.send(&standard).await?;
        }
        if ordered.is_empty() {
            return Ok(());
        }
        match &self.ordered {
            Some(queue) => queue.send(&ordered).await,
            None => Err(QueueError::Unavailable(
                "a per-call-ordered job, but no ordered queue is configured (ORDERED_QUEUE_URL)"
                    .into(),
            )),
        }
    }

    fn takes_ordered_jobs(&self) -> bool {
        self.ordered.is_some()
    }
}

/// A message taken off a queue by a consumer that polls (the local stack's worker, redrive).
#[derive(Debug, Clone)]
pub struct ReceivedJob {
    /// The raw message body (parsed by the worker, so a bad one can be dead-lettered).
    pub body: String,
    pub receipt: String,
    /// How many times the queue has handed this message out.
    pub receive_count: u32,
    /// The sender's trace context (message attributes `traceparent`, `tracestate`, `baggage`;
    /// empty when it sent none). The worker's job span continues it (crate::telemetry).
    pub trace: crate::telemetry::TraceCarrier,
}

/// The consuming side of a queue (used by the local stack's worker loop and by DLQ redrive).
#[async_trait]
pub trait QueueConsumer: Send + Sync {
    async fn receive(&self, max: u32, wait_seconds: u32) -> Result<Vec<ReceivedJob>, QueueError>;
    async fn ack(&self, receipt: &str) -> Result<(), QueueError>;
    /// Makes the message visible again after `seconds` (a negative ack).
    async fn retry_after(&self, receipt: &str, seconds: u32) -> Result<(), QueueError>;
    /// How many messages the queue holds — visible, in flight and delayed (SQS: its three
    /// approximations summed, `SqsQueue::approximate_depth`): the dead-letter depth of
    /// `GET /api/hooks/dlq`.
    async fn depth(&self) -> Result<u64, QueueError>;
}

/// Where jobs that exhausted their attempts (or cannot be parsed) are parked: the producing side of
/// the dead-letter queue. (Its consuming side, drained by redrive, is a [`QueueConsumer`].)
#[async_trait]
pub trait DeadLetterSink: Send + Sync {
    async fn park(&self, raw_body: &str) -> Result<(), QueueError>;
}

/// An outbound HTTP request for a delivery.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    /// The body bytes, shared cheaply between retries.
    pub body: Arc<str>,
    pub timeout: std::time::Duration,
}

/// What came back.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundResponse {
    pub status: u16,
    pub retry_after: Option<String>,
    /// Up to the configured cap (first KiB is stored in the attempt log).
    pub body_snippet: String,
}

/// Why no response came back.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{class:?}: {message}")]
pub struct SendError {
    pub class: crate::delivery::ErrorClass,
    pub message: String,
    /// A permanent failure is not retried (e.g. an SSRF-blocked target).
    pub permanent: bool,
}

#[async_trait]
pub trait HttpSender: Send + Sync {
    async fn post(&self, request: OutboundRequest) -> Result<OutboundResponse, SendError>;
}

/// One page of `GET /v1/people`.
#[derive(Debug, Clone, PartialEq)]
pub struct PeoplePage {
    pub items: Vec<crate::webex::Person>,
    /// The `Link: rel="next"` URL, if any.
    pub next: Option<String>,
}

/// Webex's REST API, as far as the relay uses it.
#[async_trait]
pub trait WebexClient: Send + Sync {
    /// `GET /v1/people` (first page from the query; later pages from `next`).
    async fn list_people(
        &self,
        query: &[(String, String)],
        next: Option<&str>,
    ) -> Result<PeoplePage, webex_api::WebexApiError>;
    async fn list_registrations(
        &self,
    ) -> Result<Vec<webex_api::WebexRegistration>, webex_api::WebexApiError>;
    async fn create_registration(
        &self,
        req: &webex_api::RegistrationCreate,
    ) -> Result<webex_api::WebexRegistration, webex_api::WebexApiError>;
    async fn update_registration(
        &self,
        id: &str,
        req: &webex_api::RegistrationUpdate,
    ) -> Result<webex_api::WebexRegistration, webex_api::WebexApiError>;
    async fn get_registration(
        &self,
        id: &str,
    ) -> Result<webex_api::WebexRegistration, webex_api::WebexApiError>;
    async fn delete_registration(&self, id: &str) -> Result<(), webex_api::WebexApiError>;
    /// `GET /v1/people/me`: who the token is (its `type` tells a bot from a person).
    async fn me(&self) -> Result<crate::webex::Person, webex_api::WebexApiError> {
        Err(not_supported("GET /people/me"))
    }
    /// `GET /v1/telephony/webhookInterestRegistrations` (`None`: Webex answered 404, none exists).
    /// Admin only (`spark-admin:calls_read`).
    async fn get_interest_registration(
        &self,
    ) -> Result<Option<webex_api::InterestRegistration>, webex_api::WebexApiError> {
        Err(not_supported("GET /telephony/webhookInterestRegistrations"))
    }
    /// `POST /v1/telephony/webhookInterestRegistrations`: creates or renews (an upsert, 204).
    async fn put_interest_registration(
        &self,
        _req: &webex_api::InterestRegistrationUpdate,
    ) -> Result<(), webex_api::WebexApiError> {
        Err(not_supported(
            "POST /telephony/webhookInterestRegistrations",
        ))
    }
}

/// What the default methods of [`WebexClient`] answer, so fakes need only what their tests use.
fn not_supported(op: &str) -> webex_api::WebexApiError {
    webex_api::WebexApiError::Status {
        status: 501,
        message: format!("{op} is not implemented by this client"),
    }
}

/// Every store the handlers use, as shared trait objects: built once per cold start.
#[derive(Clone)]
pub struct Stores {
    pub subscriptions: Arc<dyn SubscriptionStore>,
    pub api_keys: Arc<dyn ApiKeyStore>,
    pub calls: Arc<dyn CallStateStore>,
    pub dedupe: Arc<dyn DedupeStore>,
    pub presence: Arc<dyn PresenceStore>,
    pub leases: Arc<dyn LeaseStore>,
    pub attempts: Arc<dyn AttemptLog>,
    pub events: Arc<dyn EventLog>,
    pub rate_limits: Arc<dyn RateLimiter>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub stats: Arc<dyn StatsStore>,
}

/// What every function core is built on (ingest, the worker, the API, the presence poller): the
/// stores, the delivery queue its jobs go to, and the clock. Built once per cold start.
#[derive(Clone)]
pub struct CorePorts {
    pub stores: Stores,
    /// Where delivery jobs are sent (fan-out, re-sends, tests, replays).
    pub queue: Arc<dyn DeliveryQueue>,
    pub clock: Arc<dyn Clock>,
}
