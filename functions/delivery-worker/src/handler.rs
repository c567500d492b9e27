//! The drivers of the core: the Lambda SQS handler (partial batch responses; the standard and the
//! ordered queue alike) and the local stack's in-process consumer loops (one per queue). A
//! batch of the ordered (FIFO) queue is processed group by group ([`process_ordered`],
//! docs/ordering.md).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::join_all;
use lambda_runtime::LambdaEvent;
use relay_shared::error::QueueError;
use relay_shared::ports::QueueConsumer;
use relay_shared::telemetry::{self, Start, TraceCarrier};
use tracing::Instrument;

use crate::outcome::DeliveryOutcome;
use crate::worker::{within_invocation, Worker};

/// Runs one message on its own task. Where panics unwind (debug builds, the tests) a panic costs
/// only that message, reported as `Failed`. The release profile (Lambda, `--release` local stack)
/// has `panic = "abort"`: a panic ends the whole process, so the invocation fails and SQS hands
/// out again, after the visibility timeout, every message of the batch not yet deleted. That is
/// safe because attempts are claimed (`Worker::process_message`): a copy whose attempt was already
/// made and settled is dropped as a duplicate; only an attempt cut off mid-flight is made again
/// (receivers dedupe on `webhook-id`).
async fn isolated(
    worker: Arc<Worker>,
    body: String,
    receive_count: u32,
    span: tracing::Span,
    deadline: Option<std::time::SystemTime>,
) -> DeliveryOutcome {
    // The invocation's end bounds the attempt claim's lease from below (`lease_until`), as an
    // instant of the worker's clock.
    let deadline = deadline.map(|d| worker.on_clock(d));
    let task = async move { worker.process_message(&body, receive_count).await };
    let task = within_invocation(deadline, task);
    match tokio::spawn(task.instrument(span)).await {
        Ok(outcome) => outcome,
        Err(e) => DeliveryOutcome::Failed {
            error: format!("delivery task failed: {e}"),
        },
    }
}

/// [`isolated`] for a message of the standard queue ([`Worker::process_standard_message`]: an
/// ordered job found there is moved to the ordered queue).
async fn isolated_standard(
    worker: Arc<Worker>,
    body: String,
    receive_count: u32,
    span: tracing::Span,
    deadline: Option<std::time::SystemTime>,
) -> DeliveryOutcome {
    let deadline = deadline.map(|d| worker.on_clock(d));
    let task = async move { worker.process_standard_message(&body, receive_count).await };
    let task = within_invocation(deadline, task);
    match tokio::spawn(task.instrument(span)).await {
        Ok(outcome) => outcome,
        Err(e) => DeliveryOutcome::Failed {
            error: format!("delivery task failed: {e}"),
        },
    }
}

/// One message of an ordered (FIFO) batch.
#[derive(Debug, Clone)]
pub struct OrderedMessage {
    pub body: String,
    pub receive_count: u32,
    /// Its message group (`None`: unknown, e.g. an unparseable body; all such form one group).
    pub group: Option<String>,
    /// Its sender's trace context (message attributes).
    pub trace: TraceCarrier,
}

/// The span one queue message is processed in (the SQS hop's consumer side): it continues the
/// sender's trace from the message attributes (`traceparent`, `tracestate`, `baggage` with the
/// Webex tracking id), and names the invocation's request id, so the worker's log lines and the
/// attempt records carry both (docs/observability.md, "Tracing").
pub fn job_span(trace: &TraceCarrier, request_id: Option<&str>) -> tracing::Span {
    let span = tracing::info_span!(
        "delivery.job",
        "otel.name" = "delivery job process",
        "otel.kind" = "consumer",
        "messaging.system" = "aws_sqs",
        "messaging.operation.type" = "process",
    );
    telemetry::start(
        &span,
        Start {
            remote: Some(trace),
            request_id,
            tracking_id: None,
        },
    );
    if let Some(tracking_id) = telemetry::context::ids_of(&span).and_then(|i| i.tracking_id) {
        telemetry::set_attribute(&span, telemetry::context::TRACKING_ID_KEY, tracking_id);
    }
    span
}

/// The trace context of a Lambda SQS record (its message attributes).
fn record_trace(r: &SqsMessage) -> TraceCarrier {
    TraceCarrier::from_pairs(
        r.message_attributes
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.string_value.as_deref()?))),
    )
}

/// The message group a job's body names (`orderingKey`).
pub fn message_group(body: &str) -> Option<String> {
    let job: serde_json::Value = serde_json::from_str(body).ok()?;
    Some(job.get("orderingKey")?.as_str()?.to_owned())
}

