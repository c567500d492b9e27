//! Shared test fixtures: subscriptions, jobs, a worker on memory adapters, failure-injecting queues.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use delivery_worker::handler::function_handler;
use delivery_worker::http_sender::ReqwestSender;
use delivery_worker::schedule::RetrySchedule;
use delivery_worker::{DeliveryOutcome, MetricsSink, Ports, Worker, WorkerConfig};
use relay_shared::adapters::memory::{memory_stores_at, MemoryQueue};
use relay_shared::clock::SystemClock;
use relay_shared::delivery::{AttemptRecord, AttemptSummary, DeliveryJob};
use relay_shared::events::EventType;
use relay_shared::ids::{EventId, SubscriptionId};
use relay_shared::ports::{
    AttemptQuery, Clock, CorePorts, DeadLetterSink, DeliveryQueue, HttpSender, PageRequest, Stores,
};
use relay_shared::secrets_at_rest::{
    DataKeyUnwrapper, LocalKey, SealError, SecretContext, SecretOpener, SecretSealer,
};
use relay_shared::subscription::Subscription;
use relay_shared::targets::TargetPolicy;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};
use zeroize::Zeroizing;

pub use testkit::fixtures::SECRET;
pub use testkit::FlakyQueue;

pub fn now_ms() -> u64 {
    Utc::now().timestamp_millis() as u64
}

/// A subscription of `org-1` to every event type but the operational ones (those are about its
/// siblings, which most tests do not want queued; tests/it/operational.rs has them), delivered
/// to `url`.
pub fn subscription(url: &str) -> Subscription {
    let types: Vec<EventType> = EventType::ALL
        .into_iter()
        .filter(|t| !t.is_operational())
        .collect();
    Subscription {
        name: "test".into(),
        url: url.into(),
        ..testkit::fixtures::subscription("org-1", &types)
    }
}

/// A telephony-like body with non-ASCII text, slashes and nesting (must survive JSON.stringify).
pub fn sample_body() -> String {
    serde_json::json!({
        "Payload": "telephony",
        "timestamp": "2026-11-23T10:00:00.123Z",
        "items": {"id": "Y2lzY29zcGFyazovL3VzL1dFQkhPT0sv", "resource": "telephony_calls", "event": "created",
                  "data": {"callType": "external", "remoteParty": {"name": "Zoë Ångström 📞", "number": "+1/555"}, "n": 3, "ok": true, "x": null}},
        "orgId": "org-1"
    })
    .to_string()
}

pub fn job_for(sub: &Subscription, event_type: EventType) -> DeliveryJob {
    DeliveryJob {
        event_id: EventId::new_at(now_ms()),
        subscription_id: sub.id,
        event_type,
        org_id: sub.org_id.clone(),
        body: sample_body(),
        attempts: vec![],
        not_before: None,
        run: String::new(),
        dead_letter_reason: None,
        sequence: None,
        ordering_key: None,
    }
}

pub fn raw(job: &DeliveryJob) -> String {
    serde_json::to_string(job).unwrap()
}

/// Zero delays, no jitter, a short timeout; localhost receivers allowed via the allow-list.
pub fn test_config(attempts: usize) -> WorkerConfig {
    WorkerConfig {
        delivery_timeout: Duration::from_secs(5),
        schedule: RetrySchedule::new(vec![0; attempts], 0),
        targets: TargetPolicy {
            allow_http: true,
            allow_private: false,
            allow_cidrs: vec!["127.0.0.0/8".parse().unwrap()],
        },
        ..WorkerConfig::default()
    }
}

/// The test key service: a local key that counts its unwraps and can be made unavailable.
pub struct TestKeys {
    key: Arc<LocalKey>,
    unwraps: AtomicUsize,
    unavailable: AtomicBool,
}

