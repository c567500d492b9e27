//! The delivery pipeline: one raw queue message in, one [`DeliveryOutcome`] out. Parse → not yet
//! due? → subscription, read fresh (deleted, disabled) → the rate limit and the attempt claim,
//! concurrently → POST → settle (delivered, re-sent for the next attempt, held, or parked in the
//! dead-letter queue) → the attempt record, which settles the claim: three sequential store round
//! trips around the POST (docs/delivery-worker.md, "Round trips and writes").

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use relay_shared::delivery::{AttemptRecord, DeliveryJob, ErrorClass, ATTEMPT_CLAIM_DAYS};
use relay_shared::events::rfc3339_millis;
use relay_shared::ids::{AttemptId, SubscriptionId};
use relay_shared::operational::{DisabledCause, OperationalEmitter, OperationalEvent, Trigger};
use relay_shared::ports::{
    AttemptRef, Claim, CorePorts, DeadLetterSink, HttpSender, QueuedJob, RateWindow, Term,
};
use relay_shared::secrets_at_rest::{SealError, SecretOpener};
use relay_shared::signing::SigningSecret;
use relay_shared::subscription::{Health, Subscription};
use relay_shared::text::truncate_utf8;

use crate::attempt::{open_secrets, post_signed, AttemptResult};
use crate::config::WorkerConfig;
use crate::metrics::{Metric, MetricsSink};
use crate::outcome::{DeferReason, DeliveryOutcome};
use crate::schedule;
use crate::subscriptions::Subscriptions;

/// The worker's ports: built once per cold start.
#[derive(Clone)]
pub struct Ports {
    /// The stores, the delivery queue (for re-sends: retries, deferrals) and the clock.
    pub core: CorePorts,
    pub http: Arc<dyn HttpSender>,
    pub dead_letter_sink: Arc<dyn DeadLetterSink>,
    /// Opens the sealed signing secrets (`kms:Decrypt`, or the local key), caching data keys for
    /// the warm container.
    pub secrets: SecretOpener,
}

/// The attempt claims' terms: the lease of the attempt being made, how long a made attempt is
/// remembered, and the attempt record the claim names (whose write settles it).
#[derive(Clone, Copy)]
struct Claims {
    lease: Term,
    remember_until: DateTime<Utc>,
    record: AttemptRef,
}

/// A new attempt id dated `now`: the one home of the id an attempt record gets.
fn new_attempt_id(now: DateTime<Utc>) -> AttemptId {
    AttemptId::new_at(now.timestamp_millis().max(0) as u64)
}

/// What the lease of an attempt claim must cover besides the delivery timeout (the claim, the
/// settle, the record).
const LEASE_MARGIN: chrono::Duration = chrono::Duration::seconds(30);

/// How long past the invocation's deadline a claim taken in it stays leased: the clock
/// difference between instances (the deadline is read on this one's clock).
const LEASE_PAST_DEADLINE: chrono::Duration = chrono::Duration::seconds(5);

tokio::task_local! {
    /// When the Lambda invocation running this task is cut off, as an instant of the worker's
    /// clock (`None`: no deadline, e.g. the local stack): see [`lease_until`].
    static INVOCATION_DEADLINE: Option<DateTime<Utc>>;
}

/// Runs `task` (one message's processing) as part of an invocation that ends at `deadline` (an
/// instant of the worker's clock: [`Worker::on_clock`]): attempt claims taken in it are leased
/// until at least then ([`lease_until`]).
pub async fn within_invocation<F: std::future::Future>(
    deadline: Option<DateTime<Utc>>,
    task: F,
) -> F::Output {
    INVOCATION_DEADLINE.scope(deadline, task).await
}

/// When an attempt claim taken at `claimed_at` ends: the delivery timeout plus [`LEASE_MARGIN`]
/// from the claim, and never before the invocation's `deadline` plus [`LEASE_PAST_DEADLINE`]. Both
/// bounds are absolute instants of one clock, taken at the claim, so time spent before it (the
/// subscription read, a KMS Decrypt, their SDK retries) cannot shorten the lease (review 22
/// G1). A holder is then never alive past its lease on Lambda, which ends the invocation at its
/// deadline: a copy taking an expired claim over knows the holder is gone, so it cannot POST
/// beside it (docs/delivery-worker.md, "Exactly once per attempt"). Without a deadline (the
/// local stack) only the first bound holds.
pub fn lease_until(
    claimed_at: DateTime<Utc>,
    delivery_timeout: Duration,
    deadline: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    let base = claimed_at
        + chrono::Duration::from_std(delivery_timeout)
            .unwrap_or_else(|_| chrono::Duration::seconds(30))
        + LEASE_MARGIN;
    deadline.map_or(base, |d| (d + LEASE_PAST_DEADLINE).max(base))
}

/// A claim this copy could not take ([`Worker::claim_next`]): the outcome to return, and
/// whether it is a duplicate copy (the attempt made or being made by another copy), whose
/// rate-limit token is given back.
struct Refused {
    outcome: DeliveryOutcome,
    duplicate: bool,
}

/// The delivery core: see [`Worker::process_message`].
pub struct Worker {
    ports: Ports,
    config: WorkerConfig,
    metrics: Arc<MetricsSink>,
    subscriptions: Subscriptions,
    /// Operational events about the webhooks delivered to (docs/operational-events.md).
    operational: OperationalEmitter,
}

