//! The ingest core over the ports: size → signature → parse → freshness → call state (with the
//! derived call events it implies, docs/call-events.md) and event log → one delivery job per
//! matching subscription, for the raw event and for each call event. Any storage or queue failure
//! answers 503, so Webex's retry succeeds; nothing is acknowledged that is not queued.
//!
//! No dedupe record of its own: the event id is derived from the Webex event
//! (`EventId::derived`), so a redelivery is queued again under the same delivery ids and the
//! delivery worker's attempt claim collapses it (docs/telephony-ingest.md, step 5).

use std::sync::Arc;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::json;

use relay_shared::call_events::{self, Applied};
use relay_shared::call_presence::{self, Transition};
use relay_shared::call_state::{CallEventMark, CallRecord};
use relay_shared::delivery::CallPosition;
use relay_shared::error::{QueueError, StoreError};
use relay_shared::events::{rfc3339_millis, telephony_body, EventType, OutboundEvent};
use relay_shared::ids::EventId;
use relay_shared::metrics::{Emf, Unit};
use relay_shared::ports::{CorePorts, QueuedJob};
use relay_shared::retry::Backoff;
use relay_shared::subscription::Subscription;
use relay_shared::webex::{TelephonyEnvelope, Verified, TELEPHONY_RESOURCE};

use crate::config::{IngestConfig, WebhookAuth};
use crate::envelope::{dedupe_key, event_millis, parse_envelope, Unparsed};
use crate::response::{truncate, IngestOutcome, IngestResponse};
use crate::subscriptions::SubscriptionsCache;
use relay_shared::fan_out;

/// The wait before re-reading a call record whose conditional write lost a race (5, 10, 20 ms…).
const CALL_WRITE_BACKOFF: Backoff = Backoff::new(std::time::Duration::from_millis(5));

/// A failure before the jobs are queued: the caller answers 503 (Webex retries).
#[derive(Debug, thiserror::Error)]
enum Unavailable {
    #[error("call state: {0}")]
    CallState(StoreError),
    #[error("subscriptions: {0}")]
    Subscriptions(StoreError),
    #[error("event log: {0}")]
    EventLog(StoreError),
    #[error("delivery queue: {0}")]
    Queue(QueueError),
}

/// What one event's fan-out queued.
struct Deliveries {
    /// The derived call events it caused (queued to the subscriptions that list them).
    call_events: Vec<EventType>,
    /// Every job queued.
    total: usize,
    /// The call state already held this Webex event (a redelivery): queued again, answered
    /// `duplicate`.
    already_recorded: bool,
}

/// The ingest core, over the ports.
pub struct Ingest {
    ports: CorePorts,
    config: IngestConfig,
    metrics: MetricsSink,
    /// The org's subscriptions, per warm container (`SUBSCRIPTIONS_CACHE_SECONDS`).
    subscriptions: SubscriptionsCache,
}

/// Where EMF metric lines go (stdout in Lambda, where CloudWatch Logs picks them up).
pub type MetricsSink = Arc<dyn Fn(String) + Send + Sync>;

/// The `Function` dimension of the ingest's metrics.
const METRICS_FUNCTION: &str = "telephony-ingest";
/// Counts events answered `stale` (property `reason`: `older_than_dedupe_window`, `in_the_future`).
pub const STALE_METRIC: &str = "IngestStaleEvent";
/// Counts events relayed but not kept in the event log (property `reason`: `too_large`).
pub const NOT_LOGGED_METRIC: &str = "IngestEventNotLogged";
/// Counts events kept in the event log but not relayed (property `reason`: `too_large`).
pub const PARKED_METRIC: &str = "IngestEventParked";
/// Counts requests answered (one EMF line per request, property `outcome`).
pub const REQUESTS_METRIC: &str = "IngestRequests";
/// Counts events relayed (outcome `queued`, or `duplicate`: fanned out to the delivery queue,
/// possibly to no one). A redelivery is queued again, so it counts again (Webex redelivers only
/// after a failure or a timeout; nothing tells a first copy that failed after its call-state
/// write from one whose jobs were queued).
pub const EVENTS_METRIC: &str = "IngestEvents";
/// Counts requests answered 5xx (the `IngestServerErrorsAlarm`): Webex retries them, but many in a
/// row mean the store or the queue is down.
pub const SERVER_ERROR_METRIC: &str = "IngestServerError";
/// How far ahead of the ingest's clock an event may be dated (Webex's clock against ours).
pub const MAX_CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

