//! # presence-poller
//!
//! The presence webhook contract (docs/presence-poller.md) made real: once a minute an invocation
//! takes the org's lease, loads the last-known presence states once, then every
//! `PRESENCE_POLL_INTERVAL_MS` lists the org's people from Webex (`GET /v1/people`, all pages),
//! diffs the complete listing against the states in memory, emits one `presence:changed` event per
//! cycle with changes (body exactly as that contract's `user-presence` body — its 13 fields, plus
//! `PRESENCE_EXTRA_FIELDS` — split under 256 KiB), fans it out to the org's subscriptions, and
//! writes only the changed states — until the invocation deadline minus a safety margin. Webex
//! calls stay within the token's budget (`PRESENCE_WEBEX_CALLS_PER_MINUTE`): a listing that needs
//! more stretches the cycle.
//!
//! The core (`Poller`) only sees ports, so the same code runs on Lambda (`handler`), in the local
//! stack and in the tests.

pub mod budget;
pub mod config;
pub mod diff;
pub mod emit;
pub mod fetch;
pub mod handler;
pub mod health;
pub mod org;
pub mod token;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use relay_shared::call_presence::{self, Verdict};
use relay_shared::error::StoreError;
use relay_shared::operational::{OperationalArgs, OperationalEmitter, OperationalEvent};
use relay_shared::ports::{
    Clock, DeliveryQueue, EventLog, LeaseStore, PresenceRecord, PresenceStore, Stores,
    SubscriptionStore, Term, WebexClient,
};
use relay_shared::retry::Backoff;
use relay_shared::webex::Person;
use relay_shared::webex_token::TokenSource;
use serde::{Deserialize, Serialize};
use tokio::time::{Instant, MissedTickBehavior};

use budget::CallBudget;
pub use config::PollerConfig;
use emit::{EmitError, Emitted, Outbox};
use fetch::{Calls, FetchError, Lister};

/// How many error messages a summary keeps.
const MAX_SUMMARY_ERRORS: usize = 20;

/// The presence poller of one org (or one location of it).
pub struct Poller {
    presence: Arc<dyn PresenceStore>,
    leases: Arc<dyn LeaseStore>,
    subscriptions: Arc<dyn SubscriptionStore>,
    events: Arc<dyn EventLog>,
    webex: Arc<dyn WebexClient>,
    queue: Arc<dyn DeliveryQueue>,
    clock: Arc<dyn Clock>,
    /// Outlives the invocations of a warm function: the budget is per token, not per run.
    budget: CallBudget,
    config: PollerConfig,
    /// The org's operational events `presence:throttled` and `webex:token-refresh-failed`
    /// (docs/operational-events.md).
    operational: OperationalEmitter,
    /// Where a failed token refresh is read from (`None`: a fixed token, nothing to report).
    tokens: Option<Arc<dyn TokenSource>>,
}

/// The root span of one run: a Lambda invocation (`request_id`: its request id) or one run of the
/// local stack's presence loop. What the run queues carries its trace context and its log lines
/// the trace (and request) ids (docs/observability.md, "Tracing"). Instrument the run with it.
pub fn invocation_span(request_id: Option<&str>) -> tracing::Span {
    let span = tracing::info_span!("presence.invocation", "otel.kind" = "internal");
    relay_shared::telemetry::start(
        &span,
        relay_shared::telemetry::Start {
            request_id,
            ..Default::default()
        },
    );
    span
}

/// How one run (one invocation) is bounded.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Who holds the lease (the Lambda request id).
    pub holder: String,
    /// No cycle starts at or after this instant, and none waits past it.
    pub stop_at: Instant,
    /// Stop after this many cycles (tests; `None` on Lambda).
    pub max_cycles: Option<u32>,
}

impl RunOptions {
    pub fn until(holder: impl Into<String>, stop_at: Instant) -> Self {
        Self {
            holder: holder.into(),
            stop_at,
            max_cycles: None,
        }
    }

