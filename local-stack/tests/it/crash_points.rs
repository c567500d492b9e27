//! The crash-point sweep (issue 17: "every crash point still loses nothing and duplicates nothing
//! after a success"), in-process on both backends: the memory adapters, and DynamoDB Local + moto.
//!
//! One captured telephony event (tests/fixtures/seed001/created.json, which also derives a
//! `call:ringing`) is ingested and delivered to one subscriber of both. A clean run lists every
//! store and queue call the two handlers make ([`testkit::crash`]: named by phase, operation, key
//! kind and occurrence, never by a global call index, so concurrent calls keep their names).
//! Then, for each of those points and both variants (before the call / after it took effect),
//! a fresh run crashes there — the handler future dropped, no cleanup — and recovers as
//! production would: Webex re-sends the webhook while it got no 2xx, and the queue hands an
//! unacknowledged message out again once its visibility timeout ends (both after the handlers'
//! leases ran out on the test clock; nothing sleeps). Each of those scenarios then lists the points
//! its recovery hit (a claim taken over, a record found, a retried ingest: paths only a crash leads
//! to), and a second crash strikes at each of them in turn, both variants (every recovery point on
//! memory; on DynamoDB Local + moto those of the handler that crashed). Settled, each run must have:
//!
//! - delivered: every delivery (the raw event's and the derived call event's) POSTed at least once;
//! - exactly one succeeded attempt recorded per delivery id;
//! - no POST of a delivery after its success was recorded;
//! - the event logged once, and Webex answered 2xx in the end;
//! - nothing dead-lettered.
//!
//! Bounded: at most [`MAX_INGESTS`] Webex deliveries and [`MAX_WORKER_RUNS`] worker runs per
//! scenario, each run under [`RUN_BOUND`] (a hang fails, it is not waited out).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use delivery_worker::{MetricsSink, Ports, Worker, WorkerConfig};
use relay_shared::adapters::memory::{memory_stores_at, MemoryQueue};
use relay_shared::clock::ManualClock;
use relay_shared::delivery::AttemptStatus;
use relay_shared::error::StoreError;
use relay_shared::events::EventType;
use relay_shared::ids::EventId;
use relay_shared::ports::{
    AttemptQuery, AttemptRef, Claim, Clock, CorePorts, DeadLetterSink, DedupeStore, DeliveryQueue,
    EventQuery, PageRequest, QueueConsumer, Stores, Term,
};
use relay_shared::subscription::Subscription;
use relay_shared::webex::webex_signature;
use telephony_ingest::{Ingest, IngestConfig, WebhookAuth};
use testkit::crash::{CrashPlan, Note, Point, Variant};

const WEBEX_SECRET: &[u8] = b"crash-sweep";
/// How far the test clock moves before a retry or a redelivery: past the ingest's dedupe lease
/// (60 s) and the worker's attempt lease (delivery timeout + 30 s), as the time Webex and the
/// queue wait before trying again would.
const LEASES_RUN_OUT: chrono::Duration = chrono::Duration::minutes(5);
const MAX_INGESTS: usize = 8;
const MAX_WORKER_RUNS: usize = 24;
/// The most one handler run may take before the sweep calls it hung.
const RUN_BOUND: Duration = Duration::from_secs(60);

/// One backend: the stores, the delivery queue (both sides) and the dead-letter queue.
struct Backend {
    stores: Stores,
    queue: Arc<dyn DeliveryQueue>,
    consumer: Arc<dyn QueueConsumer>,
    dlq: Arc<dyn DeadLetterSink>,
    dlq_consumer: Arc<dyn QueueConsumer>,
}

#[derive(Clone, Copy)]
enum Kind<'a> {
    Memory,
    Aws(&'a aws_config::SdkConfig),
    /// The memory backend with an attempt claim that never holds (every claim `Claimed`): the
    /// sweep's own check that it catches a duplicate.
    Forgetful,
    /// The memory backend, its consumer deleting each message before the worker has run (an
    /// event source that acknowledges first): the sweep's own check that it catches a loss.
    AcksFirst,
}