/// Processes a batch of the ordered queue: its message groups concurrently, each group's messages
/// one after the other in batch order (the order SQS FIFO keeps). After the first message of a
/// group that is not acknowledged (held back for a retry, or failed), the rest of that group is
/// not processed (`None`), so that nothing overtakes it; other groups flow on. (AWS: with
/// `ReportBatchItemFailures` on a FIFO queue the function must stop at the first failure and
/// report it and every unprocessed message of the batch; per group is enough, since SQS orders
/// within a group only.)
pub async fn process_ordered(
    worker: &Arc<Worker>,
    messages: &[OrderedMessage],
) -> Vec<Option<DeliveryOutcome>> {
    process_ordered_until(worker, messages, None, None).await
}

/// What an attempt needs of the invocation's remaining time besides the delivery timeout (the
/// claim, the attempt log, the visibility changes).
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// [`process_ordered`] within an invocation that ends at `deadline` (Lambda's): a group's
/// messages run one after the other, so a few slow receivers could outlast the function timeout
/// (the invocation killed, the whole batch back after the visibility timeout, the cut-off
/// attempt POSTed again). A message is started only while the delivery timeout plus
/// [`DEADLINE_MARGIN`] remains; the rest of its group is left unprocessed (`None`), to come back
/// at once in the next batch.
pub async fn process_ordered_until(
    worker: &Arc<Worker>,
    messages: &[OrderedMessage],
    deadline: Option<std::time::SystemTime>,
    request_id: Option<&str>,
) -> Vec<Option<DeliveryOutcome>> {
    let needed = worker.config().delivery_timeout + DEADLINE_MARGIN;
    let time_left = move || {
        deadline.is_none_or(|d| {
            d.duration_since(std::time::SystemTime::now())
                .is_ok_and(|left| left >= needed)
        })
    };
    let mut groups: Vec<(&Option<String>, Vec<usize>)> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        match groups.iter_mut().find(|(g, _)| *g == &m.group) {
            Some((_, members)) => members.push(i),
            None => groups.push((&m.group, vec![i])),
        }
    }
    let runs = groups.into_iter().map(|(_, members)| async move {
        let mut done = Vec::with_capacity(members.len());
        for i in members {
            if !time_left() {
                break;
            }
            let m = &messages[i];
            let span = job_span(&m.trace, request_id);
            let outcome = isolated(
                worker.clone(),
                m.body.clone(),
                m.receive_count,
                span,
                deadline,
            )
            .await;
            let go_on = outcome.acknowledged();
            done.push((i, outcome));
            if !go_on {
                break;
            }
        }
        done
    });
    let mut out = vec![None; messages.len()];
    for (i, outcome) in join_all(runs).await.into_iter().flatten() {
        out[i] = Some(outcome);
    }
    out
}

/// Whole seconds of a hold, rounded up, and at most what SQS can still hold after this
/// receive (its 12-hour visibility maximum counts from the receive: less
/// [`crate::config::HOLD_MARGIN_SECONDS`]). A longer wait (a `Retry-After` doubling a long
/// delay) is cut short to that — an earlier retry, still held — rather than refused by SQS and
/// back after the visibility timeout (the schedule itself is checked at start,
/// `WorkerConfig::check_ordered`).
fn hold_seconds(delay: Duration) -> u32 {
    let max = u64::from(relay_shared::adapters::aws::MAX_HOLD_SECONDS)
        - crate::config::HOLD_MARGIN_SECONDS;
    let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    u32::try_from(secs.min(max)).unwrap_or(u32::MAX)
}

