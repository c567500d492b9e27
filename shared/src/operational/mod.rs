//! Operational events (docs/operational-events.md): the relay telling its subscribers what goes
//! wrong — a webhook failing, disabled, recovered, a delivery dead-lettered, and the Webex side
//! (the relay's Webex webhook reactivated, the token refresh failing, presence throttled).
//!
//! One home for the bodies ([`OperationalEvent`]'s constructors) and the emitter
//! ([`OperationalEmitter`]), used by the delivery worker, the webhooks API and the presence
//! poller. An operational event is an ordinary outbound event: fanned out (`fan_out::jobs_for`,
//! so payload filters apply) as `DeliveryJob`s on the delivery queue, signed, retried and logged
//! like any other. It is not written to the event log (nothing to replay: it describes the
//! relay's state at that moment).
//!
//! * **Scope**: a webhook-scoped event (`webhook:*`, `delivery:dead-lettered`) goes to the org's
//!   subscriptions of the **same owner** that want its type, never to the webhook it is about; a
//!   Webex-side event to the org's subscriptions that want it.
//! * **Dedupe**: the event id is derived from the transition, not minted (a webhook event from
//!   the subscription's id and version before the change, which every worker racing to make the
//!   same change reads alike; a Webex-side one from the org and the minute), so an emission that
//!   is retried — by a crashed worker's redelivered message, or two workers seeing one
//!   transition — is the same event and collapses at the worker's attempt claim.
//! * **Rate limit**: at most [`OperationalArgs::events_per_minute`] emissions per subject (the webhook,
//!   or the org) and type per minute (`RateLimiter::try_acquire_named`, shared by every
//!   instance), so a flapping endpoint cannot storm its siblings; over it, the event is dropped
//!   (logged).

#[cfg(test)]
mod tests;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::config::in_range;
use crate::delivery::{DeliveryJob, ErrorClass};
use crate::error::{QueueError, StoreError};
use crate::events::{rfc3339_millis, EventType, OutboundEvent};
use crate::ids::{EventId, SubscriptionId};
use crate::ports::{Clock, CorePorts, DeliveryQueue, RateLimiter, RateWindow, SubscriptionStore};
use crate::subscription::Subscription;
use crate::targets::shareable_url;

/// The default of `OPERATIONAL_EVENTS_PER_MINUTE`.
pub const DEFAULT_PER_MINUTE: u32 = 10;

/// `OPERATIONAL_EVENTS_PER_MINUTE`: the one reader of the operational events' rate limit.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct OperationalArgs {
    /// Operational events emitted at most per subject (webhook or org) and type per minute;
    /// more are dropped (logged), so a flapping endpoint cannot storm its siblings.
    #[arg(long = "operational-events-per-minute", env = "OPERATIONAL_EVENTS_PER_MINUTE", default_value_t = DEFAULT_PER_MINUTE, value_parser = in_range(1u32..=10_000))]
    pub events_per_minute: u32,
}

impl Default for OperationalArgs {
    fn default() -> Self {
        Self {
            events_per_minute: DEFAULT_PER_MINUTE,
        }
    }
}

/// How a webhook came to be disabled (`data.cause` of `webhook:disabled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisabledCause {
    /// The receiver answered 410 Gone.
    Gone,
    /// It failed continuously for `AUTO_DISABLE_AFTER_HOURS`.
    AutoDisable,
    /// Its owner set `enabled: false` (PATCH).
    Manual,
}

impl DisabledCause {
    pub fn as_str(self) -> &'static str {
        match self {
            DisabledCause::Gone => "gone",
            DisabledCause::AutoDisable => "auto-disable",
            DisabledCause::Manual => "manual",
        }
    }
}

/// The delivery an operational event is about (`webhook:failing`, `delivery:dead-lettered`).
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub event_id: EventId,
    pub event_type: EventType,
    /// Attempts made.
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub error_class: Option<ErrorClass>,
    /// The delivery's `webhook-id` and run: what a dead-lettered event's id is derived from.
    delivery: String,
}