impl Ingest {
    pub fn new(ports: CorePorts, config: IngestConfig) -> Self {
        Self {
            subscriptions: SubscriptionsCache::new(config.subscriptions_cache_ttl),
            ports,
            config,
            metrics: Arc::new(|line| println!("{line}")),
        }
    }

    /// The same, its metric lines given to `sink` instead of stdout (tests).
    pub fn with_metrics(mut self, sink: MetricsSink) -> Self {
        self.metrics = sink;
        self
    }

    pub fn config(&self) -> &IngestConfig {
        &self.config
    }

    /// Handles one webhook: the raw body bytes exactly as received and the signature header.
    /// Every answer is counted (one EMF line: [`REQUESTS_METRIC`], [`EVENTS_METRIC`],
    /// [`SERVER_ERROR_METRIC`]).
    pub async fn handle(&self, body: &[u8], signature: Option<&str>) -> IngestResponse {
        let resp = self.answer(body, signature).await;
        let queued = matches!(
            resp.outcome,
            IngestOutcome::Queued | IngestOutcome::Duplicate
        );
        (self.metrics)(
            Emf::new(METRICS_FUNCTION)
                .metric(REQUESTS_METRIC, Unit::Count, 1)
                .metric(EVENTS_METRIC, Unit::Count, u8::from(queued))
                .metric(
                    SERVER_ERROR_METRIC,
                    Unit::Count,
                    u8::from(resp.status.is_server_error()),
                )
                .property("outcome", resp.outcome.as_str())
                .line(self.ports.clock.now().timestamp_millis()),
        );
        resp
    }

    async fn answer(&self, body: &[u8], signature: Option<&str>) -> IngestResponse {
        // 1. Size.
        if body.len() > self.config.max_body_bytes {
            return IngestResponse::too_large(self.config.max_body_bytes);
        }
        // 2. Signature over the raw bytes, under any of the configured secrets.
        let verified = match &self.config.auth {
            WebhookAuth::Signed(secrets) => match secrets.verify(body, signature) {
                Ok(v) => Some(v),
                Err(e) => {
                    return IngestResponse::client_error(
                        StatusCode::UNAUTHORIZED,
                        IngestOutcome::Unauthorized,
                        "invalid_signature",
                        e.to_string(),
                    )
                }
            },
            WebhookAuth::InsecureUnsigned => None,
        };
        let verified_with = verified.as_ref().map(|v| v.role);
        let mut resp = self.handle_verified(body, verified.as_ref()).await;
        resp.verified_with = verified_with;
        resp
    }

    /// Steps 3 on, for a body whose signature verified (`None`: unsigned, insecure mode).
    async fn handle_verified(&self, body: &[u8], verified: Option<&Verified>) -> IngestResponse {
        // 3. Parse: route on resource/event first, then the typed envelope.
        let envelope = match parse_envelope(body) {
            Ok(e) => e,
            Err(Unparsed::OtherResource(resource)) => {
                let resource = truncate(&resource, 64);
                let mut r = IngestResponse::new(
                    StatusCode::ACCEPTED,
                    IngestOutcome::Ignored,
                    json!({ "status": "ignored", "note": format!("resource `{resource}` is not handled here: this endpoint relays `{TELEPHONY_RESOURCE}` only") }),
                );
                r.detail = Some(format!("resource {resource}"));
                return r;
            }
            Err(Unparsed::Invalid(e)) => return IngestResponse::bad_request(&e),
        };
        // With one secret per org, a secret vouches for its own org's events only.
        if verified.is_some_and(|v| !v.admits(&envelope.org_id)) {
            return IngestResponse::client_error(
                StatusCode::UNAUTHORIZED,
                IngestOutcome::Unauthorized,
                "org_mismatch",
                "the body's orgId is not an org of the secret that signed it".into(),
            );
        }
        let call_id = envelope.data.call_id.clone();
        let Some(event_type) = EventType::from_telephony_event(&envelope.event) else {
            let mut r = IngestResponse::new(
                StatusCode::ACCEPTED,
                IngestOutcome::Ignored,
                json!({ "status": "ignored", "note": format!("event `{}` is not one of created, updated, deleted", truncate(&envelope.event, 64)) }),
            );
            r.call_id = Some(call_id);
            return r;
        };

        // 4. Freshness: a body older than the window (`DEDUPE_TTL_HOURS`, at most the worker's
        // attempt memory) could be a capture re-sent after the worker forgot its deliveries, so
        // it is acknowledged (Webex counts only failures against the webhook) and dropped before
        // anything is stored.
        if let Some(mut r) = self.stale(&envelope) {
            r.call_id = Some(call_id);
            r.event_type = Some(event_type);
            return r;
        }

        // Deterministic: a Webex redelivery gets the same id, hence the same delivery ids.
        let key = dedupe_key(&envelope.data);
        let event_id = EventId::derived(event_millis(&envelope.data), key.as_bytes());
        let mut resp = self.process(&envelope, event_type, event_id).await;
        resp.call_id = Some(call_id);
        resp.event_type = Some(event_type);
        resp.event_id = Some(event_id);
        resp
    }