    /// Stops `safety_margin` before a Lambda deadline given in milliseconds since the Unix epoch,
    /// and after at most `max_run` when set. A "deadline" below the year 2001 is taken as the
    /// remaining time itself (some local emulators send the timeout rather than an instant).
    pub fn for_deadline(
        holder: impl Into<String>,
        deadline_ms: u64,
        safety_margin: Duration,
        max_run: Option<Duration>,
    ) -> Self {
        const EPOCH_MS_FLOOR: u64 = 978_307_200_000;
        let remaining = if deadline_ms < EPOCH_MS_FLOOR {
            Duration::from_millis(deadline_ms)
        } else {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            Duration::from_millis(deadline_ms.saturating_sub(now_ms))
        };
        let mut run = remaining.saturating_sub(safety_margin);
        if let Some(max) = max_run {
            run = run.min(max);
        }
        Self::until(holder, Instant::now() + run)
    }

    pub fn max_cycles(mut self, n: u32) -> Self {
        self.max_cycles = Some(n);
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// The loop ran (some cycles may have failed: see `failedCycles` and `errors`).
    Completed,
    /// Another poller holds the lease, or no time was left: nothing was polled.
    Skipped,
    /// The lease could not be taken because the store failed.
    Failed,
}

/// What an invocation returns (and logs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub org_id: String,
    pub holder: String,
    /// Cycles attempted (failed ones included).
    pub cycles: u32,
    pub failed_cycles: u32,
    /// Ticks not polled because of a back-off or a `Retry-After`.
    pub skipped_ticks: u32,
    /// People in the last complete listing.
    pub people_seen: usize,
    /// Of those, people listed without `status` (status sharing disabled, presence unavailable):
    /// never changes, never emitted.
    #[serde(default)]
    pub people_without_status: usize,
    /// Changed people emitted (over every cycle).
    pub changes: usize,
    /// People recorded as the baseline of a first run (emitted only with `PRESENCE_EMIT_BASELINE`).
    pub baseline_recorded: usize,
    pub events: usize,
    pub jobs: usize,
    pub webex_calls: u32,
    /// Of those, answers that were a Webex rate limit (429/423; metric `WebexRateLimited`).
    #[serde(default)]
    pub webex_rate_limited: u32,
    /// How long each completed (not failed) cycle took, in ms: the `PresenceCycleTime` metric,
    /// whose sample count is the completed cycles (the `PresenceLoopStalledAlarm` watches it).
    /// Not in the JSON summary (up to one value per cycle).
    #[serde(skip)]
    pub cycle_durations_ms: Vec<u64>,
    /// Time the calls waited for the budget (`PRESENCE_WEBEX_CALLS_PER_MINUTE`): above zero, the
    /// cycles were stretched.
    #[serde(default)]
    pub budget_wait_ms: u64,
    pub state_loads: u32,
    pub state_records_written: usize,
    pub error_count: u32,
    pub errors: Vec<String>,
    pub duration_ms: u64,
}

impl Summary {
    fn new(config: &PollerConfig, holder: &str, status: RunStatus) -> Self {
        Self {
            status,
            reason: None,
            org_id: config.org_id.clone(),
            holder: holder.to_owned(),
            cycles: 0,
            failed_cycles: 0,
            skipped_ticks: 0,
            people_seen: 0,
            people_without_status: 0,
            changes: 0,
            baseline_recorded: 0,
            events: 0,
            jobs: 0,
            webex_calls: 0,
            webex_rate_limited: 0,
            cycle_durations_ms: Vec::new(),
            budget_wait_ms: 0,
            state_loads: 0,
            state_records_written: 0,
            error_count: 0,
            errors: Vec::new(),
            duration_ms: 0,
        }
    }

    fn error(&mut self, message: String) {
        self.error_count += 1;
        if self.errors.len() < MAX_SUMMARY_ERRORS {
            self.errors.push(message);
        }
    }

