//! The environments the conformance tests run in: in memory, or on AWS-compatible endpoints.

use std::sync::Arc;

use relay_shared::ports::Stores;
pub use testkit::aws::unique;
use testkit::aws::Service;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Aws,
}

/// A DynamoDB client on local AWS, or `None` when `test` skips (`testkit::aws`'s gate).
pub async fn dynamodb(test: &str) -> Option<aws_sdk_dynamodb::Client> {
    let sdk = testkit::aws::local(test, &[Service::DynamoDb]).await?;
    Some(aws_sdk_dynamodb::Client::new(&sdk))
}

/// An SQS client on local AWS, or `None` when `test` skips.
pub async fn sqs(test: &str) -> Option<aws_sdk_sqs::Client> {
    let sdk = testkit::aws::local(test, &[Service::Sqs]).await?;
    Some(aws_sdk_sqs::Client::new(&sdk))
}

pub struct StoreEnv {
    pub stores: Stores,
    pub backend: Backend,
}

pub mod stores {
    use super::*;
    use relay_shared::adapters::memory::memory_stores;

    pub fn memory() -> StoreEnv {
        StoreEnv {
            stores: memory_stores(),
            backend: Backend::Memory,
        }
    }

    pub async fn aws(test: &str) -> Option<StoreEnv> {
        let (stores, _) =
            testkit::aws::fresh_stores(dynamodb(test).await?, "relay-conformance").await;
        Some(StoreEnv {
            stores,
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
    pub dead_letter_sink: Arc<dyn relay_shared::ports::DeadLetterSink>,
    pub dead_letter_source: Arc<dyn relay_shared::ports::QueueConsumer>,
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
    use relay_shared::adapters::aws::MAX_RECEIVE_COUNT;
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
            dead_letter_sink: dlq.clone(),
            dead_letter_source: dlq,
            depth: Depth::Memory(queue),
        }
    }

    pub async fn aws(test: &str) -> Option<QueueEnv> {
        let (queue, dlq) = testkit::aws::fresh_queues(sqs(test).await?, "relay-conformance").await;
        Some(QueueEnv {
            backend: Backend::Aws,
            queue: Arc::new(queue.clone()),
            consumer: Arc::new(queue.clone()),
            dead_letter_sink: Arc::new(dlq.clone()),
            dead_letter_source: Arc::new(dlq),
            depth: Depth::Sqs(queue),
        })
    }
}