impl Kind<'_> {
    /// How a scenario with violations is reported: a self-check's are what it looks for.
    fn failed(&self) -> &'static str {
        match self {
            Kind::Memory | Kind::Aws(_) => "FAILED",
            Kind::Forgetful | Kind::AcksFirst => "violated (as this self-check wants)",
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Kind::Memory => "memory",
            Kind::Forgetful => "memory, forgetful claims",
            Kind::AcksFirst => "memory, acknowledged first",
            Kind::Aws(_) => "aws",
        }
    }

    async fn backend(&self, clock: Arc<dyn Clock>) -> Backend {
        match self {
            Kind::Memory | Kind::Forgetful | Kind::AcksFirst => {
                // Redelivery is the sweep's to decide (`retry_after(receipt, 0)`), never the
                // real clock's: a visibility timeout no run reaches.
                let hour = Duration::from_secs(3600);
                let queue = Arc::new(MemoryQueue::new(hour));
                let dlq = Arc::new(MemoryQueue::new(hour));
                let mut stores = memory_stores_at(clock);
                if matches!(self, Kind::Forgetful) {
                    stores.dedupe = Arc::new(Forgetful);
                }
                Backend {
                    stores,
                    queue: queue.clone(),
                    consumer: queue,
                    dlq: dlq.clone(),
                    dlq_consumer: dlq,
                }
            }
            Kind::Aws(sdk) => {
                let aws = testkit::aws::Resources::new(sdk, "crash").await;
                Backend {
                    stores: aws.stores,
                    queue: aws.queue.clone(),
                    consumer: aws.queue,
                    dlq: aws.dlq.clone(),
                    dlq_consumer: aws.dlq,
                }
            }
        }
    }
}

/// The seed event, its org's subscriber, and what a clean run delivered.
struct Fixture {
    envelope: String,
    sub: Subscription,
}

impl Fixture {
    fn new() -> Self {
        let mut fixture: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/seed001/created.json"))
                .unwrap();
        // Within the ingest's freshness window, as a live event is (the capture is from 2025).
        relay_shared::webex::redate_captured(&mut fixture["items"]);
        let envelope = fixture["items"].to_string();
        let org = fixture["items"]["orgId"].as_str().unwrap().to_owned();
        let mut types = vec![EventType::TelephonyCreated];
        types.extend(EventType::CALL);
        // One subscription value for every run, so every run has the same delivery ids.
        let sub = testkit::fixtures::subscription(&org, &types);
        Self { envelope, sub }
    }
}

/// A fresh backend with the fixture's subscriber stored, its stores and delivery queue going
/// through a fresh crash plan (nothing armed yet), and the ingest on them.
struct Stack {
    backend: Backend,
    plan: Arc<CrashPlan>,
    core: CorePorts,
    ingest: Ingest,
}

impl Stack {
    async fn new(kind: Kind<'_>, fixture: &Fixture, clock: Arc<ManualClock>) -> Self {
        let backend = kind.backend(clock.clone()).await;
        backend
            .stores
            .subscriptions
            .create(&fixture.sub, 10)
            .await
            .unwrap();
        let plan = CrashPlan::new();
        let core = CorePorts {
            stores: plan.stores(&backend.stores),
            queue: plan.queue(backend.queue.clone()),
            clock,
        };
        let ingest = Ingest::new(
            core.clone(),
            IngestConfig::new(WebhookAuth::secret(
                std::str::from_utf8(WEBEX_SECRET).unwrap(),
            )),
        )
        .with_metrics(Arc::new(|_| {}));
        Self {
            backend,
            plan,
            core,
            ingest,
        }
    }
}

/// What one scenario came to.
struct Settled {
    plan: Arc<CrashPlan>,
    event_id: Option<EventId>,
    /// Every property that did not hold, in words.
    violations: Vec<String>,
    ingests: usize,
    worker_runs: usize,
    /// A later crash armed was never reached (the recovery took another path).
    unreached: bool,
}