    fn absorb(&mut self, r: &CycleReport) {
        self.cycles += 1;
        self.webex_calls += r.webex_calls;
        self.webex_rate_limited += r.webex_rate_limited;
        self.budget_wait_ms += r.budget_wait.as_millis() as u64;
        self.state_loads += r.state_loads;
        self.state_records_written += r.written;
        if let Some(people) = r.people {
            self.people_seen = people;
            self.people_without_status = r.without_status;
        }
        if r.baseline {
            self.baseline_recorded += r.changes;
        }
        if r.emitted.events > 0 {
            self.changes += r.changes;
        }
        self.events += r.emitted.events;
        self.jobs += r.emitted.jobs;
        if let Some(e) = &r.error {
            self.failed_cycles += 1;
            self.error(format!("cycle {}: {e}", self.cycles));
        }
        if let Some(e) = &r.write_error {
            self.error(format!("cycle {}: state write: {e}", self.cycles));
        }
    }
}

/// Why a cycle did nothing (it is skipped: logged, counted, never fatal, never a false change).
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error("loading the last-known states: {0}")]
    Load(StoreError),
    #[error("reading the changed people's call presences: {0}")]
    CallPresence(StoreError),
    #[error("listing people: {0}")]
    Fetch(#[from] FetchError),
    #[error("emitting: {0}")]
    Emit(#[from] EmitError),
}

impl CycleError {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            CycleError::Fetch(f) => f.retry_after(),
            _ => None,
        }
    }
}

/// What one cycle did.
#[derive(Debug, Default)]
pub struct CycleReport {
    /// People in the complete listing (`None` when the listing failed).
    pub people: Option<usize>,
    /// Of those, people without `status` (skipped by the diff).
    pub without_status: usize,
    /// Changed people (or, on a baseline cycle, every person).
    pub changes: usize,
    /// This cycle recorded the first-run baseline.
    pub baseline: bool,
    pub emitted: Emitted,
    /// State records written.
    pub written: usize,
    pub webex_calls: u32,
    /// Of those, answers that were a Webex rate limit (429/423).
    pub webex_rate_limited: u32,
    /// Time the calls waited for the budget.
    pub budget_wait: Duration,
    pub state_loads: u32,
    pub error: Option<CycleError>,
    /// Writing the changed states failed (they are kept and retried next cycle).
    pub write_error: Option<StoreError>,
}

impl Poller {
    pub fn new(
        stores: &Stores,
        webex: Arc<dyn WebexClient>,
        queue: Arc<dyn DeliveryQueue>,
        clock: Arc<dyn Clock>,
        config: PollerConfig,
    ) -> Self {
        // The poller's events are at most one per org, type and minute by their ids: the
        // default limit is only the backstop.
        let operational = OperationalEmitter::new(
            stores.subscriptions.clone(),
            queue.clone(),
            stores.rate_limits.clone(),
            clock.clone(),
            &OperationalArgs::default(),
        );
        Self {
            presence: stores.presence.clone(),
            leases: stores.leases.clone(),
            subscriptions: stores.subscriptions.clone(),
            events: stores.events.clone(),
            webex,
            queue,
            operational,
            clock,
            budget: CallBudget::per_minute(config.webex_calls_per_minute),
            config,
            tokens: None,
        }
    }

    /// The token source whose failed refreshes become `webex:token-refresh-failed`.
    pub fn with_tokens(mut self, tokens: Arc<dyn TokenSource>) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// The org's operational events after a cycle: Webex throttled it (the cycle was skipped on a
    /// 429/423), or the token could not be refreshed. Each at most once per org and minute (their
    /// ids), and within the rate limit; best-effort.
    async fn report_operational(&self, report: &CycleReport) {
        let org = &self.config.org_id;
        let now = self.clock.now();
        if let Some(CycleError::Fetch(FetchError::RateLimited {
            status,
            retry_after,
            ..
        })) = &report.error
        {
            let op = OperationalEvent::presence_throttled(org, *status, retry_after.as_secs(), now);
            self.operational.emit_logged(&op).await;
        }
        if let Some(f) = self.tokens.as_ref().and_then(|t| t.take_refresh_failure()) {
            let op =
                OperationalEvent::token_refresh_failed(org, f.reason, f.failures, f.retry_at, now);
            self.operational.emit_logged(&op).await;
        }
    }