/// Why a job is parked: what decides the health change and the operational events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Park {
    /// Its schedule is used up: `webhook:failing` (once per episode), no
    /// `delivery:dead-lettered` (that is the failing event's story).
    Exhausted,
    /// Any other reason (permanent failure, secret unreadable, auto-disable): the webhook is
    /// marked failing and `delivery:dead-lettered` sent.
    Failing,
    /// 410 Gone: the webhook was disabled (`webhook:disabled`); `delivery:dead-lettered` sent,
    /// the health unchanged.
    Gone,
}

/// The disabled reason of a 410.
const GONE_REASON: &str = "the receiver answered 410 Gone";

/// How much of an unparseable body is kept in the DLQ envelope.
const MAX_PARKED_RAW: usize = 200 * 1024;
/// The dead-letter reason of a job whose subscription's secret cannot be opened: its reason class
/// and what to do, never the key service's detail (that is in the log).
pub const SECRET_UNREADABLE: &str = "secret_unreadable: the webhook's signing secret cannot be \
     opened (sealed under another key, or altered); rotate the webhook's secret, then redrive";

impl Worker {
    pub fn new(ports: Ports, config: WorkerConfig) -> Self {
        Self::with_metrics(ports, config, Arc::new(MetricsSink::Stdout))
    }

    pub fn with_metrics(ports: Ports, config: WorkerConfig, metrics: Arc<MetricsSink>) -> Self {
        let subscriptions = Subscriptions::new(
            ports.core.stores.subscriptions.clone(),
            ports.core.clock.clone(),
        );
        let operational = OperationalEmitter::from_core(&ports.core, &config.operational);
        Self {
            ports,
            config,
            metrics,
            subscriptions,
            operational,
        }
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// The wall-clock instant `deadline` (Lambda's invocation deadline) as an instant of this
    /// worker's clock, the one its claims' leases are on ([`within_invocation`]).
    pub fn on_clock(&self, deadline: std::time::SystemTime) -> DateTime<Utc> {
        let now = self.ports.core.clock.now();
        // A Lambda deadline is at most 15 minutes away; the fallbacks are never reached.
        let delta =
            |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(1));
        match deadline.duration_since(std::time::SystemTime::now()) {
            Ok(left) => now + delta(left),
            Err(past) => now - delta(past.duration()),
        }
    }

    pub fn metrics(&self) -> &MetricsSink {
        &self.metrics
    }

    fn emit(&self, metric: Metric, latency_ms: Option<u64>, sub: &SubscriptionId) {
        self.metrics.emit(
            metric,
            latency_ms,
            &sub.to_string(),
            self.ports.core.clock.now().timestamp_millis(),
        );
    }

    /// Handles one queue message (the raw body of a `DeliveryJob`). `receive_count` is how many
    /// times the queue has handed this message out (for logs: SQS's redrive policy is the backstop).
    pub async fn process_message(&self, raw_body: &str, receive_count: u32) -> DeliveryOutcome {
        let job: DeliveryJob = match serde_json::from_str(raw_body) {
            Ok(job) => job,
            Err(e) => return self.park_unparseable(raw_body, &e.to_string()).await,
        };
        let (event_id, subscription_id, delivery_id) =
            (job.event_id, job.subscription_id, job.delivery_id());
        let outcome = self.process_job(job).await;
        match &outcome {
            DeliveryOutcome::Failed { error } => tracing::error!(
                %event_id, %subscription_id, %delivery_id, receive_count, %error,
                "delivery job not acknowledged; the queue will hand it out again"
            ),
            other => {
                tracing::info!(%event_id, %subscription_id, %delivery_id, receive_count, outcome = ?other, "delivery job processed")
            }
        }
        outcome
    }

    /// A message of the standard queue: an ordered job there (sent by a producer without the
    /// routed queue) is not attempted — a retry there would be held on a queue that cannot hold
    /// it — but re-sent to the ordered queue ([`DeliveryOutcome::Rerouted`]); the rest as
    /// [`Worker::process_message`].
    pub async fn process_standard_message(
        &self,
        raw_body: &str,
        receive_count: u32,
    ) -> DeliveryOutcome {
        match serde_json::from_str::<DeliveryJob>(raw_body) {
            Ok(job) if job.is_ordered() => {
                let delivery_id = job.delivery_id();
                match self.ports.core.queue.send(&[QueuedJob::now(job)]).await {
                    Ok(()) => {
                        tracing::warn!(%delivery_id, "an ordered job on the standard queue: moved to the ordered queue");
                        DeliveryOutcome::Rerouted
                    }
                    Err(e) => DeliveryOutcome::Failed {
                        error: format!("could not move an ordered job to the ordered queue: {e}"),
                    },
                }
            }
            _ => self.process_message(raw_body, receive_count).await,
        }
    }

    async fn park_unparseable(&self, raw_body: &str, error: &str) -> DeliveryOutcome {
        let reason = format!("unparseable delivery job: {error}");
        let envelope = serde_json::json!({
            "deadLetterReason": reason,
            "receivedBody": truncate_utf8(raw_body, MAX_PARKED_RAW),
        })
        .to_string();
        tracing::warn!(reason = %reason, "parking an unparseable delivery job");
        match self.ports.dead_letter_sink.park(&envelope).await {
            Ok(()) => DeliveryOutcome::DeadLettered { reason },
            Err(e) => DeliveryOutcome::Failed {
                error: format!("could not park an unparseable job: {e}"),
            },
        }
    }