/// One scenario: a fresh backend, `crash` armed (none: the clean run), ingest and delivery until
/// settled, then the properties checked. `expected`: the delivery ids a clean run delivered.
async fn scenario(
    kind: Kind<'_>,
    fixture: &Fixture,
    crashes: &[(Point, Variant)],
    expected: Option<&BTreeSet<String>>,
    receiver: Receiver,
) -> Settled {
    let start = chrono::Utc::now();
    let clock = Arc::new(ManualClock::new(start));
    let Stack {
        backend,
        plan,
        core,
        ingest,
    } = Stack::new(kind, fixture, clock.clone()).await;
    for (point, variant) in crashes {
        plan.arm(point.clone(), *variant);
    }
    // Retries at once: a re-sent job is visible again without waiting on SQS's real-time delay.
    let config = WorkerConfig::from_env_pairs(&[("RETRY_SCHEDULE_SECONDS", "0,0,0,0,0")]).unwrap();
    let worker = Worker::with_metrics(
        Ports {
            core,
            http: plan.receiver_failing_first(match receiver {
                Receiver::Healthy => 0,
                Receiver::FailsFirst => 1,
            }),
            dead_letter_sink: plan.dead_letters(backend.dlq.clone()),
            // The subscription holds a legacy plain secret: nothing to open.
            secrets: relay_shared::secrets_at_rest::SecretOpener::new(Arc::new(
                relay_shared::secrets_at_rest::LocalKey::generate(),
            )),
        },
        config,
        Arc::new(MetricsSink::Off),
    );

    let body = fixture.envelope.as_bytes();
    let signature = webex_signature(WEBEX_SECRET, body);
    let mut violations = Vec::new();
    let (mut answered, mut event_id) = (false, None);
    let (mut ingests, mut worker_runs) = (0, 0);
    loop {
        if !answered {
            if ingests == MAX_INGESTS {
                violations.push(format!(
                    "not settled: Webex got no 2xx in {MAX_INGESTS} deliveries"
                ));
                break;
            }
            ingests += 1;
            let run = plan.run("ingest", ingest.handle(body, Some(&signature)));
            match bounded(run).await {
                Some(resp) if resp.status.is_success() => {
                    answered = true;
                    event_id = resp.event_id;
                }
                // Crashed, or answered 5xx: Webex re-sends it later.
                Some(_) | None => {}
            }
        }
        // The worker drains the queue; a message not acknowledged comes back once its
        // visibility timeout ends, by when the attempt's lease has run out too.
        let mut redeliveries = false;
        loop {
            let received = backend.consumer.receive(10, 0).await.unwrap();
            if received.is_empty() {
                break;
            }
            for message in received {
                if worker_runs == MAX_WORKER_RUNS {
                    violations.push(format!(
                        "not settled: the queue still hands out jobs after {MAX_WORKER_RUNS} worker runs"
                    ));
                    return settled(plan, event_id, violations, ingests, worker_runs);
                }
                worker_runs += 1;
                if matches!(kind, Kind::AcksFirst) {
                    backend.consumer.ack(&message.receipt).await.unwrap();
                }
                let phase = format!("worker {}", job_type(&message.body));
                let run = plan.run(
                    &phase,
                    worker.process_message(&message.body, message.receive_count),
                );
                match bounded(run).await {
                    Some(outcome) if outcome.acknowledged() => {
                        backend.consumer.ack(&message.receipt).await.unwrap()
                    }
                    Some(_) | None => {
                        clock.advance(LEASES_RUN_OUT);
                        backend
                            .consumer
                            .retry_after(&message.receipt, 0)
                            .await
                            .unwrap();
                        redeliveries = true;
                    }
                }
            }
        }
        if answered && !redeliveries && backend.consumer.depth().await.unwrap() == 0 {
            break;
        }
        if !answered {
            clock.advance(LEASES_RUN_OUT);
        }
    }

    // The properties, on the stores as they are (not through the plan).
    let timeline = plan.timeline();
    let mut posts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut succeeded_at: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, note) in timeline.iter().enumerate() {
        match note {
            Note::Post { delivery_id } => {
                *posts.entry(delivery_id).or_default() += 1;
                if let Some(at) = succeeded_at.get(delivery_id.as_str()) {
                    violations.push(format!(
                        "{delivery_id} POSTed again (event {i}) after its success was recorded (event {at})"
                    ));
                }
            }
            Note::Recorded {
                delivery_id,
                status: AttemptStatus::Succeeded,
            } => {
                succeeded_at.entry(delivery_id).or_insert(i);
            }
            Note::Recorded { .. } => {}
        }
    }
    let posted: BTreeSet<String> = posts.keys().map(|id| id.to_string()).collect();
    if let Some(expected) = expected {
        for id in expected.difference(&posted) {
            violations.push(format!("{id} never delivered (lost)"));
        }
        for id in posted.difference(expected) {
            violations.push(format!(
                "{id} delivered, but a clean run has no such delivery"
            ));
        }
    }
    let mut succeeded: BTreeMap<String, usize> = posted.iter().map(|id| (id.clone(), 0)).collect();
    let mut page = PageRequest {
        limit: 100,
        cursor: None,
    };
    loop {
        let attempts = backend
            .stores
            .attempts
            .list(AttemptQuery::of(fixture.sub.id), &page)
            .await
            .unwrap();
        for a in &attempts.items {
            if a.status == AttemptStatus::Succeeded {
                *succeeded.entry(a.delivery_id.clone()).or_default() += 1;
            }
        }
        match attempts.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    for (id, n) in &succeeded {
        if *n != 1 {
            violations.push(format!(
                "{id}: {n} succeeded attempts recorded (want exactly 1)"
            ));
        }
    }
    match event_id {
        None => {
            if violations.is_empty() {
                violations.push("Webex's 2xx named no event id".into());
            }
        }
        Some(id) => {
            let window = EventQuery::new(
                start - chrono::Duration::days(1),
                clock.now() + chrono::Duration::days(1),
                100,
            );
            let logged = backend
                .stores
                .events
                .list(&fixture.sub.org_id, window)
                .await
                .unwrap();
            let copies = logged.iter().filter(|e| e.id == id).count();
            if copies != 1 {
                violations.push(format!("event {id} logged {copies} times (want once)"));
            }
            if logged.len() != 1 {
                violations.push(format!(
                    "{} events logged for the org (want the one event)",
                    logged.len()
                ));
            }
        }
    }
    let parked = backend.dlq_consumer.depth().await.unwrap();
    if parked != 0 {
        violations.push(format!("{parked} job(s) dead-lettered"));
    }
    // The first crash must strike (a scenario whose crash never happened proves nothing). A
    // second one may not: after a crash in a round of concurrent calls (the rate window and the
    // claim), whether the other call of that round took effect depends on the backend's timing
    // (on DynamoDB Local it may or may not have), so the recovery can take another path than the
    // one its points were listed from. That scenario is counted as unreached, not failed.
    let fired = plan.fired();
    let unreached = match crashes.first() {
        Some(first) if fired.first() != Some(first) => {
            violations.push(format!(
                "crashed at {} of the {} points armed (the first never struck)",
                fired.len(),
                crashes.len()
            ));
            false
        }
        _ => fired.len() < crashes.len(),
    };
    let mut run = settled(plan, event_id, violations, ingests, worker_runs);
    run.unreached = unreached;
    run
}