    pub fn config(&self) -> &PollerConfig {
        &self.config
    }

    /// A fresh session: last-known states are loaded on its first cycle, then kept in memory.
    pub fn session(&self) -> Session<'_> {
        Session {
            poller: self,
            known: None,
            versions: HashMap::new(),
            needs_baseline: false,
            pending: HashMap::new(),
            last_version: 0,
            flushed_on_exit: 0,
        }
    }

    /// One invocation: lease, then cycles on a fixed-rate ticker until `stop_at`, then release.
    pub async fn run(&self, opts: RunOptions) -> Summary {
        let started = Instant::now();
        let cfg = &self.config;
        let mut summary = Summary::new(cfg, &opts.holder, RunStatus::Completed);
        let remaining = opts.stop_at.saturating_duration_since(started);
        if cfg.org_id.is_empty() {
            summary.status = RunStatus::Failed;
            summary.reason = Some("no org id configured (PRESENCE_ORG_ID)".into());
            return summary;
        }
        if remaining.is_zero() {
            summary.status = RunStatus::Skipped;
            summary.reason = Some(
                "no time left before the invocation deadline (minus the safety margin)".into(),
            );
            return summary;
        }

        let lease = cfg.lease_name();
        let now = self.clock.now();
        let until = now
            + chrono::Duration::from_std(remaining + cfg.lease_grace)
                .unwrap_or(chrono::Duration::MAX);
        match self
            .leases
            .acquire(&lease, &opts.holder, Term::new(now, until))
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(
                    lease,
                    "another presence poller holds the lease; skipping this invocation"
                );
                summary.status = RunStatus::Skipped;
                summary.reason = Some(format!("lease `{lease}` is held by another poller"));
                return summary;
            }
            Err(e) => {
                tracing::error!(lease, error = %e, "could not take the lease; not polling");
                summary.status = RunStatus::Failed;
                summary.reason = Some(format!("lease `{lease}`: {e}"));
                summary.error(e.to_string());
                return summary;
            }
        }

        let mut session = self.session();
        let mut ticker = tokio::time::interval_at(started, cfg.poll_interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut resume_at: Option<Instant> = None;
        let mut failures = 0u32;
        loop {
            if opts.max_cycles.is_some_and(|max| summary.cycles >= max) {
                break;
            }
            tokio::select! {
                biased;
                _ = tokio::time::sleep_until(opts.stop_at) => break,
                _ = ticker.tick() => {}
            }
            let tick = Instant::now();
            if tick >= opts.stop_at {
                break;
            }
            if resume_at.is_some_and(|r| tick < r) {
                summary.skipped_ticks += 1;
                continue;
            }
            let cycle_started = Instant::now();
            let report = session.cycle(opts.stop_at).await;
            if report.error.is_none() {
                summary
                    .cycle_durations_ms
                    .push(cycle_started.elapsed().as_millis() as u64);
            }
            if let Some(e) = &report.error {
                failures += 1;
                let backoff = Backoff::new(cfg.backoff_base)
                    .capped(cfg.backoff_max)
                    .delay(failures - 1);
                let wait = e.retry_after().unwrap_or_default().max(backoff);
                tracing::warn!(error = %e, consecutive_failures = failures, wait_ms = wait.as_millis() as u64, "presence cycle skipped");
                resume_at = Some(Instant::now() + wait);
            } else {
                failures = 0;
                resume_at = None;
            }
            self.report_operational(&report).await;
            summary.absorb(&report);
        }

        if let Err(e) = session.flush().await {
            summary.error(format!("final state write: {e}"));
        } else {
            summary.state_records_written += session.flushed_on_exit;
        }
        if let Err(e) = self.leases.release(&lease, &opts.holder).await {
            tracing::warn!(lease, error = %e, "could not release the lease (it expires on its own)");
            summary.error(format!("lease release: {e}"));
        }
        summary.duration_ms = started.elapsed().as_millis() as u64;
        tracing::info!(summary = %serde_json::to_string(&summary).unwrap_or_default(), "presence poller finished");
        summary
    }
}

