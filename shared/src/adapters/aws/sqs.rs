//! SQS: the delivery queue (send in batches, consume, negative-ack) and the dead-letter queue.

use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::error::{DisplayErrorContext, SdkError};
use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;

use crate::error::{QueueError, MAX_QUEUE_MESSAGE_BYTES};
use crate::ports::{
    DeadLetterSink, DeliveryQueue, QueueConsumer, QueuedJob, ReceivedJob, RoutedQueue,
};
use crate::retry::Backoff;
use crate::telemetry::{self, TraceCarrier};
use tracing::Instrument;

/// `SendMessageBatch`'s limit on the number of messages (its limit on bytes:
/// [`MAX_QUEUE_MESSAGE_BYTES`]).
const BATCH_SIZE: usize = 10;
/// Refused entries are retried this many times (after the first try) before `QueueError::Partial`.
const SEND_RETRIES: u32 = 3;
/// The pause before each retry of refused entries: 50, 100, 200 ms.
const SEND_BACKOFF: Backoff = Backoff::new(Duration::from_millis(50));
/// SQS's `DelaySeconds` maximum.
const MAX_DELAY_SECONDS: u32 = 900;
/// SQS's visibility timeout maximum (12 h).
const MAX_VISIBILITY_SECONDS: u32 = 43_200;
/// Receives after which SQS moves a message to the dead-letter queue (the redrive backstop).
pub const MAX_RECEIVE_COUNT: u32 = 5;
/// The same for the ordered (FIFO) queue, whose retries are receives of the same message
/// (held back by its visibility, docs/ordering.md). A message also counts a receive each time it
/// came in a batch behind its group's held head and went back unprocessed: the 10th message of a
/// group can be received 9 x the attempts of those before it before its own first attempt. So:
/// room for [`ORDERED_BATCH_SIZE`] x 50 attempts (the schedule's maximum) twice over, rate-limit
/// holds and failed receives (template.yaml says the same; the worker refuses a schedule that
/// could need more).
pub const ORDERED_MAX_RECEIVE_COUNT: u32 = 1000;
/// The ordered event source's batch size (template.yaml `OrderedDeliveries`), and the local
/// stack's ordered receive.
pub const ORDERED_BATCH_SIZE: u32 = 10;
/// SQS's visibility timeout maximum, counted from the receive (a hold set later must fit in what
/// is left of it).
pub const MAX_HOLD_SECONDS: u32 = MAX_VISIBILITY_SECONDS;

/// One SQS queue, used as the delivery queue (producer and consumer) or as the dead-letter queue.
/// A FIFO queue (its name, so its URL, ends in `.fifo`) is sent each job's message group
/// (`DeliveryJob::ordering_key`) and deduplication id, and no per-message delay (SQS refuses
/// one there; a held-back retry changes the message's visibility instead). Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    pub client: Client,
    pub queue_url: String,
}

