//! # delivery-worker
//!
//! Takes delivery jobs off the delivery queue (SQS), signs them and POSTs them to the
//! subscriber, with retries on a schedule, a per-subscription rate limit, an SSRF guard, an
//! attempt log and a dead-letter queue. See `docs/delivery-worker.md`.
//!
//! The core is [`Worker::process_message`]: one raw queue message in, one [`Outcome`] out. The
//! Lambda handler ([`handler::function_handler`]) and the local stack's in-process consumer loop
//! ([`handler::run_consumer`]) both drive it; neither owns any delivery logic.

pub mod config;
pub mod handler;
pub mod http_sender;
pub mod metrics;
pub mod schedule;
pub mod ssrf;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, Utc};
use relay_shared::delivery::{
    AttemptRecord, AttemptStatus, AttemptSummary, DeliveryJob, ErrorClass,
};
use relay_shared::error::StoreError;
use relay_shared::ids::{AttemptId, SubscriptionId};
use relay_shared::ports::{
    Claim, Clock, DeadLetterQueue, DeliveryQueue, HttpSender, OutboundRequest, QueuedJob, Stores,
};
use relay_shared::signing::{delivery_headers, SignatureInput};
use relay_shared::subscription::{Health, Subscription};

pub use config::WorkerConfig;
pub use handler::{function_handler, run_consumer};
pub use metrics::{Metric, MetricsSink};

/// Why a job was put back on the queue without an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeferReason {
    /// Received before its `not_before` (a backoff longer than SQS's 15-minute delay).
    NotYetDue,
    /// The subscription's per-minute limit is used up: wait for the next window.
    RateLimited,
}

/// What became of one queue message. Every variant but `Failed` means "acknowledge it": its
/// successor (re-sent job, DLQ entry) is already safely stored, or there is nothing left to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The receiver answered 2xx.
    Delivered { attempt: u32, status: u16 },
    /// The attempt failed; the job was re-sent for attempt `attempt + 1` after `delay`.
    Retrying { attempt: u32, delay: Duration },
    /// Re-sent without an attempt.
    Deferred {
        reason: DeferReason,
        delay: Duration,
    },
    /// Parked in the dead-letter queue (attempts exhausted, permanent failure, or unparseable).
    DeadLettered { reason: String },
    /// The subscription no longer exists.
    Dropped { reason: String },
    /// The subscription is disabled (an attempt record `skipped` was written).
    Skipped { reason: String },
    /// Something could not be stored (re-send, DLQ, store read): do NOT acknowledge, let the
    /// queue hand the message out again.
    Failed { error: String },
}

impl Outcome {
    /// May the message be deleted from the queue?
    pub fn acknowledged(&self) -> bool {
        !matches!(self, Outcome::Failed { .. })
    }
}

/// The worker's ports: built once per cold start.
#[derive(Clone)]
pub struct Ports {
    pub stores: Stores,
    pub http: Arc<dyn HttpSender>,
    /// For re-sends (retries, deferrals).
    pub queue: Arc<dyn DeliveryQueue>,
    pub dlq: Arc<dyn DeadLetterQueue>,
    pub clock: Arc<dyn Clock>,
}

struct CachedSub {
    loaded: Instant,
    sub: Option<Subscription>,
}

/// The delivery core: see [`Worker::process_message`].
pub struct Worker {
    ports: Ports,
    config: WorkerConfig,
    metrics: Arc<MetricsSink>,
    cache: Mutex<HashMap<SubscriptionId, CachedSub>>,
}

/// What one HTTP attempt came to.
struct AttemptResult {
    succeeded: bool,
    status_code: Option<u16>,
    error_class: Option<ErrorClass>,
    error: Option<String>,
    snippet: Option<String>,
    retry_after: Option<String>,
    permanent: bool,
    gone: bool,
    duration_ms: u64,
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// How much of an unparseable body is kept in the DLQ envelope.
const MAX_PARKED_RAW: usize = 200 * 1024;
/// How long a made attempt is remembered, so a late duplicate queue message is recognised (longer
/// than the delivery queue keeps messages).
const ATTEMPT_CLAIM_DAYS: i64 = 5;

impl Worker {
    pub fn new(ports: Ports, config: WorkerConfig) -> Self {
        Self::with_metrics(ports, config, Arc::new(MetricsSink::Stdout))
    }