    async fn process(
        &self,
        envelope: &TelephonyEnvelope,
        event_type: EventType,
        event_id: EventId,
    ) -> IngestResponse {
        let now = self.ports.clock.now();
        match self.deliver(envelope, event_type, event_id, now).await {
            Ok(deliveries) => {
                // A Webex redelivery (the call state already holds this event) is fanned out
                // again all the same: nothing records that its jobs were queued (a crash may have
                // come between the call-state write and the send), and the copies carry the same
                // event id, hence the same delivery ids, which the worker's attempt claims
                // collapse into one POST each.
                let (status, outcome) = if deliveries.already_recorded {
                    ("duplicate", IngestOutcome::Duplicate)
                } else {
                    ("queued", IngestOutcome::Queued)
                };
                let mut body = json!({ "status": status, "deliveries": deliveries.total, "eventId": event_id });
                if !deliveries.call_events.is_empty() {
                    body["callEvents"] = json!(deliveries.call_events);
                }
                let mut r = IngestResponse::new(StatusCode::OK, outcome, body);
                r.deliveries = deliveries.total;
                r
            }
            // Too large for the queue: retrying cannot help, and 503s would loop until Webex gives
            // up on the webhook. The event is in the event log (step 7): answered 200 `parked`
            // (a redelivery meets the same limit and is parked again), with a metric line.
            Err(Unavailable::Queue(e @ QueueError::TooLarge { .. })) => {
                self.metric(PARKED_METRIC, "too_large", &envelope.org_id, now);
                let mut r = IngestResponse::new(
                    StatusCode::OK,
                    IngestOutcome::Parked,
                    json!({ "status": "parked", "reason": "too_large", "eventId": event_id, "note": "not relayed: its delivery job exceeds the queue's message size limit; the event log keeps it" }),
                );
                r.detail = Some(e.to_string());
                r
            }
            // Nothing is acknowledged that is not queued: Webex retries a 503, and its retry
            // finds whatever this attempt stored (same ids) and queues the jobs.
            Err(e) => self.unavailable(e.to_string()),
        }
    }