fn unavailable<E, R>(op: &str, err: SdkError<E, R>) -> QueueError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    QueueError::Unavailable(format!("SQS {op}: {}", DisplayErrorContext(&err)))
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// Messages in the queue — visible, in flight and delayed — as SQS approximates them
    /// (operations views, tests).
    pub async fn approximate_depth(&self) -> Result<u64, QueueError> {
        let names = [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ];
        let res = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .set_attribute_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(|e| unavailable("GetQueueAttributes", e))?;
        let attrs = res.attributes();
        Ok(names
            .iter()
            .filter_map(|n| {
                attrs
                    .and_then(|a| a.get(n))
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .sum())
    }

    /// Is this a FIFO queue? (SQS requires a FIFO queue's name to end in `.fifo`.)
    pub fn is_fifo(&self) -> bool {
        self.queue_url.ends_with(".fifo")
    }

    /// Sends one chunk (one of [`batches`]), retrying refused entries; the number still refused and why.
    async fn send_chunk(&self, chunk: &[Outgoing]) -> Result<(usize, String), QueueError> {
        // Entry ids are the chunk indexes: unique within the call, and they map failures back.
        let mut pending: Vec<usize> = (0..chunk.len()).collect();
        let mut reason = String::new();
        for attempt in 0..=SEND_RETRIES {
            if attempt > 0 {
                SEND_BACKOFF.sleep(attempt - 1).await;
            }
            let mut entries = Vec::with_capacity(pending.len());
            for &i in &pending {
                let m = &chunk[i];
                let mut entry = SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&m.body);
                for (name, value) in m.trace.pairs() {
                    let value = MessageAttributeValue::builder()
                        .data_type("String")
                        .string_value(value)
                        .build()
                        .map_err(|e| {
                            QueueError::Unavailable(format!("building an SQS attribute: {e}"))
                        })?;
                    entry = entry.message_attributes(name, value);
                }
                let entry = match &m.fifo {
                    Some((group, deduplication)) => entry
                        .message_group_id(group)
                        .message_deduplication_id(deduplication),
                    None => entry
                        .delay_seconds(i32::try_from(m.delay.min(MAX_DELAY_SECONDS)).unwrap_or(0)),
                };
                let entry = entry.build().map_err(|e| {
                    QueueError::Unavailable(format!("building an SQS request: {e}"))
                })?;
                entries.push(entry);
            }
            let res = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| unavailable("SendMessageBatch", e))?;
            let failed = res.failed();
            if let Some(f) = failed.first() {
                reason = format!("{}: {}", f.code(), f.message().unwrap_or_default());
            }
            pending = failed
                .iter()
                .filter_map(|f| f.id().parse::<usize>().ok())
                .filter(|i| *i < chunk.len())
                .collect();
            if pending.is_empty() {
                return Ok((0, reason));
            }
        }
        Ok((pending.len(), reason))
    }
}

/// The delivery queue producers send to: the standard queue at `standard_url`, and the ordered
/// (FIFO) one at `ordered_url` when it is configured ([`RoutedQueue`]).
pub fn delivery_queue(
    client: &Client,
    standard_url: &str,
    ordered_url: Option<&str>,
) -> RoutedQueue {
    RoutedQueue {
        standard: std::sync::Arc::new(SqsQueue::new(client.clone(), standard_url)),
        ordered: ordered_url.map(|url| {
            std::sync::Arc::new(SqsQueue::new(client.clone(), url))
                as std::sync::Arc<dyn DeliveryQueue>
        }),
    }
}

/// One message to send: the job's JSON, its delay (standard queues), its message group and
/// deduplication id (FIFO queues), and the sender's trace context (message attributes
/// `traceparent`, `tracestate`, `baggage`; docs/observability.md).
struct Outgoing {
    body: String,
    delay: u32,
    fifo: Option<(String, String)>,
    trace: TraceCarrier,
}

impl Outgoing {
    /// What SQS counts against its size limits: the body and the attributes.
    fn size(&self) -> usize {
        self.body.len() + self.trace.encoded_len()
    }
}

/// Splits messages of these body sizes (bytes, in order) into `SendMessageBatch` requests of at
/// most [`BATCH_SIZE`] messages whose bodies add up to at most [`MAX_QUEUE_MESSAGE_BYTES`] (SQS
/// refuses a larger batch as a whole, so counting messages alone could fail every retry). A
/// message over the limit is an error before anything is sent. (Tests; sending uses
/// [`batches_by_group`].)
#[cfg(test)]
fn batches(sizes: &[usize]) -> Result<Vec<Range<usize>>, QueueError> {
    batches_by_group(sizes, &vec![None; sizes.len()])
}