fn settled(
    plan: Arc<CrashPlan>,
    event_id: Option<EventId>,
    violations: Vec<String>,
    ingests: usize,
    worker_runs: usize,
) -> Settled {
    Settled {
        plan,
        event_id,
        violations,
        ingests,
        worker_runs,
        unreached: false,
    }
}

/// A handler run, bounded: a run that hangs fails the sweep rather than stalling it.
async fn bounded<T>(run: impl std::future::Future<Output = Option<T>>) -> Option<T> {
    match tokio::time::timeout(RUN_BOUND, run).await {
        Ok(out) => out,
        Err(_) => panic!("a handler run took over {RUN_BOUND:?}: hung"),
    }
}

/// The event type a queued job names (its phase: `worker telephony:created`).
fn job_type(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|job| job.get("eventType")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// How the subscriber answers.
#[derive(Debug, Clone, Copy)]
enum Receiver {
    /// 200 to every POST.
    Healthy,
    /// 500 to each delivery's first POST, then 200: every delivery takes the retry path (the
    /// failed attempt recorded, the job re-sent for attempt 2).
    FailsFirst,
}

/// Where a scenario crashes a second time, in the recovery from its first crash.
#[derive(Debug, Clone, Copy)]
enum Second {
    /// Nowhere.
    None,
    /// At every point of the recovery's runs of the first crash's phase (the retried ingest,
    /// the redelivered job): the recovery paths of the handler that crashed.
    SamePhase,
    /// At every point of the recovery.
    All,
}

impl Second {
    fn covers(self, first: &Point, then: &Point) -> bool {
        match self {
            Second::None => false,
            Second::SamePhase => then.phase == first.phase,
            Second::All => true,
        }
    }
}

/// Sweeps every crash point of a clean run, both variants, and then (`second`) a second crash
/// in each one's recovery: the violations found, each prefixed with its points and variants.
async fn sweep(kind: Kind<'_>, second: Second, receiver: Receiver) -> Vec<String> {
    let fixture = Fixture::new();
    let clean = scenario(kind, &fixture, &[], None, receiver).await;
    assert!(
        clean.violations.is_empty(),
        "{} clean run: {:?}",
        kind.name(),
        clean.violations
    );
    assert!(clean.event_id.is_some());
    let expected: BTreeSet<String> = clean
        .plan
        .timeline()
        .iter()
        .filter_map(|n| match n {
            Note::Post { delivery_id } => Some(delivery_id.clone()),
            Note::Recorded { .. } => None,
        })
        .collect();
    assert_eq!(
        expected.len(),
        2,
        "the seed event and its call:ringing, each delivered: {expected:?}"
    );
    let points = clean.plan.points();
    assert!(
        points.iter().any(|p| p.phase == "ingest") && points.iter().any(|p| p.phase != "ingest"),
        "{points:?}"
    );

    let mut failures = Vec::new();
    let (mut singles, mut doubles, mut unreached) = (0, 0, 0);
    for point in &points {
        for variant in Variant::BOTH {
            singles += 1;
            let first = (point.clone(), variant);
            let run = scenario(
                kind,
                &fixture,
                std::slice::from_ref(&first),
                Some(&expected),
                receiver,
            )
            .await;
            let verdict = if run.violations.is_empty() {
                "ok"
            } else {
                kind.failed()
            };
            println!(
                "crash point ({}, {receiver:?}) {point} / {variant}: {verdict} ({} Webex deliveries, {} worker runs)",
                kind.name(),
                run.ingests,
                run.worker_runs
            );
            for v in &run.violations {
                println!("    {v}");
                failures.push(format!("{point} / {variant}: {v}"));
            }
            // A second crash in the recovery: the paths only a crash leads to (a claim taken
            // over, a record found, a retried ingest) have crash points of their own.
            let seconds = run
                .plan
                .recovery_points()
                .into_iter()
                .filter(|p| second.covers(point, p));
            for then in seconds {
                for then_variant in Variant::BOTH {
                    doubles += 1;
                    let crashes = [first.clone(), (then.clone(), then_variant)];
                    let run = scenario(kind, &fixture, &crashes, Some(&expected), receiver).await;
                    unreached += usize::from(run.unreached);
                    for v in &run.violations {
                        let at = format!("{point} / {variant}, then {then} / {then_variant}");
                        println!(
                            "crash points ({}) {at}: {}\n    {v}",
                            kind.name(),
                            kind.failed()
                        );
                        failures.push(format!("{at}: {v}"));
                    }
                }
            }
        }
    }
    println!(
        "crash points ({}, {receiver:?}): {} points × 2 variants = {singles} scenarios; {doubles} with a second \
         crash in the recovery ({second:?}), {unreached} of them not reached; {} violation(s)",
        kind.name(),
        points.len(),
        failures.len()
    );
    // Not vacuous: most second crashes strike (only a concurrent round's timing can divert one).
    assert!(
        unreached * 4 <= doubles,
        "{unreached} of {doubles} second crashes never struck: the recovery points are not what the runs take"
    );
    failures
}

/// An attempt claim that never holds: whoever asks gets it.
struct Forgetful;

#[async_trait::async_trait]
impl DedupeStore for Forgetful {
    async fn claim(&self, _: &str, _: Term, _: DateTime<Utc>) -> Result<Claim, StoreError> {
        Ok(Claim::Claimed)
    }
    async fn claim_attempt(
        &self,
        _: &str,
        _: AttemptRef,
        _: Term,
        _: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        Ok(Claim::Claimed)
    }
    async fn complete(&self, _: &str, _: DateTime<Utc>) -> Result<(), StoreError> {
        Ok(())
    }
    async fn release(&self, _: &str, _: Option<AttemptRef>) -> Result<(), StoreError> {
        Ok(())
    }
    async fn exists(&self, _: &str, _: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(false)
    }
}

fn assert_none(kind: Kind<'_>, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} crash points lost or duplicated something:\n{}",
        kind.name(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_points_lose_and_duplicate_nothing_in_memory() {
    assert_none(
        Kind::Memory,
        &sweep(Kind::Memory, Second::All, Receiver::Healthy).await,
    );
}

/// The retry path: each delivery's first attempt answered 500, so the job is re-sent and its
/// failed attempt recorded before attempt 2 succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_points_on_the_retry_path_lose_and_duplicate_nothing_in_memory() {
    assert_none(
        Kind::Memory,
        &sweep(Kind::Memory, Second::All, Receiver::FailsFirst).await,
    );
}

/// The sweep can fail (its own checks, memory only): with attempt claims that never hold, the crash after a success was
/// recorded (its result lost, so the message comes back) POSTs the delivery again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_points_sweep_catches_a_forgetful_attempt_claim() {
    let failures = sweep(Kind::Forgetful, Second::None, Receiver::Healthy).await;
    let point = "worker telephony:created: attempts.record[succeeded] / after";
    assert!(
        failures
            .iter()
            .any(|f| f.starts_with(point) && f.contains("POSTed again")),
        "{point}: no duplicate POST reported: {failures:?}"
    );
    assert!(
        failures
            .iter()
            .any(|f| f.starts_with(point) && f.contains("2 succeeded attempts")),
        "{point}: no second success reported: {failures:?}"
    );
}

/// And a loss: a message deleted before the worker ran is never delivered when the worker
/// crashes before its POST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_points_sweep_catches_a_lost_job() {
    let failures = sweep(Kind::AcksFirst, Second::None, Receiver::Healthy).await;
    let point = "worker call:ringing: subscriptions.get / before";
    assert!(
        failures
            .iter()
            .any(|f| f.starts_with(point) && f.contains("never delivered (lost)")),
        "{point}: no loss reported: {failures:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_points_lose_and_duplicate_nothing_on_aws_adapters() {
    let test = "crash_points_lose_and_duplicate_nothing_on_aws_adapters";
    let Some(sdk) = testkit::aws::local(test, testkit::aws::BOTH).await else {
        return;
    };
    let kind = Kind::Aws(&sdk);
    // A second crash in the crashed handler's own recovery only: DynamoDB Local + moto take a
    // quarter of a second per scenario, the memory sweep covers every second crash.
    assert_none(
        kind,
        &sweep(kind, Second::SamePhase, Receiver::Healthy).await,
    );
}

/// The retry path on DynamoDB Local + moto (see the memory twin).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_points_on_the_retry_path_lose_and_duplicate_nothing_on_aws_adapters() {
    let test = "crash_points_on_the_retry_path_lose_and_duplicate_nothing_on_aws_adapters";
    let Some(sdk) = testkit::aws::local(test, testkit::aws::BOTH).await else {
        return;
    };
    let kind = Kind::Aws(&sdk);
    // Single crashes only: with a second one in the crashed handler's recovery this path is some
    // 500 scenarios, three minutes on DynamoDB Local + moto; the memory twin sweeps them all.
    assert_none(kind, &sweep(kind, Second::None, Receiver::FailsFirst).await);
}