impl Trigger {
    /// From a job as it is parked (its attempts appended).
    pub fn of(job: &DeliveryJob) -> Self {
        let last = job.attempts.last();
        Self {
            event_id: job.event_id,
            event_type: job.event_type,
            attempts: job.attempts.len() as u32,
            last_status: last.and_then(|a| a.status_code),
            error_class: last.and_then(|a| a.error_class),
            delivery: format!("{}:{}", job.delivery_id(), job.run),
        }
    }
}

/// Who an operational event is about: one webhook (its owner's other webhooks get it), or the
/// org's Webex side (the org's subscribers get it).
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    Webhook {
        id: SubscriptionId,
        owner_id: String,
    },
    Org,
}

/// One operational event, ready to fan out.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationalEvent {
    pub event: OutboundEvent,
    pub subject: Subject,
}

/// `webhookId`, `webhookName`, `url`: what every webhook-scoped body's `data` starts with. The
/// body goes to the owner's *other* webhooks, often another service, so the URL is only its
/// origin (`targets::shareable_url`: no userinfo, query, fragment or path, where receivers keep
/// their tokens).
fn webhook_data(sub: &Subscription) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("webhookId".into(), json!(sub.id.to_string()));
    data.insert("webhookName".into(), json!(sub.name));
    data.insert("url".into(), json!(shareable_url(&sub.url)));
    data
}

fn insert_opt<T: Into<Value>>(data: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(v) = value {
        data.insert(key.into(), v.into());
    }
}

fn trigger_data(data: &mut Map<String, Value>, t: &Trigger) {
    data.insert("eventId".into(), json!(t.event_id.to_string()));
    data.insert("eventType".into(), json!(t.event_type.as_str()));
    data.insert("attempts".into(), json!(t.attempts));
    data.insert("lastStatus".into(), json!(t.last_status));
    data.insert(
        "errorClass".into(),
        json!(t.error_class.map(ErrorClass::as_str)),
    );
}

/// `{"type","timestamp","orgId","data":{…}}`, compact (the house style of `call:*` bodies).
fn body(
    event_type: EventType,
    at: DateTime<Utc>,
    org_id: &str,
    data: Map<String, Value>,
) -> String {
    json!({
        "type": event_type.as_str(),
        "timestamp": rfc3339_millis(at),
        "orgId": org_id,
        "data": Value::Object(data),
    })
    .to_string()
}

/// An id derived from what identifies the transition: the same inputs, the same id.
fn derived_id(millis: i64, seed: &str) -> EventId {
    EventId::derived(millis.max(0) as u64, seed.as_bytes())
}

impl OperationalEvent {
    fn about_webhook(
        event_type: EventType,
        sub: &Subscription,
        id: EventId,
        at: DateTime<Utc>,
        data: Map<String, Value>,
    ) -> Self {
        Self {
            event: OutboundEvent {
                id,
                event_type,
                org_id: sub.org_id.clone(),
                created_at: at,
                body: body(event_type, at, &sub.org_id, data),
            },
            subject: Subject::Webhook {
                id: sub.id,
                owner_id: sub.owner_id.clone(),
            },
        }
    }

    fn about_org(
        event_type: EventType,
        org_id: &str,
        seed: &str,
        at: DateTime<Utc>,
        data: Map<String, Value>,
    ) -> Self {
        // One per org, type and minute (and seed): a retried emission in the same minute is the
        // same event.
        let minute = RateWindow::containing(at, 1).start;
        let id = derived_id(
            minute.timestamp_millis(),
            &format!("{}|{org_id}|{}|{seed}", event_type, minute.timestamp()),
        );
        Self {
            event: OutboundEvent {
                id,
                event_type,
                org_id: org_id.to_owned(),
                created_at: at,
                body: body(event_type, at, org_id, data),
            },
            subject: Subject::Org,
        }
    }

    /// The id of a transition of `before` (the subscription as read before the change): every
    /// worker making the same change reads the same version.
    fn transition_id(event_type: EventType, before: &Subscription) -> EventId {
        derived_id(
            before.updated_at.timestamp_millis(),
            &format!("{}|{}|v{}", event_type, before.id, before.version),
        )
    }