impl TestKeys {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            key: Arc::new(LocalKey::generate()),
            unwraps: AtomicUsize::new(0),
            unavailable: AtomicBool::new(false),
        })
    }

    /// How many data keys were unwrapped (asked of the key service, not the opener's cache).
    pub fn unwraps(&self) -> usize {
        self.unwraps.load(Ordering::SeqCst)
    }

    /// From now on every unwrap fails as a throttled or unreachable key service would.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    /// Seals under the same key (sealing is not counted).
    pub fn sealer(&self) -> SecretSealer {
        SecretSealer::new(self.key.clone())
    }

    /// An opener with its own (fresh) data-key cache, as a worker's cold start builds it.
    pub fn opener(self: &Arc<Self>) -> SecretOpener {
        SecretOpener::new(self.clone())
    }
}

#[async_trait::async_trait]
impl DataKeyUnwrapper for TestKeys {
    async fn unwrap_data_key(
        &self,
        key_id: &str,
        wrapped: &[u8],
        ctx: &SecretContext,
    ) -> Result<Zeroizing<[u8; 32]>, SealError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(SealError::Unavailable("ThrottlingException (test)".into()));
        }
        self.unwraps.fetch_add(1, Ordering::SeqCst);
        self.key.unwrap_data_key(key_id, wrapped, ctx).await
    }
}

/// `sub` as the API stores it: its current and retiring secrets sealed by `sealer`.
pub async fn sealed(sealer: &SecretSealer, mut sub: Subscription) -> Subscription {
    let ctx = sub.secret_context();
    sub.secret = sealer.seal_if_plain(&sub.secret, &ctx).await.unwrap();
    for r in &mut sub.retiring_secrets {
        r.secret = sealer.seal_if_plain(&r.secret, &ctx).await.unwrap();
    }
    assert!(!sub.has_plain_secret());
    sub
}

pub struct Harness {
    pub worker: Arc<Worker>,
    pub stores: Stores,
    pub queue: Arc<MemoryQueue>,
    pub dlq: Arc<MemoryQueue>,
    pub metrics: Arc<MetricsSink>,
    /// The worker's key service (its opener); [`Harness::seal`] seals under it.
    pub keys: Arc<TestKeys>,
}

impl Harness {
    pub fn new(config: WorkerConfig) -> Self {
        Self::with(config.clone(), sender(&config), Arc::new(SystemClock))
    }