/// A receiver whose POST is answered 200 only when the test lets it go (a holder running past
/// its lease).
struct HeldReceiver {
    entered: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl relay_shared::ports::HttpSender for HeldReceiver {
    async fn post(
        &self,
        _: relay_shared::ports::OutboundRequest,
    ) -> Result<relay_shared::ports::OutboundResponse, relay_shared::ports::SendError> {
        self.entered.notify_one();
        self.release.notified().await;
        Ok(relay_shared::ports::OutboundResponse {
            status: 200,
            retry_after: None,
            body_snippet: "ok".into(),
        })
    }
}

fn worker_on(core: CorePorts, http: Arc<dyn relay_shared::ports::HttpSender>) -> Worker {
    Worker::with_metrics(
        Ports {
            core,
            http,
            dead_letter_sink: Arc::new(MemoryQueue::new(Duration::from_secs(3600))),
            secrets: relay_shared::secrets_at_rest::SecretOpener::new(Arc::new(
                relay_shared::secrets_at_rest::LocalKey::generate(),
            )),
        },
        WorkerConfig::from_env_pairs(&[]).unwrap(),
        Arc::new(MetricsSink::Off),
    )
}

/// A holder still running past its lease (review 21 F1): copy A claims and POSTs but its
/// answer is slow; copy B takes the expired claim over, POSTs, and crashes before its record;
/// then A records its success; copy C must find that success and not POST again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_past_its_lease_then_a_crashed_taker_leave_no_post_after_the_success() {
    let fixture = Fixture::new();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let Stack {
        backend,
        plan,
        core,
        ingest,
    } = Stack::new(Kind::Memory, &fixture, clock.clone()).await;
    let body = fixture.envelope.as_bytes();
    let resp = ingest
        .handle(body, Some(&webex_signature(WEBEX_SECRET, body)))
        .await;
    assert!(resp.status.is_success(), "{:?}", resp.body);
    let job = backend
        .consumer
        .receive(10, 0)
        .await
        .unwrap()
        .into_iter()
        .find(|m| job_type(&m.body) == "telephony:created")
        .expect("the raw event's job")
        .body;