    /// `webhook:failing`: `before` (still healthy) starts failing because of `trigger`.
    pub fn failing(before: &Subscription, trigger: &Trigger, at: DateTime<Utc>) -> Self {
        let mut data = webhook_data(before);
        trigger_data(&mut data, trigger);
        data.insert(
            "failingSince".into(),
            json!(rfc3339_millis(before.failing_since.unwrap_or(at))),
        );
        let id = Self::transition_id(EventType::WebhookFailing, before);
        Self::about_webhook(EventType::WebhookFailing, before, id, at, data)
    }

    /// `webhook:recovered`: `before` (failing) delivered `event_id`.
    pub fn recovered(before: &Subscription, event_id: EventId, at: DateTime<Utc>) -> Self {
        let mut data = webhook_data(before);
        data.insert("eventId".into(), json!(event_id.to_string()));
        insert_opt(
            &mut data,
            "failingSince",
            before.failing_since.map(rfc3339_millis),
        );
        let id = Self::transition_id(EventType::WebhookRecovered, before);
        Self::about_webhook(EventType::WebhookRecovered, before, id, at, data)
    }

    /// `webhook:disabled`: `before` (enabled) is disabled for `cause`, `reason`; `by` is the
    /// user who did it by hand.
    pub fn disabled(
        before: &Subscription,
        cause: DisabledCause,
        reason: &str,
        by: Option<&str>,
        at: DateTime<Utc>,
    ) -> Self {
        let mut data = webhook_data(before);
        data.insert("cause".into(), json!(cause.as_str()));
        data.insert("reason".into(), json!(reason));
        insert_opt(&mut data, "by", by);
        insert_opt(
            &mut data,
            "failingSince",
            before.failing_since.map(rfc3339_millis),
        );
        let id = Self::transition_id(EventType::WebhookDisabled, before);
        Self::about_webhook(EventType::WebhookDisabled, before, id, at, data)
    }

    /// `delivery:dead-lettered`: `trigger` (a delivery to `sub`) was parked with `reason`.
    pub fn dead_lettered(
        sub: &Subscription,
        trigger: &Trigger,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Self {
        let mut data = webhook_data(sub);
        trigger_data(&mut data, trigger);
        data.insert("reason".into(), json!(reason));
        // One per delivery and run: a redelivered copy parked again is the same event.
        let id = derived_id(
            trigger.event_id.timestamp_ms() as i64,
            &format!(
                "{}|{}|{}",
                EventType::DeliveryDeadLettered,
                trigger.delivery,
                trigger.attempts
            ),
        );
        Self::about_webhook(EventType::DeliveryDeadLettered, sub, id, at, data)
    }

    /// `webex:webhook-reactivated`: Webex had deactivated the relay's webhook `webex_webhook_id`
    /// (targeting `target_url`); the health check reactivated it.
    pub fn webex_webhook_reactivated(
        org_id: &str,
        webex_webhook_id: &str,
        target_url: &str,
        at: DateTime<Utc>,
    ) -> Self {
        let mut data = Map::new();
        data.insert("webexWebhookId".into(), json!(webex_webhook_id));
        data.insert("targetUrl".into(), json!(target_url));
        Self::about_org(
            EventType::WebexWebhookReactivated,
            org_id,
            webex_webhook_id,
            at,
            data,
        )
    }

    /// `webex:token-refresh-failed`: the Webex token could not be refreshed (`reason`: the
    /// failure's class, e.g. `refused`; never the token or Webex's text), the `failures`-th
    /// time in a row; the next try at `retry_at`.
    pub fn token_refresh_failed(
        org_id: &str,
        reason: &str,
        failures: u32,
        retry_at: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    ) -> Self {
        let mut data = Map::new();
        data.insert("reason".into(), json!(reason));
        data.insert("failures".into(), json!(failures));
        data.insert("retryAt".into(), json!(retry_at.map(rfc3339_millis)));
        Self::about_org(EventType::WebexTokenRefreshFailed, org_id, "", at, data)
    }

    /// `presence:throttled`: Webex answered `status` (429 or 423) to the presence poller, asking
    /// to wait `retry_after_seconds`.
    pub fn presence_throttled(
        org_id: &str,
        status: u16,
        retry_after_seconds: u64,
        at: DateTime<Utc>,
    ) -> Self {
        let mut data = Map::new();
        data.insert("status".into(), json!(status));
        data.insert("retryAfterSeconds".into(), json!(retry_after_seconds));
        Self::about_org(EventType::PresenceThrottled, org_id, "", at, data)
    }

    /// The rate limiter's counter of this event's subject and type.
    fn rate_name(&self) -> String {
        let subject = match &self.subject {
            Subject::Webhook { id, .. } => id.to_string(),
            Subject::Org => format!("org:{}", self.event.org_id),
        };
        format!("ops#{}#{subject}", self.event.event_type)
    }

    /// Does `sub` receive this event? The type wanted, the org's, and for a webhook-scoped
    /// event the same owner's and not the webhook it is about.
    pub fn goes_to(&self, sub: &Subscription) -> bool {
        if sub.org_id != self.event.org_id || !sub.wants(self.event.event_type) {
            return false;
        }
        match &self.subject {
            Subject::Webhook { id, owner_id } => sub.id != *id && sub.owner_id == *owner_id,
            Subject::Org => true,
        }
    }
}

/// What an emission did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emission {
    /// `n` jobs queued.
    Queued(usize),
    /// No subscription wants it (no rate token spent).
    NoRecipients,
    /// Over the subject's rate limit: dropped.
    RateLimited,
}

