//! The route suite's harness: the router over memory adapters, or over the AWS adapters when
//! `AWS_ENDPOINT_URL_DYNAMODB` and `AWS_ENDPOINT_URL_SQS` point at DynamoDB Local / moto
//! (`testkit::aws`).

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use chrono::{DurationRound, Utc};
use relay_shared::adapters::memory::{memory_stores, MemoryQueue};
use relay_shared::auth::Role;
use relay_shared::clock::ManualClock;
use relay_shared::delivery::DeliveryJob;
use relay_shared::error::StoreError;
use relay_shared::ids::SubscriptionId;
use relay_shared::ports::{
    CorePorts, DeadLetterSink, DeliveryQueue, IdempotencyStore, IdempotentResponse, QueueConsumer,
    Stores,
};
use relay_shared::secrets_at_rest::{
    DataKeySource, LocalKey, SecretOpener, SecretSealer, StoredSecret,
};
use relay_shared::subscription::Subscription;
use serde_json::Value;
use tower::ServiceExt;
use webhooks_api::{router, store_api_key, ApiConfig, AppState};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Aws,
}

pub struct Harness {
    pub router: Router,
    pub state: AppState,
    pub stores: Stores,
    /// The delivery queue's consuming side (to see what the API queued).
    pub queue: Arc<dyn QueueConsumer>,
    /// The dead-letter queue's producing side (to park jobs for redrive).
    pub dead_letter_sink: Arc<dyn DeadLetterSink>,
    pub clock: Arc<ManualClock>,
    pub backend: Backend,
    /// The local key the API seals secrets with.
    pub secrets_key: Arc<LocalKey>,
    /// Every record the `Idempotency-Key` middleware stored (answers and locks).
    pub idempotency_puts: Arc<Mutex<Vec<IdempotentResponse>>>,
    /// The AWS run's table (to read its raw items).
    pub table: Option<String>,
}

/// The idempotency store, recording what is put into it.
struct RecordingIdempotency {
    inner: Arc<dyn IdempotencyStore>,
    puts: Arc<Mutex<Vec<IdempotentResponse>>>,
}

#[async_trait::async_trait]
impl IdempotencyStore for RecordingIdempotency {
    async fn get(
        &self,
        scope_key: &str,
        now: chrono::DateTime<Utc>,
    ) -> Result<Option<IdempotentResponse>, StoreError> {
        self.inner.get(scope_key, now).await
    }

    async fn put(
        &self,
        scope_key: &str,
        response: &IdempotentResponse,
        expires_at: chrono::DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.puts.lock().unwrap().push(response.clone());
        self.inner.put(scope_key, response, expires_at).await
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.bytes)))
    }

    /// Asserts the status and that the body is one of our JSON errors with this code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "body: {}",
            String::from_utf8_lossy(&self.bytes)
        );
        assert_eq!(
            self.headers
                .get("content-type")
                .map(|v| v.to_str().unwrap()),
            Some("application/json")
        );
        let v = self.json();
        assert_eq!(v["error"], code, "{v}");
        assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()), "{v}");
        for k in v.as_object().unwrap().keys() {
            assert!(
                ["error", "detail", "field"].contains(&k.as_str()),
                "unexpected key {k} in {v}"
            );
        }
        v
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "body: {}",
            String::from_utf8_lossy(&self.bytes)
        );
        if self.bytes.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }
}