/// [`batches`], for a FIFO queue: a request holds at most one message of each message group
/// (`groups[i]`, `None`: no group). Refused entries are re-sent after the accepted ones of their
/// request, and the next request goes only once every entry is in; so, one message per group
/// and request, a re-sent message can never land behind a later one of its own group.
pub fn batches_by_group(
    sizes: &[usize],
    groups: &[Option<&str>],
) -> Result<Vec<Range<usize>>, QueueError> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, &size) in sizes.iter().enumerate() {
        QueueError::check_size(size)?;
        let group_in_request = groups[i].is_some() && groups[start..i].contains(&groups[i]);
        if i - start == BATCH_SIZE || bytes + size > MAX_QUEUE_MESSAGE_BYTES || group_in_request {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    Ok(out)
}

#[async_trait]
impl DeliveryQueue for SqsQueue {
    async fn send(&self, jobs: &[QueuedJob]) -> Result<(), QueueError> {
        // The SQS hop's producer span, with export on only (no cost otherwise).
        let span = if telemetry::enabled() {
            tracing::info_span!(
                "sqs.send",
                "otel.kind" = "producer",
                "messaging.system" = "aws_sqs",
                "messaging.batch.message_count" = jobs.len()
            )
        } else {
            tracing::Span::none()
        };
        self.send_jobs(jobs).instrument(span).await
    }
}

impl SqsQueue {
    async fn send_jobs(&self, jobs: &[QueuedJob]) -> Result<(), QueueError> {
        let total = jobs.len();
        let mut messages = Vec::with_capacity(total);
        // The sending span's context (the ingest request, the worker's job, …: with export on,
        // the producer span `send` runs in), the same for every job of the call.
        let trace = telemetry::carrier();
        for q in jobs {
            let body = serde_json::to_string(&q.job)
                .map_err(|e| QueueError::Unavailable(format!("cannot encode job: {e}")))?;
            let fifo = if self.is_fifo() {
                let group = q.job.ordering_key.clone().ok_or_else(|| {
                    QueueError::Unavailable(
                        "a FIFO queue needs each job's message group (ordering_key)".into(),
                    )
                })?;
                Some((group, q.job.deduplication_id()))
            } else {
                None
            };
            // The attributes only where they fit: a body at the limit is still sent, untraced.
            let trace = if body.len() + trace.encoded_len() <= MAX_QUEUE_MESSAGE_BYTES {
                trace.clone()
            } else {
                TraceCarrier::default()
            };
            messages.push(Outgoing {
                body,
                delay: q.delay_seconds,
                fifo,
                trace,
            });
        }
        let sizes: Vec<usize> = messages.iter().map(Outgoing::size).collect();
        let groups: Vec<Option<&str>> = messages
            .iter()
            .map(|m| m.fifo.as_ref().map(|(group, _)| group.as_str()))
            .collect();
        let mut accepted = 0;
        for range in batches_by_group(&sizes, &groups)? {
            let chunk = &messages[range];
            let (refused, reason) = self.send_chunk(chunk).await?;
            accepted += chunk.len() - refused;
            if refused > 0 {
                // Stop here: the caller will not acknowledge its input, so everything is re-sent.
                return Err(QueueError::Partial {
                    failed: total - accepted,
                    total,
                    reason,
                });
            }
        }
        Ok(())
    }
}

#[async_trait]
impl QueueConsumer for SqsQueue {
    async fn receive(&self, max: u32, wait_seconds: u32) -> Result<Vec<ReceivedJob>, QueueError> {
        let res = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(wait_seconds.min(20) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .set_message_attribute_names(Some(
                telemetry::context::ATTRIBUTE_NAMES
                    .iter()
                    .map(|n| n.to_string())
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| unavailable("ReceiveMessage", e))?;
        Ok(res
            .messages()
            .iter()
            .filter_map(|m| {
                let receipt = m.receipt_handle()?.to_owned();
                let receive_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                let trace = TraceCarrier::from_pairs(
                    m.message_attributes()
                        .into_iter()
                        .flatten()
                        .filter_map(|(k, v)| Some((k.as_str(), v.string_value()?))),
                );
                Some(ReceivedJob {
                    body: m.body().unwrap_or_default().to_owned(),
                    receipt,
                    receive_count,
                    trace,
                })
            })
            .collect())
    }

    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| unavailable("DeleteMessage", e))?;
        Ok(())
    }

    async fn retry_after(&self, receipt: &str, seconds: u32) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds.min(MAX_VISIBILITY_SECONDS) as i32)
            .send()
            .await
            .map_err(|e| unavailable("ChangeMessageVisibility", e))?;
        Ok(())
    }

    async fn depth(&self) -> Result<u64, QueueError> {
        SqsQueue::approximate_depth(self).await
    }
}

#[async_trait]
impl DeadLetterSink for SqsQueue {
    async fn park(&self, raw_body: &str) -> Result<(), QueueError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(raw_body)
            .send()
            .await
            .map_err(|e| unavailable("SendMessage", e))?;
        Ok(())
    }
}