fn receive_count(r: &SqsMessage) -> u32 {
    r.attributes
        .get("ApproximateReceiveCount")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// Lambda entry point (SQS event sources with `ReportBatchItemFailures`). A batch of the standard
/// queue: every record is processed concurrently. A batch of the ordered queue (its ARN ends in
/// `.fifo`): [`process_ordered`], and a held-back record's visibility is changed to its retry
/// delay through `ordered` (its queue), so the group waits that long. Records whose outcome must
/// not be acknowledged (or that were not processed) are returned as batch item failures, so SQS
/// hands only those out again.
pub async fn function_handler(
    worker: Arc<Worker>,
    ordered: Option<Arc<dyn QueueConsumer>>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let records = event.payload.records;
    let request_id = Some(event.context.request_id.as_str()).filter(|r| !r.is_empty());
    // A test's default context has no deadline (0).
    let deadline = (event.context.deadline > 0).then(|| event.context.deadline());
    let is_fifo = records.first().is_some_and(|r| {
        r.event_source_arn
            .as_deref()
            .is_some_and(|a| a.ends_with(".fifo"))
    });
    let outcomes: Vec<Option<DeliveryOutcome>> = if is_fifo {
        let messages: Vec<OrderedMessage> = records
            .iter()
            .map(|r| {
                let body = r.body.clone().unwrap_or_default();
                let group = r
                    .attributes
                    .get("MessageGroupId")
                    .cloned()
                    .or_else(|| message_group(&body));
                OrderedMessage {
                    body,
                    receive_count: receive_count(r),
                    group,
                    trace: record_trace(r),
                }
            })
            .collect();
        process_ordered_until(&worker, &messages, deadline, request_id).await
    } else {
        let tasks = records.iter().map(|r| {
            isolated_standard(
                worker.clone(),
                r.body.clone().unwrap_or_default(),
                receive_count(r),
                job_span(&record_trace(r), request_id),
                deadline,
            )
        });
        join_all(tasks).await.into_iter().map(Some).collect()
    };
    let mut failures = Vec::new();
    for (record, outcome) in records.iter().zip(outcomes) {
        if outcome.as_ref().is_some_and(DeliveryOutcome::acknowledged) {
            continue;
        }
        if let (true, Some(queue), Some(receipt)) = (is_fifo, &ordered, &record.receipt_handle) {
            // A held record hides for its retry delay. The unprocessed rest of its group is made
            // visible at once: left in flight for the queue's visibility timeout it would keep
            // the whole group (the held head included: FIFO hands out nothing of a group while
            // any of it is in flight) back for that long instead of the delay.
            let (seconds, what) = match &outcome {
                Some(DeliveryOutcome::Held { delay, .. }) => (
                    Some(hold_seconds(*delay)),
                    "hold a message back for its retry delay",
                ),
                None => (Some(0), "release an unprocessed message"),
                Some(_) => (None, ""),
            };
            if let Some(seconds) = seconds {
                if let Err(e) = queue.retry_after(receipt, seconds).await {
                    // The queue's visibility timeout brings it back: later, or sooner.
                    tracing::warn!(error = %e, "could not {what}");
                }
            }
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
    let outcomes = join_all(received.iter().map(|m| {
        let span = job_span(&m.trace, None);
        // The local stack: no invocation deadline.
        isolated_standard(worker.clone(), m.body.clone(), m.receive_count, span, None)
    }))
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

/// One receive → process → settle round on the ordered queue ([`process_ordered`]): a held
/// message is hidden for its retry delay, a failed one for a few seconds, and the unprocessed rest
/// of its group made visible at once (it still waits behind the held one: SQS FIFO hands out no
/// message of a group while an earlier one is in flight).
pub async fn poll_ordered_once(
    worker: &Arc<Worker>,
    consumer: &dyn QueueConsumer,
    wait_seconds: u32,
) -> Result<Vec<Option<DeliveryOutcome>>, QueueError> {
    let received = consumer.receive(10, wait_seconds).await?;
    let messages: Vec<OrderedMessage> = received
        .iter()
        .map(|m| OrderedMessage {
            body: m.body.clone(),
            receive_count: m.receive_count,
            group: message_group(&m.body),
            trace: m.trace.clone(),
        })
        .collect();
    let outcomes = process_ordered(worker, &messages).await;
    for (m, outcome) in received.iter().zip(&outcomes) {
        let result = match outcome {
            Some(o) if o.acknowledged() => consumer.ack(&m.receipt).await,
            Some(DeliveryOutcome::Held { delay, .. }) => {
                consumer.retry_after(&m.receipt, hold_seconds(*delay)).await
            }
            Some(_) => consumer.retry_after(&m.receipt, 5).await,
            None => consumer.retry_after(&m.receipt, 0).await,
        };
        if let Err(e) = result {
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
    run_loop(shutdown, || async {
        poll_once(&worker, consumer.as_ref(), 1).await.map(drop)
    })
    .await
}

/// The same for the ordered queue ([`poll_ordered_once`]).
pub async fn run_ordered_consumer(
    worker: Arc<Worker>,
    consumer: Arc<dyn QueueConsumer>,
    shutdown: impl Future<Output = ()>,
) {
    run_loop(shutdown, || async {
        poll_ordered_once(&worker, consumer.as_ref(), 1)
            .await
            .map(drop)
    })
    .await
}

async fn run_loop<F, P>(shutdown: impl Future<Output = ()>, poll_once: P)
where
    P: Fn() -> F,
    F: Future<Output = Result<(), QueueError>>,
{
    tokio::pin!(shutdown);
    loop {
        let poll = poll_once();
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_hold_fits_what_sqs_can_hold_after_the_receive() {
        use std::time::Duration;
        assert_eq!(super::hold_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(super::hold_seconds(Duration::from_secs(86_400)), 42_300);
    }
}