    async fn process_job(&self, job: DeliveryJob) -> DeliveryOutcome {
        let now = self.ports.core.clock.now();

        // Too early (a backoff longer than SQS can delay): back on the queue, no attempt.
        // (Up to a second early counts as due: SQS delays are whole seconds and clocks differ.)
        if let Some(nb) = job.not_before {
            if nb - now > chrono::Duration::seconds(1) {
                let remaining = (nb - now).to_std().unwrap_or(Duration::ZERO);
                return self.defer(&job, DeferReason::NotYetDue, remaining).await;
            }
        }

        // Round 1: the subscription as stored now (strongly consistent, every job: a PATCH, a
        // rotation or a disable made before the job was enqueued applies to this attempt).
        let sub = match self.subscriptions.get(&job.subscription_id).await {
            Ok(Some(sub)) => sub,
            Ok(None) => {
                tracing::info!(subscription_id = %job.subscription_id, event_id = %job.event_id, "subscription deleted: dropping the job");
                return DeliveryOutcome::Dropped {
                    reason: "subscription deleted".into(),
                };
            }
            Err(e) => {
                return DeliveryOutcome::Failed {
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
            let skipped = AttemptResult::skipped(reason.clone());
            let id = new_attempt_id(now);
            self.record_attempt(&skipped.record(id, &job, job.next_attempt(), now), now)
                .await;
            return DeliveryOutcome::Skipped { reason };
        }

        // The signing secrets, before any token or claim is spent on an attempt that could not
        // be signed.
        let secrets = match open_secrets(&self.ports.secrets, &sub, now).await {
            Ok(secrets) => secrets,
            Err(e) => return self.secrets_unopened(job, &sub, e).await,
        };

        // Round 2: the rate-limit token (per subscription, shared by every instance: fixed
        // minute windows) and the attempt claim, concurrently. Exactly one worker makes a given
        // attempt: SQS may hand one message to two consumers, and a copy that arrives after the
        // attempt was made must not POST again. The claim names the record the attempt will
        // leave, whose write settles it.
        let limit = if sub.rate_limit_per_minute == 0 {
            self.config.default_rate_limit_per_minute
        } else {
            sub.rate_limit_per_minute
        };
        let window = RateWindow::containing(now, limit);
        let claims = self.claims(&job, now);
        let rate_limits = &self.ports.core.stores.rate_limits;
        let (allowed, claimed) = tokio::join!(
            rate_limits.try_acquire(&sub.id, window),
            self.claim_next(&job, claims)
        );
        let (attempt, taken_over) = match claimed {
            Ok(claimed) => claimed,
            // Not this copy's to make. A duplicate copy (made already, or being made) gives the
            // token it took back: a Webex redelivery is queued again to every subscriber, and
            // must not eat the webhook's limit. (If the claim itself failed, the token is
            // spent: rare, and only ever early on the limit, never over it.)
            Err(Refused { outcome, duplicate }) => {
                if duplicate {
                    self.duplicate_copy(&job, &sub.id, window, &allowed, &outcome)
                        .await;
                }
                return outcome;
            }
        };
        let claim_key = job.claim_key(attempt);
        let ours = Some(claims.record);
        if attempt > self.config.schedule.max_attempts() {
            // Every attempt of an ordered job was made and held, but parking it failed then.
            self.release_claim(&claim_key, ours).await;
            let reason = format!("all {} attempts failed", attempt - 1);
            return self.dead_letter(job, &sub, reason, Park::Exhausted).await;
        }
        match allowed {
            Ok(true) => {}
            Ok(false) => {
                // No attempt now: the claim is given back for the deferred copy.
                self.release_claim(&claim_key, ours).await;
                return self.rate_limited(&job, &sub, window, limit, now).await;
            }
            Err(e) => {
                self.release_claim(&claim_key, ours).await;
                return DeliveryOutcome::Failed {
                    error: format!("rate limiter: {e}"),
                };
            }
        }
        self.attempt_and_settle(job, &sub, &secrets, (attempt, taken_over), claims, now)
            .await
    }

    /// A duplicate copy met the attempt's claim (`outcome`: dropped, or left for later): the
    /// rate-limit token it took (`allowed`) is given back, one conditional decrement, and the
    /// copy counted (`DuplicateCopy`).
    async fn duplicate_copy(
        &self,
        job: &DeliveryJob,
        sub_id: &SubscriptionId,
        window: RateWindow,
        allowed: &Result<bool, relay_shared::error::StoreError>,
        outcome: &DeliveryOutcome,
    ) {
        self.emit(Metric::DuplicateCopy, None, sub_id);
        let given_back = if matches!(allowed, Ok(true)) {
            let rate_limits = &self.ports.core.stores.rate_limits;
            match rate_limits.give_back(sub_id, window).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(subscription_id = %sub_id, error = %e, "could not give the duplicate copy's rate-limit token back (it stays spent)");
                    false
                }
            }
        } else {
            false
        };
        tracing::info!(delivery_id = %job.delivery_id(), outcome = ?outcome, token_given_back = given_back, "a duplicate copy of the job met its attempt's claim");
    }