    pub fn with(config: WorkerConfig, http: Arc<dyn HttpSender>, clock: Arc<dyn Clock>) -> Self {
        // The attempt log's retention is judged by the worker's clock (some tests run in 2026-11).
        let stores = memory_stores_at(clock.clone());
        let queue = Arc::new(MemoryQueue::new(Duration::from_secs(30)));
        let dlq = Arc::new(MemoryQueue::new(Duration::from_secs(30)));
        Self::with_queues(
            config,
            http,
            clock,
            stores,
            queue.clone(),
            queue,
            dlq.clone(),
            dlq,
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub fn with_queues(
        config: WorkerConfig,
        http: Arc<dyn HttpSender>,
        clock: Arc<dyn Clock>,
        stores: Stores,
        queue: Arc<MemoryQueue>,
        send: Arc<dyn DeliveryQueue>,
        dlq: Arc<MemoryQueue>,
        park: Arc<dyn DeadLetterSink>,
    ) -> Self {
        let metrics = Arc::new(MetricsSink::memory());
        let keys = TestKeys::new();
        let ports = Ports {
            core: CorePorts {
                stores: stores.clone(),
                queue: send,
                clock,
            },
            http,
            dead_letter_sink: park,
            secrets: keys.opener(),
        };
        let worker = Arc::new(Worker::with_metrics(ports, config, metrics.clone()));
        Self {
            worker,
            stores,
            queue,
            dlq,
            metrics,
            keys,
        }
    }

    /// A harness with a subscription to `url` stored as the API stores it (secret sealed).
    pub async fn subscribed(config: WorkerConfig, url: &str) -> (Self, Subscription) {
        let h = Self::new(config);
        let sub = h.seal(subscription(url)).await;
        h.add(&sub).await;
        (h, sub)
    }

    /// `sub` with its secrets sealed under the worker's key.
    pub async fn seal(&self, sub: Subscription) -> Subscription {
        sealed(&self.keys.sealer(), sub).await
    }

    /// The first receive of a fresh telephony-created job for `sub`.
    pub async fn deliver_new(&self, sub: &Subscription) -> DeliveryOutcome {
        deliver_new(&self.worker, sub).await
    }

    /// One SQS batch through the Lambda handler.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let event = lambda_runtime::LambdaEvent::new(event, Default::default());
        function_handler(self.worker.clone(), None, event)
            .await
            .unwrap()
    }

    pub async fn add(&self, sub: &Subscription) {
        self.stores.subscriptions.create(sub, 100).await.unwrap();
    }

    pub async fn sub(&self, id: &SubscriptionId) -> Option<Subscription> {
        self.stores.subscriptions.get(id).await.unwrap()
    }

    /// Newest first.
    pub async fn attempts(&self, id: &SubscriptionId) -> Vec<AttemptRecord> {
        attempts(&self.stores, id).await
    }

    pub fn queued_jobs(&self) -> Vec<DeliveryJob> {
        self.queue
            .bodies()
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect()
    }

    pub fn parked_jobs(&self) -> Vec<DeliveryJob> {
        self.dlq
            .bodies()
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect()
    }
}

/// A port that nothing listens on (bound, then closed).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

pub fn header<'a>(req: &'a wiremock::Request, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The real sender, with `config`'s target policy and response cap.
pub fn sender(config: &WorkerConfig) -> Arc<ReqwestSender> {
    Arc::new(ReqwestSender::new(config.targets.clone(), config.max_response_bytes).unwrap())
}

/// A worker on `aws`'s table and queues (`testkit::aws`): the real sender, the system clock, no
/// metrics.
pub fn aws_worker(
    aws: &testkit::aws::Resources,
    config: WorkerConfig,
    secrets: SecretOpener,
) -> Worker {
    let ports = Ports {
        core: CorePorts {
            stores: aws.stores.clone(),
            queue: aws.queue.clone(),
            clock: Arc::new(SystemClock),
        },
        http: sender(&config),
        dead_letter_sink: aws.dlq.clone(),
        secrets,
    };
    Worker::with_metrics(ports, config, Arc::new(MetricsSink::Off))
}

/// A subscription's attempt log, newest first (at most 100).
pub async fn attempts(stores: &Stores, id: &SubscriptionId) -> Vec<AttemptRecord> {
    let page = PageRequest {
        limit: 100,
        cursor: None,
    };
    let list = stores.attempts.list(AttemptQuery::of(*id), &page);
    list.await.unwrap().items
}

/// Answers the receiver's POSTs with `template`: the next `times` of them, or all (`None`).
pub async fn respond(server: &MockServer, template: ResponseTemplate, times: Option<u64>) {
    let mock = Mock::given(method("POST")).respond_with(template);
    match times {
        Some(n) => mock.up_to_n_times(n).mount(server).await,
        None => mock.mount(server).await,
    }
}

pub fn delivered(attempt: u32, status: u16) -> DeliveryOutcome {
    DeliveryOutcome::Delivered { attempt, status }
}

pub fn retrying(attempt: u32, delay_secs: u64) -> DeliveryOutcome {
    let delay = Duration::from_secs(delay_secs);
    DeliveryOutcome::Retrying { attempt, delay }
}

#[track_caller]
pub fn assert_first_retry(outcome: &DeliveryOutcome) {
    assert!(
        matches!(outcome, DeliveryOutcome::Retrying { attempt: 1, .. }),
        "{outcome:?}"
    );
}

/// Attempts 1..=`n`, each answered `status`: a job's history after `n` failures.
pub fn failed_attempts(n: u32, status: u16) -> Vec<AttemptSummary> {
    let summary = |attempt| AttemptSummary {
        attempt,
        at: Utc::now(),
        status_code: Some(status),
        error_class: None,
    };
    (1..=n).map(summary).collect()
}

/// The first receive of a fresh telephony-created job for `sub`.
pub async fn deliver_new(worker: &Worker, sub: &Subscription) -> DeliveryOutcome {
    let job = job_for(sub, EventType::TelephonyCreated);
    worker.process_message(&raw(&job), 1).await
}
