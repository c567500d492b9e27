//! The environments the conformance tests run in: in memory, or on AWS-compatible endpoints.

use std::io::Write;
use std::sync::Arc;

use relay_shared::ports::Stores;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Aws,
}

fn require_aws() -> bool {
    std::env::var("RELAY_REQUIRE_AWS").is_ok_and(|v| v.trim() == "1")
}

/// The endpoint for a service, or `None` after printing why the test is skipped (a panic under
/// `RELAY_REQUIRE_AWS=1`).
fn endpoint(var: &str, test: &str, what: &str) -> Option<String> {
    let found = [var, "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()));
    if found.is_none() {
        if require_aws() {
            panic!("{test} needs {what}, but {var} is not set and RELAY_REQUIRE_AWS=1");
        }
        // Straight to stderr, past the test harness's capture, so the skip is visible.
        let _ = writeln!(
            std::io::stderr(),
            "skipped: {test} needs {what} — run scripts/test, or set {var}"
        );
    }
    found
}

/// SDK config from the environment, with local-testing defaults for region and credentials.
async fn sdk_config() -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none()
    {
        loader = loader.region(aws_config::Region::new("us-east-1"));
    }
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() && std::env::var_os("AWS_PROFILE").is_none()
    {
        loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "conformance",
        ));
    }
    loader.load().await
}

/// A DynamoDB client on the configured endpoint, or `None` (skipped).
pub async fn dynamodb(test: &str) -> Option<(aws_sdk_dynamodb::Client, String)> {
    let url = endpoint("AWS_ENDPOINT_URL_DYNAMODB", test, "DynamoDB Local")?;
    Some((aws_sdk_dynamodb::Client::new(&sdk_config().await), url))
}

/// An SQS client on the configured endpoint, or `None` (skipped).
pub async fn sqs(test: &str) -> Option<(aws_sdk_sqs::Client, String)> {
    let url = endpoint(
        "AWS_ENDPOINT_URL_SQS",
        test,
        "an SQS endpoint (moto server)",
    )?;
    Some((aws_sdk_sqs::Client::new(&sdk_config().await), url))
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        ulid::Ulid::new().to_string().to_ascii_lowercase()
    )
}

pub struct StoreEnv {
    pub stores: Stores,
    pub backend: Backend,
}

pub mod stores {
    use super::*;
    use relay_shared::adapters::aws::{aws_stores, create_table, DynamoTable};
    use relay_shared::adapters::memory::memory_stores;

    pub fn memory() -> StoreEnv {
        StoreEnv {
            stores: memory_stores(),
            backend: Backend::Memory,
        }
    }

    pub async fn aws(test: &str) -> Option<StoreEnv> {
        let (client, url) = dynamodb(test).await?;
        let table = unique("relay-conformance");
        if let Err(e) = create_table(&client, &table).await {
            panic!("{test}: cannot create table {table} at {url}: {e}");
        }
        Some(StoreEnv {
            stores: aws_stores(DynamoTable::new(client, table)),
            backend: Backend::Aws,
        })
    }
}

enum Depth {
    Memory(Arc<relay_shared::adapters::memory::MemoryQueue>),
    Sqs(relay_shared::adapters::aws::SqsQueue),
}

pub struct QueueEnv {
    pub backend: Backend,
    pub queue: Arc<dyn relay_shared::ports::DeliveryQueue>,
    pub consumer: Arc<dyn relay_shared::ports::QueueConsumer>,
    pub dlq: Arc<dyn relay_shared::ports::DeadLetterQueue>,
    pub dlq_consumer: Arc<dyn relay_shared::ports::QueueConsumer>,
    depth: Depth,
}

impl QueueEnv {
    /// Messages in the delivery queue: visible, in flight or delayed.
    pub async fn depth(&self) -> u64 {
        match &self.depth {
            Depth::Memory(q) => q.len() as u64,
            Depth::Sqs(q) => q.approximate_depth().await.expect("queue depth"),
        }
    }
}

pub mod queues {
    use std::time::Duration;

    use super::*;
    use relay_shared::adapters::aws::{create_queues, SqsQueue, MAX_RECEIVE_COUNT};
    use relay_shared::adapters::memory::MemoryQueue;

    pub fn memory() -> QueueEnv {
        let dlq = Arc::new(MemoryQueue::new(Duration::from_secs(30)));
        let queue = Arc::new(
            MemoryQueue::new(Duration::from_secs(30))
                .with_dead_letter(dlq.clone(), MAX_RECEIVE_COUNT),
        );
        QueueEnv {
            backend: Backend::Memory,
            queue: queue.clone(),
            consumer: queue.clone(),
            dlq: dlq.clone(),
            dlq_consumer: dlq,
            depth: Depth::Memory(queue),
        }
    }

    pub async fn aws(test: &str) -> Option<QueueEnv> {
        let (client, url) = sqs(test).await?;
        let prefix = unique("relay-conformance");
        let (queue_url, dlq_url) = match create_queues(&client, &prefix).await {
            Ok(urls) => urls,
            Err(e) => panic!("{test}: cannot create queues {prefix} at {url}: {e}"),
        };
        let queue = SqsQueue::new(client.clone(), queue_url);
        let dlq = SqsQueue::new(client, dlq_url);
        Some(QueueEnv {
            backend: Backend::Aws,
            queue: Arc::new(queue.clone()),
            consumer: Arc::new(queue.clone()),
            dlq: Arc::new(dlq.clone()),
            dlq_consumer: Arc::new(dlq),
            depth: Depth::Sqs(queue),
        })
    }
}