    pub fn with_metrics(ports: Ports, config: WorkerConfig, metrics: Arc<MetricsSink>) -> Self {
        Self {
            ports,
            config,
            metrics,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    pub fn metrics(&self) -> &MetricsSink {
        &self.metrics
    }

    fn emit(&self, metric: Metric, latency_ms: Option<u64>, sub: &SubscriptionId) {
        self.metrics.emit(
            metric,
            latency_ms,
            &sub.to_string(),
            self.ports.clock.now().timestamp_millis(),
        );
    }

    /// Handles one queue message (the raw body of a `DeliveryJob`). `receive_count` is how many
    /// times the queue has handed this message out (for logs: SQS's redrive policy is the backstop).
    pub async fn process_message(&self, raw_body: &str, receive_count: u32) -> Outcome {
        let job: DeliveryJob = match serde_json::from_str(raw_body) {
            Ok(job) => job,
            Err(e) => return self.park_unparseable(raw_body, &e.to_string()).await,
        };
        let (event_id, subscription_id, webhook_id) =
            (job.event_id, job.subscription_id, job.webhook_id());
        let outcome = self.process_job(job).await;
        match &outcome {
            Outcome::Failed { error } => tracing::error!(
                %event_id, %subscription_id, %webhook_id, receive_count, %error,
                "delivery job not acknowledged; the queue will hand it out again"
            ),
            other => {
                tracing::info!(%event_id, %subscription_id, %webhook_id, receive_count, outcome = ?other, "delivery job processed")
            }
        }
        outcome
    }

    async fn park_unparseable(&self, raw_body: &str, error: &str) -> Outcome {
        let reason = format!("unparseable delivery job: {error}");
        let envelope = serde_json::json!({
            "deadLetterReason": reason,
            "receivedBody": truncate_utf8(raw_body, MAX_PARKED_RAW),
        })
        .to_string();
        tracing::warn!(reason = %reason, "parking an unparseable delivery job");
        match self.ports.dlq.park(&envelope).await {
            Ok(()) => Outcome::DeadLettered { reason },
            Err(e) => Outcome::Failed {
                error: format!("could not park an unparseable job: {e}"),
            },
        }
    }

    async fn process_job(&self, job: DeliveryJob) -> Outcome {
        let now = self.ports.clock.now();

        // Too early (a backoff longer than SQS can delay): back on the queue, no attempt.
        // (Up to a second early counts as due: SQS delays are whole seconds and clocks differ.)
        if let Some(nb) = job.not_before {
            if nb - now > chrono::Duration::seconds(1) {
                let remaining = (nb - now).to_std().unwrap_or(Duration::ZERO);
                return self.defer(&job, DeferReason::NotYetDue, remaining).await;
            }
        }

        let sub = match self.subscription(&job.subscription_id).await {
            Ok(Some(sub)) => sub,
            Ok(None) => {
                tracing::info!(subscription_id = %job.subscription_id, event_id = %job.event_id, "subscription deleted: dropping the job");
                return Outcome::Dropped {
                    reason: "subscription deleted".into(),
                };
            }
            Err(e) => {
                return Outcome::Failed {
                    error: format!("loading the subscription: {e}"),
                }
            }
        };
        if !sub.enabled {
            let reason = match &sub.disabled_reason {
                Some(r) => format!("subscription disabled: {r}"),
                None => "subscription disabled".to_owned(),
            };
            tracing::info!(subscription_id = %sub.id, event_id = %job.event_id, reason = %reason, "dropping the job");
            let record = AttemptRecord {
                id: AttemptId::new_at(now.timestamp_millis().max(0) as u64),
                delivery_id: job.webhook_id(),
                event_id: job.event_id,
                subscription_id: job.subscription_id,
                event_type: job.event_type,
                attempt: job.next_attempt(),
                at: now,
                duration_ms: 0,
                status: AttemptStatus::Skipped,
                status_code: None,
                error_class: None,
                error: Some(reason.clone()),
                response_snippet: None,
            };
            self.record_attempt(&record, now).await;
            return Outcome::Skipped { reason };
        }

        // Per-subscription rate limit, shared by every instance (fixed minute windows).
        let limit = if sub.rate_limit_per_minute == 0 {
            self.config.default_rate_limit_per_minute
        } else {
            sub.rate_limit_per_minute
        };
        let window = now
            .duration_trunc(chrono::Duration::minutes(1))
            .unwrap_or(now);
        match self
            .ports
            .stores
            .rate_limits
            .try_acquire(&sub.id, window, limit)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                let spread = chrono::Duration::milliseconds(rand::random_range(0..5_000));
                let wait = (window + chrono::Duration::minutes(1) + spread - now)
                    .to_std()
                    .unwrap_or(Duration::from_secs(1));
                tracing::info!(subscription_id = %sub.id, limit, "rate limit reached: deferring to the next window");
                return self.defer(&job, DeferReason::RateLimited, wait).await;
            }
            Err(e) => {
                return Outcome::Failed {
                    error: format!("rate limiter: {e}"),
                }
            }
        }

        // Exactly one worker makes a given attempt: SQS may hand one message to two consumers,
        // and a copy that arrives after the attempt was made must not POST again.
        let attempt = job.next_attempt();
        let claim_key = job.attempt_claim_key();
        let lease = chrono::Duration::from_std(self.config.delivery_timeout)
            .unwrap_or_else(|_| chrono::Duration::seconds(30))
            + chrono::Duration::seconds(30);
        let remember_until = now + chrono::Duration::days(ATTEMPT_CLAIM_DAYS);
        match self
            .ports
            .stores
            .dedupe
            .claim(&claim_key, now, now + lease, remember_until)
            .await
        {
            Ok(Claim::Claimed) => {}
            Ok(Claim::Done) => {
                tracing::info!(webhook_id = %job.webhook_id(), attempt, "attempt already made: dropping a duplicate queue message");
                return Outcome::Dropped {
                    reason: format!("attempt {attempt} was already made (duplicate queue message)"),
                };
            }
            Ok(Claim::InProgress) => {
                return Outcome::Failed {
                    error: format!(
                    "attempt {attempt} is being made by another worker; this copy comes back later"
                ),
                }
            }
            Err(e) => {
                return Outcome::Failed {
                    error: format!("claiming attempt {attempt}: {e}"),
                }
            }
        }
        let outcome = self.attempt_and_settle(job, &sub, attempt, now).await;
        let settled = if outcome.acknowledged() {
            self.ports
                .stores
                .dedupe
                .complete(&claim_key, remember_until)
                .await
        } else {
            // Nothing durable happened for the next attempt: let the redelivered copy retry.
            self.ports.stores.dedupe.release(&claim_key).await
        };
        if let Err(e) = settled {
            tracing::warn!(error = %e, claim = %claim_key, "could not settle the attempt claim (its lease expires by itself)");
        }
        outcome
    }