    /// Steps 5–8: call state, event log, fan-out, in three sequential rounds of AWS calls:
    /// 1. the call-state read, the event-log append and (on a cache miss) the org's subscriptions,
    ///    concurrently: none depends on another;
    /// 2. the call-state conditional write (none for an event already recorded; a lost race
    ///    re-reads and writes again: two rounds more per retry);
    /// 3. one `send` of every job (SendMessageBatch).
    ///
    /// Presence from calls (opt-in) adds its own calls between 2 and 3. Any failure returns before
    /// the send, so the caller answers 503 and Webex's retry redoes what is missing.
    async fn deliver(
        &self,
        envelope: &TelephonyEnvelope,
        event_type: EventType,
        event_id: EventId,
        now: DateTime<Utc>,
    ) -> Result<Deliveries, Unavailable> {
        let event = OutboundEvent {
            id: event_id,
            event_type,
            org_id: envelope.org_id.clone(),
            created_at: now,
            body: telephony_body(envelope, now),
        };
        // Round 1.
        let (stored, (), subs) = tokio::try_join!(
            async {
                self.ports
                    .stores
                    .calls
                    .get(&envelope.data.call_id)
                    .await
                    .map_err(Unavailable::CallState)
            },
            self.log_event(&event, &envelope.org_id, now),
            self.subscriptions(&envelope.org_id, now),
        )?;
        // Round 2.
        let call = self
            .record_call_state(envelope, stored, now)
            .await
            .map_err(Unavailable::CallState)?;
        let already_recorded = !call.changed();
        // The derived call events (docs/call-events.md): not in the event log (no write of their
        // own); their ids are deterministic, so a re-queued copy collapses at the worker.
        let call_events: Vec<OutboundEvent> = call
            .marks
            .iter()
            .map(|m| call_events::outbound(m, &call.record, envelope, now))
            .collect();

        // Each job carries its event's place in the call: a raw event's `data.eventTimestamp` in
        // ms, a call event's own sequence (docs/ordering.md).
        let call_id = envelope.data.call_id.as_str();
        let at = |sequence: u64| Some(CallPosition { call_id, sequence });
        let jobs_for = |event: &OutboundEvent, sequence: u64| {
            fan_out::jobs_for(&subs, &envelope.org_id, event, at(sequence))
        };
        let mut derived: Vec<QueuedJob> = call_events
            .iter()
            .zip(&call.marks)
            .flat_map(|(event, mark)| jobs_for(event, mark.seq))
            .collect();
        if self.config.presence_from_calls {
            if let Some(event) = self.presence_from_calls(envelope, &call.marks, now).await {
                derived.extend(fan_out::jobs_for(&subs, &envelope.org_id, &event, None));
            }
        }
        let mut jobs = jobs_for(&event, event_millis(&envelope.data));
        jobs.extend(derived.iter().cloned());
        // Round 3.
        if !jobs.is_empty() {
            if let Err(e) = self.ports.queue.send(&jobs).await {
                // The raw event too large for the queue (parked by the caller) must not hold
                // back its call events: they are small, and queued on their own.
                if matches!(e, QueueError::TooLarge { .. }) && !derived.is_empty() {
                    self.ports
                        .queue
                        .send(&derived)
                        .await
                        .map_err(Unavailable::Queue)?;
                }
                return Err(Unavailable::Queue(e));
            }
        }
        Ok(Deliveries {
            call_events: call_events.iter().map(|e| e.event_type).collect(),
            total: jobs.len(),
            already_recorded,
        })
    }