/// The in-memory state of one invocation: the last-known fingerprints (loaded once) and the
/// records not yet persisted.
pub struct Session<'p> {
    poller: &'p Poller,
    /// person id → fingerprint; `None` until loaded.
    known: Option<HashMap<String, String>>,
    /// person id → the version of its record (when receivers were last told by the poller),
    /// compared with the ingest's presence from calls.
    versions: HashMap<String, u64>,
    /// The store was empty: the next complete listing is the baseline.
    needs_baseline: bool,
    /// Changed records whose write failed (retried every cycle and at the end).
    pending: HashMap<String, PresenceRecord>,
    last_version: u64,
    flushed_on_exit: usize,
}

impl Session<'_> {
    /// The last-known fingerprints in memory (tests, diagnostics).
    pub fn known(&self) -> Option<&HashMap<String, String>> {
        self.known.as_ref()
    }

    /// One poll: (load once), list every page, diff, emit, write the changes.
    pub async fn cycle(&mut self, stop_at: Instant) -> CycleReport {
        let p = self.poller;
        let cfg = &p.config;
        let mut report = CycleReport::default();
        let now = p.clock.now();
        // The state version is the cycle's time in ms, strictly increasing within a session.
        let version = (now.timestamp_millis().max(0) as u64).max(self.last_version + 1);
        self.last_version = version;

        if self.known.is_none() {
            report.state_loads += 1;
            match p.presence.load(&cfg.org_id).await {
                Ok(records) => {
                    self.needs_baseline = records.is_empty();
                    self.versions = records
                        .iter()
                        .map(|r| (r.person_id.clone(), r.version))
                        .collect();
                    self.known = Some(
                        records
                            .into_iter()
                            .map(|r| (r.person_id, r.fingerprint))
                            .collect(),
                    );
                }
                Err(e) => {
                    report.error = Some(CycleError::Load(e));
                    return report;
                }
            }
        }

        let lister = Lister {
            webex: p.webex.as_ref(),
            budget: &p.budget,
            cfg,
        };
        let mut calls = Calls::default();
        let listing = fetch::fetch_listing(&lister, stop_at, &mut calls).await;
        report.webex_calls = calls.made;
        report.budget_wait = calls.budget_wait;
        report.webex_rate_limited = calls.rate_limited;
        let listing = match listing {
            Ok(l) => l,
            Err(e) => {
                report.error = Some(e.into());
                return report;
            }
        };
        report.people = Some(listing.people.len());
        report.without_status = listing.people.iter().filter(|p| !p.has_status()).count();

        let known = self.known.as_mut().expect("loaded above");
        let baseline = self.needs_baseline;
        let mut changes = if baseline {
            diff::baseline(&listing.people, &cfg.diff_fields)
        } else {
            diff::diff(known, &listing.people, &cfg.diff_fields)
        };
        // Presence from calls (docs/presence-poller.md): what the ingest already told receivers
        // is recorded but not emitted again, and Webex's late echoes of a call are left for the
        // next cycle. Only with the default diff (`status` alone): with more fields, a change of
        // another field must not be swallowed, so everything is emitted (at worst a repeat).
        let mut agreed = vec![false; changes.len()];
        if !baseline && !changes.is_empty() && cfg.diff_fields == diff::DiffFields::default() {
            let ids: Vec<&str> = changes
                .iter()
                .map(|c| listing.people[c.index].id.as_str())
                .collect();
            let calls = match p.presence.calls(&cfg.org_id, &ids).await {
                Ok(calls) => calls,
                Err(e) => {
                    report.error = Some(CycleError::CallPresence(e));
                    return report;
                }
            };
            if !calls.is_empty() {
                let now_ms = now.timestamp_millis().max(0) as u64;
                let by_person: HashMap<&str, &call_presence::CallPresence> =
                    calls.iter().map(|c| (c.person_id.as_str(), c)).collect();
                let verdicts: Vec<Verdict> = changes
                    .iter()
                    .map(|c| {
                        let id = listing.people[c.index].id.as_str();
                        call_presence::verdict(
                            by_person.get(id).copied(),
                            self.versions.get(id).copied().unwrap_or(0),
                            &c.fingerprint,
                            now_ms,
                        )
                    })
                    .collect();
                let echoes = verdicts.iter().filter(|v| **v == Verdict::Echo).count();
                if echoes > 0 {
                    tracing::info!(echoes, "presence: Webex still shows a call's start or end as before; looking again next cycle");
                }
                let mut kept = Vec::with_capacity(changes.len());
                agreed.clear();
                for (c, v) in changes.into_iter().zip(verdicts) {
                    if v != Verdict::Echo {
                        agreed.push(v == Verdict::Agreed);
                        kept.push(c);
                    }
                }
                changes = kept;
            }
        }
        report.changes = if baseline {
            changes.len()
        } else {
            agreed.iter().filter(|a| !**a).count()
        };
        report.baseline = baseline;

        let emitted: Vec<Person> = changes
            .iter()
            .zip(&agreed)
            .filter(|(_, agreed)| !**agreed)
            .map(|(c, _)| listing.people[c.index].clone())
            .collect();
        if !emitted.is_empty() && (!baseline || cfg.emit_baseline) {
            let people = emitted;
            let outbox = Outbox {
                subscriptions: p.subscriptions.as_ref(),
                events: p.events.as_ref(),
                queue: p.queue.as_ref(),
            };
            match outbox
                .emit(&cfg.org_id, people, now, cfg.max_event_bytes, cfg.event_ttl)
                .await
            {
                Ok(emitted) => {
                    tracing::info!(
                        changes = %diff::describe(&listing.people, &changes, 10),
                        events = emitted.events,
                        jobs = emitted.jobs,
                        "presence changed"
                    );
                    report.emitted = emitted;
                }
                Err(e) => {
                    // Nothing is recorded: the same changes are detected (and emitted) next cycle.
                    report.error = Some(e.into());
                    return report;
                }
            }
        } else if baseline {
            tracing::info!(
                people = changes.len(),
                "first run: recording the baseline without emitting"
            );
        }

        for c in changes {
            let person = &listing.people[c.index];
            let id = person.id.clone();
            self.pending.insert(
                id.clone(),
                PresenceRecord {
                    person_id: id.clone(),
                    fingerprint: c.fingerprint.clone(),
                    version,
                    item: serde_json::to_string(person).ok(),
                },
            );
            self.versions.insert(id.clone(), version);
            known.insert(id, c.fingerprint);
        }
        self.needs_baseline = false;
        match self.write_pending().await {
            Ok(n) => report.written = n,
            Err(e) => {
                tracing::error!(error = %e, pending = self.pending.len(), "writing presence states failed; retrying next cycle");
                report.write_error = Some(e);
            }
        }
        report
    }

    async fn write_pending(&mut self) -> Result<usize, StoreError> {
        if self.pending.is_empty() {
            return Ok(0);
        }
        let records: Vec<PresenceRecord> = self.pending.values().cloned().collect();
        self.poller
            .presence
            .write(&self.poller.config.org_id, &records)
            .await?;
        self.pending.clear();
        Ok(records.len())
    }

    /// Writes whatever is still pending (the end of a run).
    pub async fn flush(&mut self) -> Result<(), StoreError> {
        self.flushed_on_exit = self.write_pending().await?;
        Ok(())
    }
}