    // A: on the same stores, not through the plan (it runs beside B and C), its POST held.
    let held = Arc::new(HeldReceiver {
        entered: tokio::sync::Notify::new(),
        release: tokio::sync::Notify::new(),
    });
    let a_core = CorePorts {
        stores: backend.stores.clone(),
        queue: backend.queue.clone(),
        clock: clock.clone(),
    };
    let a = Arc::new(worker_on(a_core, held.clone()));
    let a_run = tokio::spawn({
        let (a, job) = (a.clone(), job.clone());
        async move { a.process_message(&job, 1).await }
    });
    held.entered.notified().await;

    // B: the lease ran out; it takes the claim over, POSTs, and crashes before its record.
    clock.advance(LEASES_RUN_OUT);
    let worker = worker_on(core.clone(), plan.receiver());
    plan.arm(
        Point {
            phase: "worker B".into(),
            op: "attempts.record",
            kind: "succeeded".into(),
            nth: 1,
        },
        Variant::Before,
    );
    let b = plan.run("worker B", worker.process_message(&job, 2)).await;
    assert!(b.is_none(), "B crashed before its record: {b:?}");
    let posts = |plan: &CrashPlan| {
        plan.timeline()
            .iter()
            .filter(|n| matches!(n, Note::Post { .. }))
            .count()
    };
    assert_eq!(posts(&plan), 1, "B took the claim over and POSTed");

    // A's answer arrives: its success is recorded.
    held.release.notify_one();
    let a_outcome = a_run.await.unwrap();
    assert!(a_outcome.acknowledged(), "{a_outcome:?}");

    // C: the message again, after B's lease too.
    clock.advance(LEASES_RUN_OUT);
    let c = plan.run("worker C", worker.process_message(&job, 3)).await;
    assert_eq!(
        posts(&plan),
        1,
        "C POSTed after A's recorded success (outcome {c:?})"
    );
    let attempts = backend
        .stores
        .attempts
        .list(
            AttemptQuery::of(fixture.sub.id),
            &PageRequest {
                limit: 100,
                cursor: None,
            },
        )
        .await
        .unwrap();
    let succeeded = attempts
        .items
        .iter()
        .filter(|a| a.status == AttemptStatus::Succeeded && job.contains(&a.event_id.to_string()))
        .count();
    assert_eq!(succeeded, 1, "{:?}", attempts.items);
}