    /// Step 7: the outbound event appended to the event log for replay. A redelivery's append
    /// meets its own earlier item (same derived id): `Conflict`, which is fine.
    async fn log_event(
        &self,
        event: &OutboundEvent,
        org_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Unavailable> {
        match self
            .ports
            .stores
            .events
            .append(event, now + self.config.event_retention)
            .await
        {
            Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
            // Over the event log's item limit: relayed all the same, only not replayable.
            Err(e @ StoreError::TooLarge { .. }) => {
                tracing::warn!(event_id = %event.id, error = %e, "event not kept in the event log (too large); relaying it anyway");
                self.metric(NOT_LOGGED_METRIC, "too_large", org_id, now);
                Ok(())
            }
            Err(e) => Err(Unavailable::EventLog(e)),
        }
    }

    /// The org's subscriptions: from the warm container's cache while younger than
    /// `SUBSCRIPTIONS_CACHE_SECONDS` ([`SubscriptionsCache`]), else one query (stamped with the
    /// time it started, so the bound is never exceeded).
    async fn subscriptions(
        &self,
        org_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Arc<Vec<Subscription>>, Unavailable> {
        if let Some(subs) = self.subscriptions.get(org_id, now) {
            return Ok(subs);
        }
        let subs = Arc::new(
            self.ports
                .stores
                .subscriptions
                .list_by_org(org_id)
                .await
                .map_err(Unavailable::Subscriptions)?,
        );
        self.subscriptions.put(org_id, subs.clone(), now);
        Ok(subs)
    }

    /// Step 6: the call's lifecycle record and the call events it newly implies (or, for a
    /// retry of an event already recorded, the ones it caused then), with bounded
    /// optimistic-concurrency retries. `stored` is round 1's read; one conditional write, none
    /// for an event already seen; a lost race re-reads.
    async fn record_call_state(
        &self,
        envelope: &TelephonyEnvelope,
        mut stored: Option<CallRecord>,
        now: DateTime<Utc>,
    ) -> Result<Applied, StoreError> {
        let expires_at = (now + self.config.call_state_ttl).timestamp();
        let attempts = self.config.max_call_state_attempts.max(1);
        for attempt in 1..=attempts {
            if attempt > 1 {
                stored = self.ports.stores.calls.get(&envelope.data.call_id).await?;
            }
            let mut applied = call_events::apply(stored.take(), envelope, expires_at);
            if !applied.changed() {
                return Ok(applied);
            }
            applied.record.version += 1;
            match self.ports.stores.calls.put(&applied.record).await {
                Ok(()) => return Ok(applied),
                Err(StoreError::Conflict(msg)) if attempt < attempts => {
                    tracing::debug!(attempt, conflict = %msg, "call state write raced; retrying");
                    CALL_WRITE_BACKOFF.sleep(attempt - 1).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict(format!(
            "call state still contended after {attempts} attempts"
        )))
    }

    /// Presence from calls (`PRESENCE_FROM_CALLS`, docs/presence-poller.md): the leg's person to
    /// `call` on its `call:answered`, back on its `call:ended` (`call_presence::apply`: one read
    /// and at most one conditional write each), each event logged for replay. A leg that both
    /// connected and ended within this one Webex event changes nothing. Best effort: a store
    /// failure is logged and the poller reports the person's status at its next change.
    async fn presence_from_calls(
        &self,
        envelope: &TelephonyEnvelope,
        marks: &[CallEventMark],
        now: DateTime<Utc>,
    ) -> Option<OutboundEvent> {
        let person = envelope.actor_id.as_deref()?;
        let ended = marks.iter().any(|m| m.event == EventType::CallEnded);
        let transition = match marks.iter().find(|m| m.event == EventType::CallAnswered) {
            Some(_) if ended => return None,
            Some(_) => Transition::Connected,
            None if ended => Transition::Ended,
            None => return None,
        };
        let presence = self.ports.stores.presence.as_ref();
        let org = envelope.org_id.as_str();
        let call_id = envelope.data.call_id.as_str();
        let event = match call_presence::apply(presence, org, person, call_id, transition, now)
            .await
        {
            Ok(event) => event?,
            Err(e) => {
                tracing::warn!(error = %e, "presence from calls skipped; the poller reports the status at its next change");
                return None;
            }
        };
        let kept = now + self.config.event_retention;
        match self.ports.stores.events.append(&event, kept).await {
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(e) => {
                tracing::warn!(event_id = %event.id, error = %e, "presence event not kept in the event log; relaying it anyway")
            }
        }
        Some(event)
    }

    /// A 200 `stale` answer (with its metric line) when the event's time, `data.eventTimestamp`,
    /// lies outside `[now - dedupe TTL, now + MAX_CLOCK_SKEW]`. The envelope's own `created` is the
    /// webhook registration's, not the event's. A future date is refused too: relayed, it would
    /// stay "fresh" long after the worker's attempt claims for it expired.
    fn stale(&self, envelope: &TelephonyEnvelope) -> Option<IngestResponse> {
        let now = self.ports.clock.now();
        let at = envelope.data.event_timestamp.at();
        let reason = if at < now - self.config.dedupe_ttl {
            "older_than_dedupe_window"
        } else if at > now + MAX_CLOCK_SKEW {
            "in_the_future"
        } else {
            return None;
        };
        self.metric(STALE_METRIC, reason, &envelope.org_id, now);
        let detail = format!(
            "{reason}: eventTimestamp {} (now {}, dedupe window {} h, clock skew {} s)",
            truncate(envelope.data.event_timestamp.as_str(), 40),
            rfc3339_millis(now),
            self.config.dedupe_ttl.num_hours(),
            MAX_CLOCK_SKEW.num_seconds()
        );
        let mut r = IngestResponse::new(
            StatusCode::OK,
            IngestOutcome::Stale,
            json!({ "status": "stale", "reason": reason, "note": "acknowledged, not relayed: the event's time is outside the accepted window" }),
        );
        r.detail = Some(detail);
        Some(r)
    }

    /// One EMF line: `name` = 1, with the `reason` and `orgId` properties.
    fn metric(&self, name: &str, reason: &str, org_id: &str, now: DateTime<Utc>) {
        (self.metrics)(
            Emf::new(METRICS_FUNCTION)
                .metric(name, Unit::Count, 1)
                .property("reason", reason)
                .property("orgId", org_id)
                .line(now.timestamp_millis()),
        );
    }

    fn unavailable(&self, detail: String) -> IngestResponse {
        let mut r = IngestResponse::new(
            StatusCode::SERVICE_UNAVAILABLE,
            IngestOutcome::Unavailable,
            json!({ "error": "unavailable", "detail": "the event could not be stored or queued; retry later" }),
        );
        r.retry_after_seconds = Some(self.config.retry_after_seconds);
        r.detail = Some(detail);
        r
    }
}
