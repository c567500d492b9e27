//! The storage and queues the stack runs on: embedded memory, or any AWS-compatible endpoint.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use relay_shared::adapters::aws::{
    aws_clients, aws_stores, create_fifo_queues, create_queues, create_table, DynamoTable,
    SqsQueue, ORDERED_MAX_RECEIVE_COUNT,
};
use relay_shared::adapters::memory::{bounded_memory_stores, MemoryQueue};
use relay_shared::ports::{DeadLetterSink, DeliveryQueue, QueueConsumer, RoutedQueue, Stores};

use crate::args::{Args, LOCAL_TABLE};

pub struct Backend {
    pub stores: Stores,
    /// Where jobs are sent: the standard queue, and per-call-ordered webhooks' jobs to the
    /// ordered (FIFO) one ([`RoutedQueue`], docs/ordering.md).
    pub queue: Arc<dyn DeliveryQueue>,
    /// The standard queue's consuming side.
    pub consumer: Arc<dyn QueueConsumer>,
    /// The ordered queue's consuming side (`None` on `--aws` without an ordered queue: then
    /// per-call-ordered jobs are refused, as on Lambda without `ORDERED_QUEUE_URL`).
    pub ordered_consumer: Option<Arc<dyn QueueConsumer>>,
    /// The dead-letter queue's producing side (the worker parks jobs there) and its consuming
    /// side (the API's redrive drains it).
    pub dead_letter_sink: Arc<dyn DeadLetterSink>,
    pub dead_letter_source: Arc<dyn QueueConsumer>,
    pub description: String,
}

/// The delivery queue's visibility timeout: a received batch is worked on concurrently, each
/// delivery bounded by the delivery timeout, so 12× that (template.yaml's 360 s for 30 s) is a
/// wide margin; at least 30 s. Short delivery timeouts (tests, demos) thus also bring back a
/// message whose consumer could not settle it without a six-minute wait.
pub fn visibility_seconds(delivery_timeout: Duration) -> u32 {
    ((delivery_timeout.as_secs_f64() * 12.0).ceil().min(43_200.0) as u32).max(30)
}

pub fn memory(store_capacity: usize, visibility_seconds: u32) -> Backend {
    let dlq = Arc::new(MemoryQueue::new(Duration::from_secs(30)));
    // Like the template's redrive policy: five receives without an ack park the message.
    let queue = Arc::new(
        MemoryQueue::new(Duration::from_secs(visibility_seconds.into()))
            .with_dead_letter(dlq.clone(), 5),
    );
    // The template's ordered queue: FIFO, its retries are receives of the same message.
    let ordered = Arc::new(
        MemoryQueue::fifo(Duration::from_secs(visibility_seconds.into()))
            .with_dead_letter(dlq.clone(), ORDERED_MAX_RECEIVE_COUNT),
    );
    Backend {
        // Bounded: no TTL sweeper runs here, so a long local run would otherwise keep every
        // event body, call, dedupe key and attempt.
        stores: bounded_memory_stores(store_capacity),
        queue: Arc::new(RoutedQueue {
            standard: queue.clone(),
            ordered: Some(ordered.clone()),
        }),
        consumer: queue,
        ordered_consumer: Some(ordered),
        dead_letter_sink: dlq.clone(),
        dead_letter_source: dlq,
        description: "embedded in-memory store and queues".into(),
    }
}

pub async fn aws(args: &Args, visibility_seconds: u32) -> anyhow::Result<Backend> {
    let (dynamodb, sqs) = aws_clients().await;
    let resources = &args.resources;
    let table = resources.table_name.as_deref().unwrap_or(LOCAL_TABLE);
    if args.create_resources {
        create_table(&dynamodb, table)
            .await
            .with_context(|| format!("creating DynamoDB table {table}"))?;
    }
    let (queue_url, dlq_url) = match (
        &resources.delivery_queue_url,
        &resources.dead_letter_queue_url,
    ) {
        (Some(q), Some(d)) => (q.clone(), d.clone()),
        _ if args.create_resources => {
            let (q, d) = create_queues(&sqs, table)
                .await
                .context("creating the SQS queues")?;
            set_visibility(&sqs, &q, visibility_seconds).await?;
            (q, d)
        }
        _ => anyhow::bail!(
            "--aws needs DELIVERY_QUEUE_URL and DEAD_LETTER_QUEUE_URL (or --create-resources)"
        ),
    };
    let ordered_url = match &resources.ordered_queue_url {
        Some(url) => Some(url.clone()),
        None if args.create_resources => {
            // Its own dead-letter queue (a FIFO queue redrives to a FIFO queue only).
            let (q, _) = create_fifo_queues(&sqs, table)
                .await
                .context("creating the ordered SQS queues")?;
            set_visibility(&sqs, &q, visibility_seconds).await?;
            Some(q)
        }
        None => None,
    };
    let queue = Arc::new(SqsQueue::new(sqs.clone(), queue_url.clone()));
    let ordered = ordered_url.map(|url| Arc::new(SqsQueue::new(sqs.clone(), url)));
    let dlq = Arc::new(SqsQueue::new(sqs, dlq_url));
    Ok(Backend {
        stores: aws_stores(DynamoTable::new(dynamodb, table)),
        queue: Arc::new(RoutedQueue {
            standard: queue.clone(),
            ordered: ordered.clone().map(|q| q as Arc<dyn DeliveryQueue>),
        }),
        consumer: queue,
        ordered_consumer: ordered.map(|q| q as Arc<dyn QueueConsumer>),
        dead_letter_sink: dlq.clone(),
        dead_letter_source: dlq,
        description: format!("DynamoDB table {table} and SQS queue {queue_url}"),
    })
}

/// Well above the delivery timeout, so a slow delivery is not handed to a second consumer
/// mid-attempt.
async fn set_visibility(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    visibility_seconds: u32,
) -> anyhow::Result<()> {
    sqs.set_queue_attributes()
        .queue_url(queue_url)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            visibility_seconds.to_string(),
        )
        .send()
        .await
        .with_context(|| format!("setting {queue_url}'s visibility timeout"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::visibility_seconds;
    use std::time::Duration;

    #[test]
    fn visibility_follows_the_delivery_timeout() {
        let secs = Duration::from_secs_f64;
        assert_eq!(visibility_seconds(secs(30.0)), 360);
        assert_eq!(visibility_seconds(secs(1.0)), 30);
        assert_eq!(visibility_seconds(secs(2.5)), 30);
        assert_eq!(visibility_seconds(secs(10.0)), 120);
        assert_eq!(visibility_seconds(secs(100000.0)), 43_200);
    }
}