    /// Makes attempt `attempt` and settles the job: delivered, re-sent for the next attempt, or
    /// parked in the DLQ.
    async fn attempt_and_settle(
        &self,
        mut job: DeliveryJob,
        sub: &Subscription,
        attempt: u32,
        now: DateTime<Utc>,
    ) -> Outcome {
        let result = self.attempt(&job, sub, now).await;
        let record = AttemptRecord {
            id: AttemptId::new_at(now.timestamp_millis().max(0) as u64),
            delivery_id: job.webhook_id(),
            event_id: job.event_id,
            subscription_id: job.subscription_id,
            event_type: job.event_type,
            attempt,
            at: now,
            duration_ms: result.duration_ms,
            status: if result.succeeded {
                AttemptStatus::Succeeded
            } else {
                AttemptStatus::Failed
            },
            status_code: result.status_code,
            error_class: result.error_class,
            error: result.error.clone(),
            response_snippet: result.snippet.clone(),
        };
        self.record_attempt(&record, now).await;
        job.attempts.push(AttemptSummary {
            attempt,
            at: now,
            status_code: result.status_code,
            error_class: result.error_class,
        });

        if result.succeeded {
            self.emit(Metric::Delivered, Some(result.duration_ms), &sub.id);
            if sub.health == Health::Failing {
                self.set_health(&sub.id, Health::Healthy).await;
            }
            return Outcome::Delivered {
                attempt,
                status: result.status_code.unwrap_or(200),
            };
        }
        self.emit(Metric::Failed, Some(result.duration_ms), &sub.id);

        if result.gone {
            self.disable(&sub.id, "the receiver answered 410 Gone")
                .await;
            return self
                .dead_letter(
                    job,
                    "the receiver answered 410 Gone: subscription disabled".into(),
                    false,
                )
                .await;
        }
        if result.permanent {
            let reason = format!(
                "permanent failure ({}): {}",
                result.error_class.map(class_name).unwrap_or("other"),
                result.error.as_deref().unwrap_or("")
            );
            return self.dead_letter(job, reason, true).await;
        }
        let Some(scheduled) = self.config.schedule.delay_after(attempt) else {
            let last = match (result.status_code, result.error_class) {
                (Some(code), _) => format!("HTTP {code}"),
                (None, Some(class)) => class_name(class).to_owned(),
                (None, None) => "failure".to_owned(),
            };
            let reason = format!("all {attempt} attempts failed (last: {last})");
            return self.dead_letter(job, reason, true).await;
        };
        let delay = match result.status_code {
            Some(429 | 503) => {
                let ra = result
                    .retry_after
                    .as_deref()
                    .and_then(|v| schedule::parse_retry_after(v, now));
                schedule::honour_retry_after(scheduled, ra)
            }
            _ => scheduled,
        };
        job.not_before =
            Some(now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero()));
        let queued = QueuedJob {
            job,
            delay_seconds: schedule::sqs_delay_seconds(delay),
        };
        match self.ports.queue.send(std::slice::from_ref(&queued)).await {
            Ok(()) => {
                self.emit(Metric::Retried, None, &sub.id);
                Outcome::Retrying { attempt, delay }
            }
            Err(e) => Outcome::Failed {
                error: format!("re-sending for the next attempt: {e}"),
            },
        }
    }