    /// The limit is used up: each waiting job gets its own future slot (one minute / limit
    /// apart, from the next window on), so a backlog of B jobs is re-sent about B times in all,
    /// not every minute each (docs/delivery-worker.md, "Rate limit").
    async fn rate_limited(
        &self,
        job: &DeliveryJob,
        sub: &Subscription,
        window: RateWindow,
        limit: u32,
        now: DateTime<Utc>,
    ) -> DeliveryOutcome {
        let interval = RateWindow::LENGTH / limit.max(1) as i32;
        let slot = match self
            .ports
            .core
            .stores
            .rate_limits
            .reserve_slots(&sub.id, window.end(), interval, 1)
            .await
        {
            Ok(slot) => slot,
            Err(e) => {
                return DeliveryOutcome::Failed {
                    error: format!("reserving a delivery slot: {e}"),
                }
            }
        };
        let wait = (slot - now).to_std().unwrap_or(Duration::from_secs(1));
        tracing::info!(subscription_id = %sub.id, limit, %slot, "rate limit reached: deferring to the webhook's next free slot");
        self.defer(job, DeferReason::RateLimited, wait).await
    }

    /// The terms of `job`'s attempt claim, taken now (on the worker's clock, at the claim: not
    /// at the job's start `started`, see [`lease_until`]), naming a new attempt id (dated
    /// `started`, as the record is) for its record.
    fn claims(&self, job: &DeliveryJob, started: DateTime<Utc>) -> Claims {
        let deadline = INVOCATION_DEADLINE.try_with(|d| *d).ok().flatten();
        let now = self.ports.core.clock.now();
        Claims {
            lease: Term::new(
                now,
                lease_until(now, self.config.delivery_timeout, deadline),
            ),
            remember_until: now + chrono::Duration::days(ATTEMPT_CLAIM_DAYS),
            record: AttemptRef {
                subscription_id: job.subscription_id,
                attempt_id: new_attempt_id(started),
            },
        }
    }

    /// Claims the attempt this copy of `job` is to make (the next one in its body; an ordered
    /// job's first one not made yet); the outcome to return when there is none to make here.
    /// With it, whether this copy took the claim over (a standard job's only: see
    /// [`Self::fence_successor`]).
    async fn claim_next(&self, job: &DeliveryJob, claims: Claims) -> Result<(u32, bool), Refused> {
        if job.is_ordered() {
            let attempt = self.next_ordered_attempt(job, claims).await?;
            Ok((attempt, false))
        } else {
            let attempt = job.next_attempt();
            let taken_over = self.claim(job, attempt, claims).await?;
            Ok((attempt, taken_over))
        }
    }

    /// Claims attempt `attempt` of `job` (`true`: taken over from a holder whose lease ran out);
    /// the outcome to return when it cannot be made here.
    async fn claim(
        &self,
        job: &DeliveryJob,
        attempt: u32,
        claims: Claims,
    ) -> Result<bool, Refused> {
        let duplicate = |outcome| Refused {
            outcome,
            duplicate: true,
        };
        match self
            .ports
            .core
            .stores
            .dedupe
            .claim_attempt(
                &job.claim_key(attempt),
                claims.record,
                claims.lease,
                claims.remember_until,
            )
            .await
        {
            Ok(Claim::Claimed) => Ok(false),
            Ok(Claim::TakenOver) => self.taken_over(job, attempt, claims).await.map(|()| true),
            Ok(Claim::Done) => Err(duplicate(DeliveryOutcome::Dropped {
                reason: format!("attempt {attempt} was already made (duplicate queue message)"),
            })),
            Ok(Claim::InProgress) => Err(duplicate(DeliveryOutcome::Failed {
                error: format!(
                    "attempt {attempt} is being made by another worker; this copy comes back later"
                ),
            })),
            Err(e) => Err(Refused {
                outcome: DeliveryOutcome::Failed {
                    error: format!("claiming attempt {attempt}: {e}"),
                },
                duplicate: false,
            }),
        }
    }

    /// This copy took attempt `attempt`'s claim over from a holder whose lease ran out unsettled.
    /// That holder may have crashed after settling the job but before its record (which is
    /// written last): a standard job's successor re-sent for the next attempt, an ordered job's
    /// attempt held. Either leaves a mark this copy can read (one read, on this rare path only):
    /// the next attempt's claim (the re-sent copy's, once it was received) or the held record. A
    /// mark → the attempt was made and settled: the claim is completed (later copies stop at
    /// once) and this copy is a duplicate, no POST. What remains (the re-sent copy not received
    /// yet, or claiming between this read and the POST) is in docs/delivery-worker.md, "Exactly
    /// once per attempt".
    async fn taken_over(
        &self,
        job: &DeliveryJob,
        attempt: u32,
        claims: Claims,
    ) -> Result<(), Refused> {
        let claim_key = job.claim_key(attempt);
        let mark = if job.is_ordered() {
            job.held_attempt_key(attempt)
        } else {
            job.claim_key(attempt + 1)
        };
        let dedupe = &self.ports.core.stores.dedupe;
        match dedupe.exists(&mark, claims.lease.from).await {
            Ok(false) => Ok(()),
            Ok(true) => {
                tracing::warn!(delivery_id = %job.delivery_id(), attempt, "took over an unsettled attempt claim whose attempt was settled (its successor is under way): a duplicate copy, no POST");
                if let Err(e) = dedupe.complete(&claim_key, claims.remember_until).await {
                    tracing::warn!(error = %e, claim = %claim_key, "could not mark the settled attempt's claim done (the next copy reads the mark again)");
                }
                Err(Refused {
                    outcome: DeliveryOutcome::Dropped {
                        reason: format!(
                            "attempt {attempt} was already made (its successor is under way; duplicate queue message)"
                        ),
                    },
                    duplicate: true,
                })
            }
            Err(e) => {
                self.release_claim(&claim_key, Some(claims.record)).await;
                Err(Refused {
                    outcome: DeliveryOutcome::Failed {
                        error: format!("reading attempt {attempt}'s successor mark: {e}"),
                    },
                    duplicate: false,
                })
            }
        }
    }

