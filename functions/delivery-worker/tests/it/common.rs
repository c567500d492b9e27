//! Shared test fixtures: subscriptions, jobs, a worker on memory adapters, failure-injecting queues.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use delivery_worker::http_sender::ReqwestSender;
use delivery_worker::schedule::RetrySchedule;
use delivery_worker::ssrf::TargetPolicy;
use delivery_worker::{MetricsSink, Ports, Worker, WorkerConfig};
use relay_shared::adapters::memory::{memory_stores, MemoryQueue};
use relay_shared::clock::SystemClock;
use relay_shared::delivery::{AttemptRecord, DeliveryJob};
use relay_shared::error::QueueError;
use relay_shared::events::EventType;
use relay_shared::ids::{EventId, SubscriptionId};
use relay_shared::ports::{
    AttemptFilter, Clock, DeadLetterQueue, DeliveryQueue, HttpSender, PageRequest, QueuedJob,
    Stores,
};
use relay_shared::subscription::Subscription;

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub fn now_ms() -> u64 {
    Utc::now().timestamp_millis() as u64
}

pub fn subscription(url: &str) -> Subscription {
    Subscription {
        name: "test".into(),
        ..Subscription::new(
            "user-1",
            "org-1",
            url,
            EventType::ALL.to_vec(),
            SECRET,
            Utc::now(),
        )
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
    }
}

pub fn raw(job: &DeliveryJob) -> String {
    serde_json::to_string(job).unwrap()
}

/// Zero delays, no jitter, a short timeout, no cache; localhost receivers allowed via the allow-list.
pub fn test_config(attempts: usize) -> WorkerConfig {
    WorkerConfig {
        delivery_timeout: Duration::from_secs(5),
        schedule: RetrySchedule::new(vec![0; attempts], 0),
        targets: TargetPolicy {
            allow_http: true,
            allow_private: false,
            allow_cidrs: vec!["127.0.0.0/8".parse().unwrap()],
        },
        subscription_cache: Duration::ZERO,
        ..WorkerConfig::default()
    }
}

pub struct Harness {
    pub worker: Arc<Worker>,
    pub stores: Stores,
    pub queue: Arc<MemoryQueue>,
    pub dlq: Arc<MemoryQueue>,
    pub metrics: Arc<MetricsSink>,
}

impl Harness {
    pub fn new(config: WorkerConfig) -> Self {
        let http = Arc::new(
            ReqwestSender::new(config.targets.clone(), config.max_response_bytes).unwrap(),
        );
        Self::with(config, http, Arc::new(SystemClock))
    }

    pub fn with(config: WorkerConfig, http: Arc<dyn HttpSender>, clock: Arc<dyn Clock>) -> Self {
        let stores = memory_stores();
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
        park: Arc<dyn DeadLetterQueue>,
    ) -> Self {
        let metrics = Arc::new(MetricsSink::memory());
        let ports = Ports {
            stores: stores.clone(),
            http,
            queue: send,
            dlq: park,
            clock,
        };
        let worker = Arc::new(Worker::with_metrics(ports, config, metrics.clone()));
        Self {
            worker,
            stores,
            queue,
            dlq,
            metrics,
        }
    }

    pub async fn add(&self, sub: &Subscription) {
        self.stores.subscriptions.create(sub, 100).await.unwrap();
    }

    pub async fn sub(&self, id: &SubscriptionId) -> Option<Subscription> {
        self.stores.subscriptions.get(id).await.unwrap()
    }

    /// Newest first.
    pub async fn attempts(&self, id: &SubscriptionId) -> Vec<AttemptRecord> {
        self.stores
            .attempts
            .list(
                id,
                AttemptFilter::default(),
                &PageRequest {
                    limit: 100,
                    cursor: None,
                },
            )
            .await
            .unwrap()
            .items
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

/// A queue that refuses the first `failures` sends/parks, then forwards to `inner`.
pub struct FlakyQueue {
    pub inner: Arc<MemoryQueue>,
    pub failures: AtomicU32,
}

impl FlakyQueue {
    pub fn new(inner: Arc<MemoryQueue>, failures: u32) -> Self {
        Self {
            inner,
            failures: AtomicU32::new(failures),
        }
    }

    fn fail(&self) -> bool {
        self.failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

#[async_trait]
impl DeliveryQueue for FlakyQueue {
    async fn send(&self, jobs: &[QueuedJob]) -> Result<(), QueueError> {
        if self.fail() {
            return Err(QueueError::Unavailable("injected: queue down".into()));
        }
        self.inner.send(jobs).await
    }
}

#[async_trait]
impl DeadLetterQueue for FlakyQueue {
    async fn park(&self, raw_body: &str) -> Result<(), QueueError> {
        if self.fail() {
            return Err(QueueError::Unavailable("injected: dlq down".into()));
        }
        self.inner.park(raw_body).await
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
