//! The two drivers of the core: the Lambda SQS handler (partial batch responses) and the local
//! stack's in-process consumer loop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures::future::join_all;
use lambda_runtime::LambdaEvent;
use relay_shared::error::QueueError;
use relay_shared::ports::QueueConsumer;

use crate::outcome::DeliveryOutcome;
use crate::worker::Worker;

/// Runs one message on its own task. Where panics unwind (debug builds, the tests) a panic costs
/// only that message, reported as `Failed`. The release profile (Lambda, `--release` local stack)
/// has `panic = "abort"`: a panic ends the whole process, so the invocation fails and SQS hands
/// out again, after the visibility timeout, every message of the batch not yet deleted. That is
/// safe because attempts are claimed (`Worker::process_message`): a copy whose attempt was already
/// made and settled is dropped as a duplicate; only an attempt cut off mid-flight is made again
/// (receivers dedupe on `webhook-id`).
async fn isolated(worker: Arc<Worker>, body: String, receive_count: u32) -> DeliveryOutcome {
    match tokio::spawn(async move { worker.process_message(&body, receive_count).await }).await {
        Ok(outcome) => outcome,
        Err(e) => DeliveryOutcome::Failed {
            error: format!("delivery task failed: {e}"),
        },
    }
}

/// Lambda entry point (SQS event source with `ReportBatchItemFailures`): every record is processed
/// concurrently; the records whose outcome must not be acknowledged are returned as batch item
/// failures, so SQS hands only those out again.
pub async fn function_handler(
    worker: Arc<Worker>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let records = event.payload.records;
    let tasks = records.iter().map(|r| {
        let receive_count = r
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        isolated(
            worker.clone(),
            r.body.clone().unwrap_or_default(),
            receive_count,
        )
    });
    let outcomes = join_all(tasks).await;
    let mut failures = Vec::new();
    for (record, outcome) in records.iter().zip(outcomes) {
        if outcome.acknowledged() {
            continue;
        }
        match &record.message_id {
            Some(id) => {
                let mut f = BatchItemFailure::default();
                f.item_identifier = id.clone();
                failures.push(f);
            }
            // Cannot name it: fail the whole invocation so nothing is lost.
            None => return Err("a record without a messageId could not be processed".into()),
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    Ok(response)
}

/// One receive → process → ack round of the local consumer loop. Returns the outcomes.
pub async fn poll_once(
    worker: &Arc<Worker>,
    consumer: &dyn QueueConsumer,
    wait_seconds: u32,
) -> Result<Vec<DeliveryOutcome>, QueueError> {
    let max = worker.config().concurrency.clamp(1, 10) as u32;
    let received = consumer.receive(max, wait_seconds).await?;
    let outcomes = join_all(
        received
            .iter()
            .map(|m| isolated(worker.clone(), m.body.clone(), m.receive_count)),
    )
    .await;
    for (m, outcome) in received.iter().zip(&outcomes) {
        let result = if outcome.acknowledged() {
            consumer.ack(&m.receipt).await
        } else {
            consumer.retry_after(&m.receipt, 5).await
        };
        if let Err(e) = result {
            // Not acknowledged: the visibility timeout brings it back.
            tracing::warn!(error = %e, "could not settle a received message");
        }
    }
    Ok(outcomes)
}

/// The local stack's in-process worker: polls `consumer` until `shutdown` resolves.
pub async fn run_consumer(
    worker: Arc<Worker>,
    consumer: Arc<dyn QueueConsumer>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let poll = poll_once(&worker, consumer.as_ref(), 1);
        tokio::pin!(poll);
        tokio::select! {
            // Shutting down: finish the batch in flight (its deliveries and acks), then stop.
            _ = &mut shutdown => {
                let _ = poll.await;
                break;
            }
            r = &mut poll => {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "delivery queue receive failed; backing off");
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }
}