    /// An ordered job is never re-sent, so its body does not count its attempts: attempt `n`
    /// was made and held back for the next one when both its claim and its held record are done
    /// ([`DeliveryJob::held_attempt_key`]). Claims the first attempt not made yet; a made
    /// attempt without a held record was settled (delivered, dead-lettered): a duplicate. Each
    /// attempt made before costs two more conditional writes (its claim's, its hold's) and,
    /// when not held, a delete.
    async fn next_ordered_attempt(
        &self,
        job: &DeliveryJob,
        claims: Claims,
    ) -> Result<u32, Refused> {
        let dedupe = &self.ports.core.stores.dedupe;
        let mut attempt = 1;
        loop {
            match self.claim(job, attempt, claims).await {
                Ok(_) => return Ok(attempt),
                Err(Refused {
                    outcome: DeliveryOutcome::Dropped { reason },
                    ..
                }) => {
                    let held = job.held_attempt_key(attempt);
                    // A claim with no lease reads the record: `Done` if it was written.
                    let now = claims.lease.from;
                    match dedupe
                        .claim(&held, Term::new(now, now), claims.remember_until)
                        .await
                    {
                        Ok(Claim::Done) => attempt += 1,
                        Ok(Claim::Claimed | Claim::TakenOver) => {
                            self.release_claim(&held, None).await;
                            return Err(Refused {
                                outcome: DeliveryOutcome::Dropped { reason },
                                duplicate: true,
                            });
                        }
                        // Another copy reading it this instant: neither tells, come back later.
                        Ok(Claim::InProgress) => {
                            return Err(Refused {
                                outcome: DeliveryOutcome::Failed {
                                    error: format!(
                                        "attempt {attempt}'s hold is being read by another worker"
                                    ),
                                },
                                duplicate: true,
                            })
                        }
                        Err(e) => {
                            return Err(Refused {
                                outcome: DeliveryOutcome::Failed {
                                    error: format!("reading attempt {attempt}'s hold: {e}"),
                                },
                                duplicate: false,
                            })
                        }
                    }
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// Gives up the claim `key` this copy holds (`holder`: the record it named; `None` for a
    /// hold's claim, which names none): a claim taken over since stays its new holder's.
    async fn release_claim(&self, key: &str, holder: Option<AttemptRef>) {
        if let Err(e) = self.ports.core.stores.dedupe.release(key, holder).await {
            tracing::warn!(error = %e, claim = %key, "could not release the attempt claim (its lease expires by itself)");
        }
    }

    /// Makes attempt `attempt` and settles the job: delivered, re-sent for the next attempt,
    /// held, or parked in the DLQ; then writes the attempt record the claim names, which settles
    /// the claim. Last, so that once it exists everything the attempt caused is stored: a crash
    /// before it leaves the claim unsettled and a redelivered copy makes the attempt again after
    /// the lease (at least once), a crash after it finds the record (never again).
    ///
    /// `taken_over`: the claim was taken over (see [`Self::fence_successor`]).
    async fn attempt_and_settle(
        &self,
        job: DeliveryJob,
        sub: &Subscription,
        secrets: &[SigningSecret],
        (attempt, taken_over): (u32, bool),
        claims: Claims,
        now: DateTime<Utc>,
    ) -> DeliveryOutcome {
        let result = post_signed(
            self.ports.http.as_ref(),
            &self.config,
            &job,
            sub,
            secrets,
            attempt,
            now,
        )
        .await;
        let record = result.record(claims.record.attempt_id, &job, attempt, now);
        let claim_key = job.claim_key(attempt);
        let successor = (taken_over && !job.is_ordered()).then(|| job.claim_key(attempt + 1));
        let outcome = self.settle(job, sub, &result, attempt, now).await;
        if outcome.settled_an_attempt() {
            // The record before the fence (review 22 G3 weighed, order kept): the other order
            // opens a wider hole. A crash between a fence and the record leaves claim n unsettled
            // with the fence in place; the next taker cannot tell the fence from the successor's
            // claim, reads it as the mark and drops, so a delivered attempt is never recorded
            // (the crash-point sweep's "exactly one succeeded attempt recorded" fails after any
            // second crash at a taker's record, re-send or not). This order's remaining window
            // needs three things: a crash between a re-send and its record, the re-sent copy
            // still to come after the take-over, and a second crash between the taker's record
            // and its fence; then that copy makes attempt n+1 after the recorded success (one
            // duplicate POST: docs/delivery-worker.md, "Exactly once per attempt"). Closing it
            // needs a fence that names the taker's record, so a later taker finding the record
            // missing makes the attempt again instead of dropping (a DedupeStore change).
            self.settle_claim(&record, &claim_key, claims.remember_until, now)
                .await;
            if let Some(successor) = successor {
                self.fence_successor(&successor, &outcome, claims.remember_until)
                    .await;
            }
        } else {
            // Its successor (re-send, hold, park) was not stored: the claim is released so the
            // redelivered copy makes this attempt again. The attempt made is still logged, under
            // an id of its own (under the claim's name it would settle the claim).
            let id = new_attempt_id(now);
            self.record_attempt(&AttemptRecord { id, ..record }, now)
                .await;
            self.release_claim(&claim_key, Some(claims.record)).await;
        }
        outcome
    }

    /// After a take-over with no successor's mark ([`Self::taken_over`]), this copy made the
    /// attempt again; the overtaken holder may still have re-sent the job for the next attempt,
    /// a copy not received yet (its delay outlasting the visibility timeout, or deferred). If
    /// this attempt delivered, the next attempt's claim is marked done (one write, on this path
    /// only), so that copy is dropped as a duplicate when it comes: no POST after this success.
    /// A retry needs nothing: the two copies of the next attempt collapse at its claim. A park
    /// is not fenced (review 22 G4): it is no recorded success, the overtaken holder's re-sent
    /// copy would only make one more attempt, and a fence would silently drop a same-run
    /// redrive of the parked job (the SQS console's "Start DLQ redrive" puts the body back
    /// unchanged, so it comes for attempt n+1).
    async fn fence_successor(
        &self,
        successor: &str,
        outcome: &DeliveryOutcome,
        remember_until: DateTime<Utc>,
    ) {
        if !matches!(outcome, DeliveryOutcome::Delivered { .. }) {
            return;
        }
        let dedupe = &self.ports.core.stores.dedupe;
        if let Err(e) = dedupe.complete(successor, remember_until).await {
            tracing::warn!(error = %e, claim = %successor, "could not mark the next attempt's claim done after a take-over: a copy re-sent by the overtaken holder may POST again");
        }
    }

    /// The attempt record `record` (the one its claim names): the claim's settlement. If it
    /// cannot be written, or expires before the claim does (`ATTEMPT_RETENTION_DAYS` shorter
    /// than the claim's memory), the claim is marked done as well, so the made attempt is still
    /// remembered.
    async fn settle_claim(
        &self,
        record: &AttemptRecord,
        claim_key: &str,
        remember_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) {
        let expires_at = now + self.config.attempt_ttl;
        let attempts = &self.ports.core.stores.attempts;
        match attempts.record(record, expires_at).await {
            Ok(()) if expires_at >= remember_until => return,
            Ok(()) => {}
            Err(e) => {
                tracing::error!(subscription_id = %record.subscription_id, attempt = record.attempt, error = %e, "could not write the attempt log; marking the attempt claim done instead");
            }
        }
        let dedupe = &self.ports.core.stores.dedupe;
        if let Err(e) = dedupe.complete(claim_key, remember_until).await {
            tracing::warn!(error = %e, claim = %claim_key, "could not settle the attempt claim: after its lease a redelivered copy may make this attempt again");
        }
    }

    /// What attempt `attempt`'s `result` means for the job: delivered, re-sent for the next
    /// attempt, held, or parked (and the webhook's health with it).
    async fn settle(
        &self,
        mut job: DeliveryJob,
        sub: &Subscription,
        result: &AttemptResult,
        attempt: u32,
        now: DateTime<Utc>,
    ) -> DeliveryOutcome {
        job.attempts.push(result.summary(attempt, now));

        if result.succeeded() {
            self.emit(Metric::Delivered, Some(result.duration_ms), &sub.id);
            // The copy read for this job is the stored state: only a failing one has a streak
            // to end (re-read before the transition, another container may have ended it).
            if sub.health == Health::Failing || sub.failing_since.is_some() {
                self.recovered(sub, &job, now).await;
            }
            return DeliveryOutcome::Delivered {
                attempt,
                status: result.status_code.unwrap_or(200),
            };
        }
        self.emit(Metric::Failed, Some(result.duration_ms), &sub.id);
        if result.gone {
            self.disable(sub, DisabledCause::Gone, GONE_REASON, now)
                .await;
            return self
                .dead_letter(
                    job,
                    sub,
                    "the receiver answered 410 Gone: subscription disabled".into(),
                    Park::Gone,
                )
                .await;
        }
        // The failing streak (started now unless under way): what auto-disable measures.
        let failing_since = self.subscriptions.failing_since(sub, now).await;
        if self.auto_disable_due(failing_since, now).is_some() {
            if let Some(reason) = self.auto_disable(sub, now).await {
                return self
                    .dead_letter(
                        job,
                        sub,
                        format!("webhook auto-disabled: {reason}"),
                        Park::Failing,
                    )
                    .await;
            }
        }
        if result.permanent {
            let reason = format!(
                "permanent failure ({}): {}",
                result
                    .error_class
                    .map(ErrorClass::as_str)
                    .unwrap_or("other"),
                result.error.as_deref().unwrap_or("")
            );
            return self.dead_letter(job, sub, reason, Park::Failing).await;
        }
        let Some(scheduled) = self.config.schedule.delay_after(attempt) else {
            let reason = format!(
                "all {attempt} attempts failed (last: {})",
                result.failure_summary()
            );
            return self.dead_letter(job, sub, reason, Park::Exhausted).await;
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
        if job.is_ordered() {
            return self.hold_after(&job, attempt, delay, &sub.id).await;
        }
        job.not_before =
            Some(now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero()));
        let queued = QueuedJob {
            job,
            delay_seconds: schedule::sqs_delay_seconds(delay),
        };
        match self
            .ports
            .core
            .queue
            .send(std::slice::from_ref(&queued))
            .await
        {
            Ok(()) => {
                self.emit(Metric::Retried, None, &sub.id);
                DeliveryOutcome::Retrying { attempt, delay }
            }
            Err(e) => DeliveryOutcome::Failed {
                error: format!("re-sending for the next attempt: {e}"),
            },
        }
    }

    /// No attempt without the secrets. The key service unavailable (throttled, unreachable,
    /// access denied, key disabled: a fault of the key or its grant, `SealError::Unavailable`): not
    /// acknowledged, so the queue hands the job out again later, like a failed store read: no
    /// attempt counted, nothing lost. The secret unreadable under this relay's key (sealed under
    /// another key, tampered: `SealError::Rejected`): retrying cannot help, so the job is parked
    /// with [`SECRET_UNREADABLE`] and the subscription marked failing.
    async fn secrets_unopened(
        &self,
        job: DeliveryJob,
        sub: &Subscription,
        error: SealError,
    ) -> DeliveryOutcome {
        match error {
            SealError::Unavailable(detail) => {
                self.emit(Metric::SecretUnavailable, None, &sub.id);
                DeliveryOutcome::Failed {
                    error: format!("opening the signing secret: key service unavailable: {detail}"),
                }
            }
            SealError::Rejected(detail) => {
                tracing::error!(subscription_id = %sub.id, event_id = %job.event_id, error = %detail, "the signing secret cannot be opened");
                self.dead_letter(job, sub, SECRET_UNREADABLE.to_owned(), Park::Failing)
                    .await
            }
        }
    }

    /// An ordered job's failed attempt: recorded as held (so the next receive makes the next
    /// attempt), then left on the queue for `delay`, holding back its group.
    async fn hold_after(
        &self,
        job: &DeliveryJob,
        attempt: u32,
        delay: Duration,
        sub_id: &SubscriptionId,
    ) -> DeliveryOutcome {
        let remember_until =
            self.ports.core.clock.now() + chrono::Duration::days(ATTEMPT_CLAIM_DAYS);
        match self
            .ports
            .core
            .stores
            .dedupe
            .complete(&job.held_attempt_key(attempt), remember_until)
            .await
        {
            Ok(()) => {
                self.emit(Metric::Retried, None, sub_id);
                DeliveryOutcome::Held {
                    attempt: Some(attempt),
                    delay,
                }
            }
            // Not recorded: the claim is released and the same attempt is made again.
            Err(e) => DeliveryOutcome::Failed {
                error: format!("recording held attempt {attempt}: {e}"),
            },
        }
    }

    /// Re-sends the job unchanged (no attempt counted) to come back after `wait`; an ordered job
    /// is held on its queue instead (a re-sent copy would queue behind its successors).
    async fn defer(
        &self,
        job: &DeliveryJob,
        reason: DeferReason,
        wait: Duration,
    ) -> DeliveryOutcome {
        if job.is_ordered() {
            self.emit(Metric::Deferred, None, &job.subscription_id);
            return DeliveryOutcome::Held {
                attempt: None,
                delay: wait,
            };
        }
        let mut job = job.clone();
        let now = self.ports.core.clock.now();
        if reason == DeferReason::RateLimited {
            job.not_before =
                Some(now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::zero()));
        }
        let delay_seconds = schedule::sqs_delay_seconds(wait).max(1);
        let sub_id = job.subscription_id;
        match self
            .ports
            .core
            .queue
            .send(&[QueuedJob { job, delay_seconds }])
            .await
        {
            Ok(()) => {
                self.emit(Metric::Deferred, None, &sub_id);
                DeliveryOutcome::Deferred {
                    reason,
                    delay: wait,
                }
            }
            Err(e) => DeliveryOutcome::Failed {
                error: format!("re-sending a deferred job: {e}"),
            },
        }
    }

    /// Parks the job with its attempt history; marks the subscription failing (unless `Gone`)
    /// and reports it (docs/operational-events.md).
    async fn dead_letter(
        &self,
        mut job: DeliveryJob,
        sub: &Subscription,
        reason: String,
        park: Park,
    ) -> DeliveryOutcome {
        job.dead_letter_reason = Some(reason.clone());
        job.not_before = None;
        let body = match serde_json::to_string(&job) {
            Ok(b) => b,
            Err(e) => {
                return DeliveryOutcome::Failed {
                    error: format!("serialising the job: {e}"),
                }
            }
        };
        if let Err(e) = self.ports.dead_letter_sink.park(&body).await {
            return DeliveryOutcome::Failed {
                error: format!("parking the job in the dead-letter queue: {e}"),
            };
        }
        tracing::warn!(subscription_id = %job.subscription_id, event_id = %job.event_id, reason = %reason, "delivery job dead-lettered");
        self.emit(Metric::DeadLettered, None, &job.subscription_id);
        let now = self.ports.core.clock.now();
        // Not about an operational event's own delivery: a webhook failing to take operational
        // events must not answer each with another one (two failing siblings would feed each
        // other). Its failing/disabled/recovered transitions are still reported, once each.
        if park != Park::Exhausted && !job.event_type.is_operational() {
            let op = OperationalEvent::dead_lettered(sub, &Trigger::of(&job), &reason, now);
            self.operational.emit_logged(&op).await;
        }
        if park != Park::Gone {
            self.failing(&job, now).await;
        }
        DeliveryOutcome::DeadLettered { reason }
    }

    /// The webhook of `job` starts failing (if it was not already): `webhook:failing` is sent
    /// before the health is written, so a crash between the two sends it again on the retry, as
    /// the same event (its id is the transition's: the subscription's version).
    async fn failing(&self, job: &DeliveryJob, now: DateTime<Utc>) {
        match self.subscriptions.get(&job.subscription_id).await {
            Ok(Some(before)) if before.health == Health::Healthy => {
                self.emit(Metric::WebhookFailing, None, &job.subscription_id);
                let op = OperationalEvent::failing(&before, &Trigger::of(job), now);
                self.operational.emit_logged(&op).await;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(subscription_id = %job.subscription_id, error = %e, "could not read the subscription to report it failing")
            }
        }
        self.subscriptions.set_failing(&job.subscription_id).await;
    }

    /// A success after failures: `webhook:recovered` when the webhook was marked failing (sent
    /// before the health is written, as [`Self::failing`]), and the failing streak ended.
    async fn recovered(&self, sub: &Subscription, job: &DeliveryJob, now: DateTime<Utc>) {
        match self.subscriptions.get(&sub.id).await {
            Ok(Some(before)) if before.health == Health::Failing => {
                let op = OperationalEvent::recovered(&before, job.event_id, now);
                self.operational.emit_logged(&op).await;
            }
            // Stored healthy, no streak (another container's success ended it): nothing to end.
            Ok(Some(before)) if before.failing_since.is_none() => return,
            Ok(None) => return,
            Ok(_) => {}
            Err(e) => {
                tracing::error!(subscription_id = %sub.id, error = %e, "could not read the subscription to report it recovered")
            }
        }
        self.subscriptions.set_recovered(&sub.id).await;
    }

    /// Disables the webhook for `cause`, sending `webhook:disabled` first if it is still enabled.
    async fn disable(
        &self,
        sub: &Subscription,
        cause: DisabledCause,
        reason: &str,
        now: DateTime<Utc>,
    ) {
        match self.subscriptions.get(&sub.id).await {
            Ok(Some(before)) if before.enabled => {
                self.emit(Metric::WebhookDisabled, None, &sub.id);
                let op = OperationalEvent::disabled(&before, cause, reason, None, now);
                self.operational.emit_logged(&op).await;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(subscription_id = %sub.id, error = %e, "could not read the subscription to report it disabled")
            }
        }
        self.subscriptions.disable(&sub.id, reason, |_| true).await;
    }

    /// Auto-disables the webhook if its STORED streak calls for it (the job's copy, read before
    /// the attempt, may show a start that a success on another container has ended since): read
    /// again, `webhook:disabled` sent first (as [`Self::disable`]), then disabled only if the
    /// stored start is still the one decided on. The reason when it is disabled (or already
    /// was); `None`: keep failing as usual. A recovery landing between the read and the write
    /// leaves it enabled, its `webhook:disabled` already sent: the price of sending first.
    async fn auto_disable(&self, sub: &Subscription, now: DateTime<Utc>) -> Option<String> {
        let before = match self.subscriptions.get(&sub.id).await {
            Ok(before) => before?,
            Err(e) => {
                tracing::error!(subscription_id = %sub.id, error = %e, "could not read the subscription to decide on auto-disable");
                return None;
            }
        };
        // On the stored copy: its streak, or one starting now if it has ended.
        let since = self.subscriptions.failing_since(&before, now).await?;
        let reason = self.auto_disable_due(Some(since), now)?;
        if before.enabled {
            self.emit(Metric::WebhookDisabled, None, &sub.id);
            let op =
                OperationalEvent::disabled(&before, DisabledCause::AutoDisable, &reason, None, now);
            self.operational.emit_logged(&op).await;
        }
        self.subscriptions
            .disable(&sub.id, &reason, |s| s.failing_since == Some(since))
            .await
            .then_some(reason)
    }

    /// The auto-disable policy: the reason to disable a webhook failing since `failing_since`,
    /// when that is at least `AUTO_DISABLE_AFTER_HOURS` ago.
    fn auto_disable_due(
        &self,
        failing_since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<String> {
        let after = self.config.auto_disable_after?;
        let since = failing_since?;
        (now - since >= after).then(|| {
            format!(
                "failing continuously since {} (AUTO_DISABLE_AFTER_HOURS={})",
                rfc3339_millis(since),
                after.num_hours()
            )
        })
    }

    async fn record_attempt(&self, record: &AttemptRecord, now: DateTime<Utc>) {
        if let Err(e) = self
            .ports
            .core
            .stores
            .attempts
            .record(record, now + self.config.attempt_ttl)
            .await
        {
            // The job itself carries its attempt history; a lost log row must not cause a duplicate delivery.
            tracing::error!(subscription_id = %record.subscription_id, attempt = record.attempt, error = %e, "could not write the attempt log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lease covers the delivery timeout plus its margin from the claim, and never ends
    /// before the invocation's deadline (plus 5 s): a holder cannot be alive past it on Lambda.
    #[test]
    fn the_lease_outlasts_the_invocation() {
        let secs = chrono::Duration::seconds;
        let t = Utc::now();
        let timeout = Duration::from_secs(10);
        assert_eq!(lease_until(t, timeout, None), t + secs(40), "no deadline");
        assert_eq!(
            lease_until(t, timeout, Some(t + secs(58))),
            t + secs(63),
            "DELIVERY_TIMEOUT_SECONDS=10 in a 60 s function: the invocation's end"
        );
        assert_eq!(
            lease_until(t, Duration::from_secs(30), Some(t + secs(20))),
            t + secs(60),
            "little left: the delivery timeout's bound"
        );
        assert_eq!(lease_until(t, timeout, Some(t)), t + secs(40));
    }
}