/// Creates `<prefix>-dlq` and `<prefix>` (redriving to it after [`MAX_RECEIVE_COUNT`] receives);
/// returns `(queue_url, dlq_url)`. Idempotent for the same names and attributes.
pub async fn create_queues(client: &Client, prefix: &str) -> Result<(String, String), QueueError> {
    create_pair(client, prefix, "").await
}

/// The FIFO pair: `<prefix>-dlq.fifo` and `<prefix>.fifo` (redriving to it after
/// [`MAX_RECEIVE_COUNT`] receives), as template.yaml's ordered delivery queue; `(queue_url,
/// dlq_url)`.
pub async fn create_fifo_queues(
    client: &Client,
    prefix: &str,
) -> Result<(String, String), QueueError> {
    create_pair(client, prefix, ".fifo").await
}

async fn create_pair(
    client: &Client,
    prefix: &str,
    suffix: &str,
) -> Result<(String, String), QueueError> {
    let max_receives = if suffix.is_empty() {
        MAX_RECEIVE_COUNT
    } else {
        ORDERED_MAX_RECEIVE_COUNT
    };
    let fifo = |req: aws_sdk_sqs::operation::create_queue::builders::CreateQueueFluentBuilder| {
        if suffix.is_empty() {
            req
        } else {
            req.attributes(QueueAttributeName::FifoQueue, "true")
        }
    };
    let dlq = fifo(client.create_queue())
        .queue_name(format!("{prefix}-dlq{suffix}"))
        .send()
        .await
        .map_err(|e| unavailable("CreateQueue", e))?;
    let dlq_url = dlq
        .queue_url()
        .ok_or_else(|| QueueError::Unavailable("CreateQueue returned no URL".into()))?
        .to_owned();
    let attrs = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| unavailable("GetQueueAttributes", e))?;
    let dlq_arn = attrs
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .ok_or_else(|| QueueError::Unavailable("GetQueueAttributes returned no QueueArn".into()))?;
    let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives.to_string() }).to_string();
    let queue = fifo(client.create_queue())
        .queue_name(format!("{prefix}{suffix}"))
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .map_err(|e| unavailable("CreateQueue", e))?;
    let queue_url = queue
        .queue_url()
        .ok_or_else(|| QueueError::Unavailable("CreateQueue returned no URL".into()))?
        .to_owned();
    Ok((queue_url, dlq_url))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FIFO request never holds two messages of one group: re-sending a refused entry of a
    /// request then cannot put it behind a later message of its group accepted in that request
    /// (review of per-call ordering, docs/ordering.md).
    #[test]
    fn fifo_batches_hold_one_message_per_group() {
        let sizes = [100; 6];
        let groups = [Some("a"), Some("b"), Some("a"), Some("c"), Some("b"), None];
        let ranges = batches_by_group(&sizes, &groups).unwrap();
        assert_eq!(ranges, [0..2, 2..6]);
        for r in &ranges {
            let mut seen: Vec<&str> = groups[r.clone()].iter().flatten().copied().collect();
            let n = seen.len();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), n, "{r:?}");
        }
        // Without groups (a standard queue): by count and bytes only.
        assert_eq!(batches_by_group(&sizes, &[None; 6]).unwrap(), vec![0..6]);
    }

    #[test]
    fn batches_by_count_and_bytes() {
        let ranges = |sizes: &[usize]| batches(sizes).unwrap();
        assert!(ranges(&[]).is_empty());
        // Small messages: ten to a batch.
        assert_eq!(ranges(&[100; 25]), [0..10, 10..20, 20..25]);
        // 60 KiB messages: four fit under the byte limit, a fifth would not.
        assert_eq!(ranges(&[60 * 1024; 10]), [0..4, 4..8, 8..10]);
        // A message at the limit goes alone; the bytes start again after it.
        let max = MAX_QUEUE_MESSAGE_BYTES;
        assert_eq!(ranges(&[10, max, 10, 10]), [0..1, 1..2, 2..4]);
        assert_eq!(ranges(&[max - 10, 10, 1]), [0..2, 2..3]);
        assert_eq!(
            batches(&[10, max + 1]).unwrap_err(),
            QueueError::TooLarge {
                bytes: max + 1,
                max
            }
        );
    }
}