/// `suite!(case, …)`: each `async fn case(b: Backend)` of the invoking module as two tests,
/// `memory::case` and `aws::case` (the AWS one gets no harness, and returns, when
/// `testkit::aws`'s gate skips: `Backend::harness`).
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::common::Backend::Memory).await
                }
            )*
        }
        mod aws {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::common::Backend::Aws).await
                }
            )*
        }
    };
}
pub(crate) use suite;

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// A JSON request (`Content-Type: application/json` when there is a body).
pub fn request(
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Request<Body> {
    let mut b = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path);
    if let Some(k) = key {
        b = b.header("authorization", format!("Bearer {k}"));
    }
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    let body = match body {
        Some(v) => {
            b = b.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    b.body(body).unwrap()
}

impl Backend {
    /// A fresh harness, or `None` when the AWS endpoints are not configured (`testkit::aws`).
    pub async fn harness(self, config: ApiConfig) -> Option<Harness> {
        match self {
            Backend::Memory => Some(Harness::memory(config)),
            Backend::Aws => Harness::aws(config).await,
        }
    }
}

impl Harness {
    pub fn memory(config: ApiConfig) -> Self {
        let queue = Arc::new(MemoryQueue::new(Duration::from_secs(30)));
        let dlq = Arc::new(MemoryQueue::new(Duration::from_secs(30)));
        Self::build(memory_stores(), queue, dlq, config, None)
    }

    /// On a fresh table and queues, or `None` when `testkit::aws`'s gate skips.
    pub async fn aws(config: ApiConfig) -> Option<Self> {
        let aws = testkit::aws::Resources::for_test("the AWS-adapter route run", "wapi").await?;
        Some(Self::build(
            aws.stores,
            aws.queue,
            aws.dlq,
            config,
            Some(aws.table),
        ))
    }

    /// `table`: the AWS run's (`None`: memory).
    fn build<Q, D>(
        mut stores: Stores,
        queue: Arc<Q>,
        dlq: Arc<D>,
        config: ApiConfig,
        table: Option<String>,
    ) -> Self
    where
        Q: DeliveryQueue + QueueConsumer + 'static,
        D: DeadLetterSink + QueueConsumer + 'static,
    {
        // Near real time (the AWS adapters compare TTLs with the real clock), whole milliseconds.
        let now = Utc::now().duration_trunc(chrono::Duration::milliseconds(1));
        let clock = Arc::new(ManualClock::new(now.unwrap()));
        let idempotency_puts = Arc::new(Mutex::new(Vec::new()));
        stores.idempotency = Arc::new(RecordingIdempotency {
            inner: stores.idempotency.clone(),
            puts: idempotency_puts.clone(),
        });
        let core = CorePorts {
            stores: stores.clone(),
            queue: queue.clone(),
            clock: clock.clone(),
        };
        let secrets_key = Arc::new(LocalKey::generate());
        let sealer = SecretSealer::new(secrets_key.clone());
        let state = AppState::new(core, dlq.clone(), sealer, config);
        Self {
            router: router(state.clone()),
            state,
            stores,
            queue,
            dead_letter_sink: dlq,
            clock,
            backend: if table.is_some() {
                Backend::Aws
            } else {
                Backend::Memory
            },
            secrets_key,
            idempotency_puts,
            table,
        }
    }

    /// The same harness with the API sealing through `keys` instead (a failing key service).
    pub fn with_data_keys(mut self, keys: Arc<dyn DataKeySource>) -> Self {
        self.state.sealer = SecretSealer::new(keys);
        self.router = router(self.state.clone());
        self
    }

    /// Everything the API left at rest, as text: every idempotency record it stored, and the raw
    /// items of the whole table (AWS) or the stored form of these subscriptions (memory).
    pub async fn at_rest(&self, subscriptions: &[SubscriptionId]) -> String {
        let mut text = format!("{:?}", self.idempotency_puts.lock().unwrap());
        match &self.table {
            Some(table) => {
                let ddb = aws_sdk_dynamodb::Client::new(&testkit::aws::sdk_config().await);
                let mut start = None;
                loop {
                    let page = ddb
                        .scan()
                        .table_name(table)
                        .set_exclusive_start_key(start)
                        .send()
                        .await
                        .expect("scan");
                    text += &format!("{:?}", page.items());
                    start = page.last_evaluated_key().cloned();
                    if start.is_none() {
                        break;
                    }
                }
            }
            None => {
                for id in subscriptions {
                    text += &serde_json::to_string(&self.stored(id).await).unwrap();
                }
            }
        }
        text
    }

    /// Opens a stored secret as the worker would (with the key the API sealed it with).
    pub async fn open(&self, sub: &Subscription, stored: &StoredSecret) -> String {
        use secrecy::ExposeSecret;
        SecretOpener::new(self.secrets_key.clone())
            .open(stored, &sub.secret_context())
            .await
            .expect("the stored secret opens")
            .expose_secret()
            .to_owned()
    }

    /// The secrets that sign `sub`'s deliveries at `now`, opened (current first).
    pub async fn open_signing_secrets(
        &self,
        sub: &Subscription,
        now: chrono::DateTime<Utc>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for s in sub.signing_secrets(now) {
            out.push(self.open(sub, s).await);
        }
        out
    }

    /// A new API key for `user` in `org`.
    pub async fn key(&self, user: &str, org: &str, role: Role) -> String {
        let key = format!("wrk_{}", unique("test"));
        store_api_key(&self.stores, &key, user, org, role)
            .await
            .expect("store key");
        key
    }

    /// A key for a fresh user in a fresh org.
    pub async fn user(&self) -> String {
        self.key(&unique("user"), &unique("org"), Role::User).await
    }

    pub async fn send(&self, req: Request<Body>) -> Resp {
        let r = self.send_allowing_5xx(req).await;
        assert!(
            !r.status.is_server_error(),
            "server error {}: {}",
            r.status,
            String::from_utf8_lossy(&r.bytes)
        );
        r
    }

    /// [`Harness::send`] for the tests that expect a server error.
    pub async fn send_allowing_5xx(&self, req: Request<Body>) -> Resp {
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        Resp {
            status,
            headers,
            bytes,
        }
    }

    /// A JSON request (`Content-Type: application/json` when there is a body).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        self.call_with(method, path, key, body, &[]).await
    }

    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        self.send(request(method, path, key, body, headers)).await
    }

    /// The stored subscription (it must exist).
    pub async fn stored(&self, id: &SubscriptionId) -> Subscription {
        let sub = self.stores.subscriptions.get(id).await.unwrap();
        sub.expect("the subscription is stored")
    }

    /// Creates a webhook and returns its JSON (with the secret).
    pub async fn create(&self, key: &str, name: &str) -> Value {
        let r = self
            .call("POST", "/api/hooks/webhooks", Some(key), Some(serde_json::json!({"name": name, "url": "https://example.com/hook", "eventTypes": ["presence:changed", "telephony:created"]})))
            .await;
        r.assert_status(201)
    }

    /// Everything on the delivery queue right now (received and acknowledged).
    pub async fn drain_queue(&self) -> Vec<DeliveryJob> {
        let mut out = Vec::new();
        let mut empty_polls = 0;
        while empty_polls < 2 {
            let batch = self.queue.receive(10, 0).await.expect("receive");
            if batch.is_empty() {
                empty_polls += 1;
                continue;
            }
            empty_polls = 0;
            for m in batch {
                out.push(serde_json::from_str(&m.body).expect("a delivery job"));
                self.queue.ack(&m.receipt).await.expect("ack");
            }
        }
        out
    }
}
