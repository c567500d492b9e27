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
    /// On DynamoDB: the client and the table, for the tests that write an item as an older
    /// version of an adapter did.
    pub dynamodb: Option<(aws_sdk_dynamodb::Client, String)>,
}

pub mod stores {
    use super::*;
    use relay_shared::adapters::memory::memory_stores;

    pub fn memory() -> StoreEnv {
        StoreEnv {
            stores: memory_stores(),
            backend: Backend::Memory,
            dynamodb: None,
        }
    }

    pub async fn aws(test: &str) -> Option<StoreEnv> {
        let client = dynamodb(test).await?;
        let (stores, table) = testkit::aws::fresh_stores(client.clone(), "relay-conformance").await;
        Some(StoreEnv {
            stores,
            backend: Backend::Aws,
            dynamodb: Some((client, table)),
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
    /// A FIFO delivery queue (per-call ordering): its producer and consumer sides.
    pub fifo: Arc<dyn relay_shared::ports::DeliveryQueue>,
    pub fifo_consumer: Arc<dyn relay_shared::ports::QueueConsumer>,
    depth: Depth,
    fifo_depth: Depth,
}

impl QueueEnv {
    /// Messages in the delivery queue: visible, in flight or delayed.
    pub async fn depth(&self) -> u64 {
        self.depth.of().await
    }

    /// The same for the FIFO queue.
    pub async fn fifo_depth(&self) -> u64 {
        self.fifo_depth.of().await
    }
}

impl Depth {
    async fn of(&self) -> u64 {
        match self {
            Depth::Memory(q) => q.len() as u64,
            Depth::Sqs(q) => q.approximate_depth().await.expect("queue depth"),
        }
    }
}

pub mod queues {
    use std::time::Duration;

    use super::*;
    use relay_shared::adapters::aws::{create_fifo_queues, SqsQueue, MAX_RECEIVE_COUNT};
    use relay_shared::adapters::memory::MemoryQueue;

    pub fn memory() -> QueueEnv {
        let dlq = Arc::new(MemoryQueue::new(Duration::from_secs(30)));
        let queue = Arc::new(
            MemoryQueue::new(Duration::from_secs(30))
                .with_dead_letter(dlq.clone(), MAX_RECEIVE_COUNT),
        );
        let fifo = Arc::new(MemoryQueue::fifo(Duration::from_secs(30)));
        QueueEnv {
            backend: Backend::Memory,
            queue: queue.clone(),
            consumer: queue.clone(),
            dead_letter_sink: dlq.clone(),
            dead_letter_source: dlq,
            fifo: fifo.clone(),
            fifo_consumer: fifo.clone(),
            depth: Depth::Memory(queue),
            fifo_depth: Depth::Memory(fifo),
        }
    }

    pub async fn aws(test: &str) -> Option<QueueEnv> {
        let client = sqs(test).await?;
        let (queue, dlq) = testkit::aws::fresh_queues(client.clone(), "relay-conformance").await;
        let (fifo_url, _) = create_fifo_queues(&client, &unique("relay-conformance"))
            .await
            .expect("FIFO queues");
        let fifo = SqsQueue::new(client, fifo_url);
        Some(QueueEnv {
            backend: Backend::Aws,
            queue: Arc::new(queue.clone()),
            consumer: Arc::new(queue.clone()),
            dead_letter_sink: Arc::new(dlq.clone()),
            dead_letter_source: Arc::new(dlq),
            fifo: Arc::new(fifo.clone()),
            fifo_consumer: Arc::new(fifo.clone()),
            depth: Depth::Sqs(queue),
            fifo_depth: Depth::Sqs(fifo),
        })
    }
}