    /// One signed POST.
    async fn attempt(
        &self,
        job: &DeliveryJob,
        sub: &Subscription,
        now: DateTime<Utc>,
    ) -> AttemptResult {
        let secrets = sub.signing_secrets(now);
        let webhook_id = job.webhook_id();
        let sub_id = sub.id.to_string();
        let headers = delivery_headers(&SignatureInput {
            webhook_id: &webhook_id,
            timestamp: now,
            event_type: job.event_type,
            subscription_id: &sub_id,
            org_id: &job.org_id,
            secrets: &secrets,
            body: job.body.as_bytes(),
        });
        let request = OutboundRequest {
            url: sub.url.clone(),
            headers,
            body: Arc::from(job.body.as_str()),
            timeout: self.config.delivery_timeout,
        };
        let started = Instant::now();
        let sent = self.ports.http.post(request).await;
        let duration_ms = started.elapsed().as_millis() as u64;
        let snippet = |s: &str| {
            (!s.is_empty()).then(|| truncate_utf8(s, self.config.snippet_bytes).to_owned())
        };
        match sent {
            Ok(resp) => {
                let status = resp.status;
                let (succeeded, class) = match status {
                    200..=299 => (true, None),
                    300..=399 => (false, Some(ErrorClass::Redirect)),
                    _ => (false, Some(ErrorClass::HttpStatus)),
                };
                AttemptResult {
                    succeeded,
                    status_code: Some(status),
                    error_class: class,
                    error: match status {
                        200..=299 => None,
                        300..=399 => Some(format!("HTTP {status}: redirects are not followed")),
                        _ => Some(format!("HTTP {status}")),
                    },
                    snippet: snippet(&resp.body_snippet),
                    retry_after: resp.retry_after,
                    permanent: false,
                    gone: status == 410,
                    duration_ms,
                }
            }
            Err(e) => AttemptResult {
                succeeded: false,
                status_code: None,
                error_class: Some(e.class),
                error: Some(truncate_utf8(&e.message, 1024).to_owned()),
                snippet: None,
                retry_after: None,
                permanent: e.permanent
                    || matches!(e.class, ErrorClass::SsrfBlocked | ErrorClass::InvalidUrl),
                gone: false,
                duration_ms,
            },
        }
    }