#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    #[error("reading the subscriptions: {0}")]
    Store(#[from] StoreError),
    #[error("queueing: {0}")]
    Queue(#[from] QueueError),
}

/// Fans operational events out to their recipients through the delivery queue.
#[derive(Clone)]
pub struct OperationalEmitter {
    subscriptions: Arc<dyn SubscriptionStore>,
    queue: Arc<dyn DeliveryQueue>,
    rate_limits: Arc<dyn RateLimiter>,
    clock: Arc<dyn Clock>,
    per_minute: u32,
}

/// Jobs per `DeliveryQueue::send` call.
const SEND_CHUNK: usize = 100;

impl OperationalEmitter {
    pub fn new(
        subscriptions: Arc<dyn SubscriptionStore>,
        queue: Arc<dyn DeliveryQueue>,
        rate_limits: Arc<dyn RateLimiter>,
        clock: Arc<dyn Clock>,
        args: &OperationalArgs,
    ) -> Self {
        Self {
            subscriptions,
            queue,
            rate_limits,
            clock,
            per_minute: args.events_per_minute.max(1),
        }
    }

    /// On a function's core ports (its subscriptions, rate limiter, queue and clock).
    pub fn from_core(core: &CorePorts, args: &OperationalArgs) -> Self {
        Self::new(
            core.stores.subscriptions.clone(),
            core.queue.clone(),
            core.stores.rate_limits.clone(),
            core.clock.clone(),
            args,
        )
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Queues one job per recipient of `op`, within the subject's rate limit.
    pub async fn emit(&self, op: &OperationalEvent) -> Result<Emission, EmitError> {
        let subs = self
            .subscriptions
            .list_by_org(&op.event.org_id)
            .await?
            .into_iter()
            .filter(|s| op.goes_to(s))
            .collect::<Vec<_>>();
        let jobs = crate::fan_out::jobs_for(&subs, &op.event.org_id, &op.event, None);
        if jobs.is_empty() {
            return Ok(Emission::NoRecipients);
        }
        let window = RateWindow::containing(self.clock.now(), self.per_minute);
        if !self
            .rate_limits
            .try_acquire_named(&op.rate_name(), window)
            .await?
        {
            return Ok(Emission::RateLimited);
        }
        for chunk in jobs.chunks(SEND_CHUNK) {
            self.queue.send(chunk).await?;
        }
        Ok(Emission::Queued(jobs.len()))
    }

    /// [`Self::emit`], logged, never failing its caller: an operational event is best-effort,
    /// like the health updates it reports (docs/operational-events.md).
    pub async fn emit_logged(&self, op: &OperationalEvent) -> Option<Emission> {
        let event_type = op.event.event_type.as_str();
        let event_id = op.event.id;
        match self.emit(op).await {
            Ok(e) => {
                match e {
                    Emission::Queued(jobs) => {
                        tracing::info!(event_type, %event_id, jobs, "operational event queued")
                    }
                    Emission::NoRecipients => {
                        tracing::debug!(event_type, %event_id, "operational event: no subscriber")
                    }
                    Emission::RateLimited => {
                        tracing::warn!(event_type, %event_id, per_minute = self.per_minute, "operational event dropped: its subject's rate limit is used up")
                    }
                }
                Some(e)
            }
            Err(e) => {
                tracing::error!(event_type, %event_id, error = %e, "could not emit an operational event");
                None
            }
        }
    }
}

/// The catalogue's example body of an operational event type (`GET /api/hooks/event-types`),
/// built by the same constructors as real ones; `None` for the other types.
pub fn example(t: EventType) -> Option<Value> {
    let at = |s: &str| -> DateTime<Utc> { s.parse().expect("valid example timestamp") };
    let org =
        "Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi8xNzExMTdkNi04YjgyLTQ0Y2EtOThlOS1hYzExNTdmMmNkMWQ";
    let created = at("2026-11-20T09:00:00Z");
    let id: SubscriptionId = "wh_01KAQ3YX0A1B2C3D4E5F6G7H8J".parse().expect("valid id");
    let webhook = Subscription {
        id,
        name: "CRM".into(),
        failing_since: Some(at("2026-12-02T08:00:00.000Z")),
        ..Subscription::new(
            "user-1",
            org,
            // The query (a receiver's token) is not in the bodies: they show `url` without it.
            "https://crm.example.com/hooks/webex?key=s3cr3t",
            vec![EventType::TelephonyCreated],
            "example",
            created,
        )
    };
    let job = DeliveryJob {
        attempts: (1..=5)
            .map(|n| crate::delivery::AttemptSummary {
                attempt: n,
                at: at("2026-12-02T10:00:00Z"),
                status_code: Some(503),
                error_class: Some(ErrorClass::HttpStatus),
            })
            .collect(),
        ..DeliveryJob::for_event(
            &OutboundEvent {
                id: "evt_01KBCD5E6F7G8H9J0K1M2N3P4Q".parse().expect("valid id"),
                event_type: EventType::TelephonyCreated,
                org_id: org.into(),
                created_at: at("2026-12-02T08:00:00Z"),
                body: "{}".into(),
            },
            id,
        )
    };
    let now = at("2026-12-02T10:30:00.000Z");
    let op = match t {
        EventType::WebhookFailing => OperationalEvent::failing(&webhook, &Trigger::of(&job), now),
        EventType::WebhookDisabled => OperationalEvent::disabled(
            &webhook,
            DisabledCause::Manual,
            "disabled by hand (PATCH enabled: false)",
            Some("user-1"),
            now,
        ),
        EventType::WebhookRecovered => OperationalEvent::recovered(&webhook, job.event_id, now),
        EventType::DeliveryDeadLettered => {
            let mut job = job;
            job.attempts.truncate(1);
            job.attempts[0].status_code = None;
            job.attempts[0].error_class = Some(ErrorClass::SsrfBlocked);
            OperationalEvent::dead_lettered(
                &webhook,
                &Trigger::of(&job),
                "permanent failure (ssrf_blocked): target `crm.example.com` refused (private)",
                now,
            )
        }
        EventType::WebexWebhookReactivated => OperationalEvent::webex_webhook_reactivated(
            org,
            "Y2lzY29zcGFyazovL3VzL1dFQkhPT0svN2QyMTBjMjUtYWJmZi00MjAxLWE0OGMtMjI3ZDRkNWY3OTI1",
            "https://relay.example.com/webex/telephony",
            now,
        ),
        EventType::WebexTokenRefreshFailed => OperationalEvent::token_refresh_failed(
            org,
            "refused",
            3,
            Some(at("2026-12-02T10:45:00Z")),
            now,
        ),
        EventType::PresenceThrottled => OperationalEvent::presence_throttled(org, 429, 30, now),
        _ => return None,
    };
    Some(serde_json::from_str(&op.event.body).expect("bodies are JSON"))
}