    /// Re-sends the job unchanged (no attempt counted) to come back after `wait`.
    async fn defer(&self, job: &DeliveryJob, reason: DeferReason, wait: Duration) -> Outcome {
        let mut job = job.clone();
        let now = self.ports.clock.now();
        if reason == DeferReason::RateLimited {
            job.not_before =
                Some(now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::zero()));
        }
        let delay_seconds = schedule::sqs_delay_seconds(wait).max(1);
        let sub_id = job.subscription_id;
        match self
            .ports
            .queue
            .send(&[QueuedJob { job, delay_seconds }])
            .await
        {
            Ok(()) => {
                self.emit(Metric::Deferred, None, &sub_id);
                Outcome::Deferred {
                    reason,
                    delay: wait,
                }
            }
            Err(e) => Outcome::Failed {
                error: format!("re-sending a deferred job: {e}"),
            },
        }
    }

    /// Parks the job with its attempt history; marks the subscription failing.
    async fn dead_letter(
        &self,
        mut job: DeliveryJob,
        reason: String,
        mark_failing: bool,
    ) -> Outcome {
        job.dead_letter_reason = Some(reason.clone());
        job.not_before = None;
        let body = match serde_json::to_string(&job) {
            Ok(b) => b,
            Err(e) => {
                return Outcome::Failed {
                    error: format!("serialising the job: {e}"),
                }
            }
        };
        if let Err(e) = self.ports.dlq.park(&body).await {
            return Outcome::Failed {
                error: format!("parking the job in the dead-letter queue: {e}"),
            };
        }
        tracing::warn!(subscription_id = %job.subscription_id, event_id = %job.event_id, reason = %reason, "delivery job dead-lettered");
        self.emit(Metric::DeadLettered, None, &job.subscription_id);
        if mark_failing {
            self.set_health(&job.subscription_id, Health::Failing).await;
        }
        Outcome::DeadLettered { reason }
    }

    async fn record_attempt(&self, record: &AttemptRecord, now: DateTime<Utc>) {
        if let Err(e) = self
            .ports
            .stores
            .attempts
            .record(record, now + self.config.attempt_ttl)
            .await
        {
            // The job itself carries its attempt history; a lost log row must not cause a duplicate delivery.
            tracing::error!(subscription_id = %record.subscription_id, attempt = record.attempt, error = %e, "could not write the attempt log");
        }
    }

    /// The subscription, from the warm-container cache when fresh enough.
    async fn subscription(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        let ttl = self.config.subscription_cache;
        if !ttl.is_zero() {
            if let Some(c) = self.cache.lock().unwrap().get(id) {
                if c.loaded.elapsed() < ttl {
                    return Ok(c.sub.clone());
                }
            }
        }
        let sub = self.ports.stores.subscriptions.get(id).await?;
        self.remember(*id, sub.clone());
        Ok(sub)
    }

    fn remember(&self, id: SubscriptionId, sub: Option<Subscription>) {
        if self.config.subscription_cache.is_zero() {
            return;
        }
        let mut cache = self.cache.lock().unwrap();
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(
            id,
            CachedSub {
                loaded: Instant::now(),
                sub,
            },
        );
    }

    /// Get → change → conditional update, retried on a lost race. `change` returns `false` when
    /// there is nothing to do.
    async fn update_subscription(
        &self,
        id: &SubscriptionId,
        change: impl Fn(&mut Subscription) -> bool,
    ) -> Result<(), StoreError> {
        for _ in 0..8 {
            let Some(mut sub) = self.ports.stores.subscriptions.get(id).await? else {
                self.remember(*id, None);
                return Ok(());
            };
            if !change(&mut sub) {
                self.remember(*id, Some(sub));
                return Ok(());
            }
            sub.version += 1;
            sub.updated_at = self.ports.clock.now();
            match self.ports.stores.subscriptions.update(&sub).await {
                Ok(()) => {
                    self.remember(*id, Some(sub));
                    return Ok(());
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(StoreError::NotFound) => {
                    self.remember(*id, None);
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict(format!("{id} kept changing")))
    }

    async fn set_health(&self, id: &SubscriptionId, health: Health) {
        let result = self
            .update_subscription(id, |s| {
                if s.health == health {
                    return false;
                }
                s.health = health;
                true
            })
            .await;
        match result {
            Ok(()) => {
                tracing::info!(subscription_id = %id, health = ?health, "subscription health updated")
            }
            Err(e) => {
                tracing::error!(subscription_id = %id, health = ?health, error = %e, "could not update subscription health")
            }
        }
    }

    async fn disable(&self, id: &SubscriptionId, reason: &str) {
        let result = self
            .update_subscription(id, |s| {
                if !s.enabled {
                    return false;
                }
                s.enabled = false;
                s.disabled_reason = Some(reason.to_owned());
                true
            })
            .await;
        match result {
            Ok(()) => tracing::warn!(subscription_id = %id, reason, "subscription disabled"),
            Err(e) => {
                tracing::error!(subscription_id = %id, error = %e, "could not disable the subscription")
            }
        }
    }
}

/// The snake_case name of an error class (as stored in the attempt log).
pub fn class_name(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::Timeout => "timeout",
        ErrorClass::Connect => "connect",
        ErrorClass::Dns => "dns",
        ErrorClass::Tls => "tls",
        ErrorClass::SsrfBlocked => "ssrf_blocked",
        ErrorClass::Redirect => "redirect",
        ErrorClass::HttpStatus => "http_status",
        ErrorClass::InvalidUrl => "invalid_url",
        ErrorClass::Other => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate_utf8("héllo", 2), "h");
        assert_eq!(truncate_utf8("abc", 10), "abc");
    }

    #[test]
    fn class_names_match_serde() {
        for c in [
            ErrorClass::Timeout,
            ErrorClass::SsrfBlocked,
            ErrorClass::Redirect,
            ErrorClass::HttpStatus,
        ] {
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::json!(class_name(c))
            );
        }
    }
}
