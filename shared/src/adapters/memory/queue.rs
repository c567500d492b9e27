use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::error::QueueError;
use crate::ports::{DeadLetterSink, DeliveryQueue, QueueConsumer, QueuedJob, ReceivedJob};
use crate::telemetry::{self, TraceCarrier};

struct Message {
    body: String,
    visible_at: Instant,
    receive_count: u32,
    receipt: Option<String>,
    /// The FIFO message group (FIFO queues only; `None` is one group of its own).
    group: Option<String>,
    /// The sender's trace context, as SQS keeps message attributes.
    trace: TraceCarrier,
}

impl Message {
    /// Handed out and neither acknowledged nor visible again: on a FIFO queue it holds back
    /// the rest of its group.
    fn in_flight(&self, now: Instant) -> bool {
        self.receipt.is_some() && self.visible_at > now
    }
}

/// How long a FIFO queue remembers a deduplication id (SQS: five minutes).
const DEDUPLICATION_WINDOW: Duration = Duration::from_secs(300);

/// Messages by id, plus two indexes so every operation is O(log n) whatever the backlog: the ids
/// visible now (FIFO) and a min-heap of (instant it becomes visible, id) for delayed and in-flight
/// ones. Index entries can go stale (message acked, visibility changed); each is checked against
/// the message when used.
#[derive(Default)]
struct Inner {
    messages: HashMap<u64, Message>,
    ready: VecDeque<u64>,
    hidden: BinaryHeap<Reverse<(Instant, u64)>>,
    next_id: u64,
    /// FIFO only: the deduplication ids sent in the last five minutes, and until when each counts.
    deduplication: HashMap<String, Instant>,
    /// FIFO: messages leave in send order per group; the indexes above are not used.
    fifo: bool,
}

impl Inner {
    fn hide_until(&mut self, id: u64, at: Instant) {
        if let Some(m) = self.messages.get_mut(&id) {
            m.visible_at = at;
            if !self.fifo {
                self.hidden.push(Reverse((at, id)));
            }
        }
    }

    /// Was `id` sent within the deduplication window (then this copy is accepted and dropped,
    /// as SQS does)? Remembers it otherwise.
    fn seen_recently(&mut self, id: String, now: Instant) -> bool {
        self.deduplication.retain(|_, until| *until > now);
        if self.deduplication.contains_key(&id) {
            return true;
        }
        self.deduplication.insert(id, now + DEDUPLICATION_WINDOW);
        false
    }

    /// Moves the messages whose hiding ended by `now` to the ready queue.
    fn reveal(&mut self, now: Instant) {
        while let Some(Reverse((at, id))) = self.hidden.peek().copied() {
            if at > now {
                break;
            }
            self.hidden.pop();
            if self.messages.get(&id).is_some_and(|m| m.visible_at == at) {
                self.ready.push_back(id);
            }
        }
    }

    /// The id of the message a receipt names, if that receipt is still the message's latest.
    fn id_of_receipt(&self, receipt: &str) -> Option<u64> {
        let id: u64 = receipt.split(':').next()?.parse().ok()?;
        let m = self.messages.get(&id)?;
        (m.receipt.as_deref() == Some(receipt)).then_some(id)
    }
}

/// An SQS-like queue in memory: delays, visibility timeouts, receive counts, and a redrive to a
/// dead-letter queue after `max_receive_count` receives. [`MemoryQueue::fifo`] makes a FIFO
/// queue: per-message delays are ignored (SQS refuses them on FIFO queues), jobs need a message
/// group (`DeliveryJob::ordering_key`), a deduplication id sent twice within five minutes is
/// queued once, and a group's messages leave in the order sent, none while an earlier one of the
/// group is in flight (received, neither acknowledged nor visible again): SQS FIFO semantics.
pub struct MemoryQueue {
    inner: Mutex<Inner>,
    notify: Notify,
    visibility: Duration,
    redrive: Option<(Arc<MemoryQueue>, u32)>,
}

impl MemoryQueue {
    pub fn new(visibility: Duration) -> Self {
        Self {
            inner: Mutex::default(),
            notify: Notify::new(),
            visibility,
            redrive: None,
        }
    }

    /// A FIFO queue (see the type's documentation).
    pub fn fifo(visibility: Duration) -> Self {
        let q = Self::new(visibility);
        q.inner.lock().unwrap().fifo = true;
        q
    }

    pub fn is_fifo(&self) -> bool {
        self.inner.lock().unwrap().fifo
    }

    /// Like SQS's redrive policy: a message received `max_receive_count` times without an ack
    /// moves to `dlq`.
    pub fn with_dead_letter(mut self, dlq: Arc<MemoryQueue>, max_receive_count: u32) -> Self {
        self.redrive = Some((dlq, max_receive_count));
        self
    }

    pub fn push_raw(&self, body: String, delay: Duration) {
        self.push(body, delay, None, TraceCarrier::default());
    }

    fn push(&self, body: String, delay: Duration, group: Option<String>, trace: TraceCarrier) {
        let mut inner = self.inner.lock().unwrap();
        let delay = if inner.fifo { Duration::ZERO } else { delay };
        let id = inner.next_id;
        inner.next_id += 1;
        let now = Instant::now();
        inner.messages.insert(
            id,
            Message {
                body,
                visible_at: now,
                receive_count: 0,
                receipt: None,
                group,
                trace,
            },
        );
        if delay.is_zero() {
            if !inner.fifo {
                inner.ready.push_back(id);
            }
            drop(inner);
            // One waiting consumer per message (a stored permit if none waits yet).
            self.notify.notify_one();
        } else {
            inner.hide_until(id, now + delay);
        }
    }

    /// Messages in the queue, visible or not.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bodies of every message, oldest first (tests and the admin view).
    pub fn bodies(&self) -> Vec<String> {
        let inner = self.inner.lock().unwrap();
        let mut ids: Vec<&u64> = inner.messages.keys().collect();
        ids.sort();
        ids.into_iter()
            .map(|id| inner.messages[id].body.clone())
            .collect()
    }

    /// Takes message `id` out for the visibility timeout: its receipt and the received job.
    fn hand_out(&self, inner: &mut Inner, id: u64, now: Instant) -> ReceivedJob {
        let m = inner.messages.get_mut(&id).expect("present");
        m.receive_count += 1;
        let receipt = format!("{id}:{}", m.receive_count);
        m.receipt = Some(receipt.clone());
        let job = ReceivedJob {
            body: m.body.clone(),
            receipt,
            receive_count: m.receive_count,
            trace: m.trace.clone(),
        };
        inner.hide_until(id, now + self.visibility);
        job
    }

    /// Is message `id` over the redrive limit (then it is taken out, its body returned)?
    fn redriven(&self, inner: &mut Inner, id: u64) -> Option<String> {
        let (_, max_receives) = self.redrive.as_ref()?;
        (inner.messages.get(&id)?.receive_count >= *max_receives)
            .then(|| inner.messages.remove(&id).expect("present").body)
    }

    /// The FIFO receive: in send order, skipping every group with a message in flight; several
    /// messages of one group may leave together, in order.
    fn take_fifo(
        &self,
        inner: &mut Inner,
        max: u32,
        now: Instant,
    ) -> (Vec<ReceivedJob>, Vec<String>) {
        let held: HashSet<Option<String>> = inner
            .messages
            .values()
            .filter(|m| m.in_flight(now))
            .map(|m| m.group.clone())
            .collect();
        let mut ids: Vec<u64> = inner.messages.keys().copied().collect();
        ids.sort_unstable();
        let (mut out, mut dead) = (Vec::new(), Vec::new());
        for id in ids {
            if out.len() >= max as usize {
                break;
            }
            if held.contains(&inner.messages[&id].group) {
                continue;
            }
            match self.redriven(inner, id) {
                Some(body) => dead.push(body),
                None => out.push(self.hand_out(inner, id, now)),
            }
        }
        (out, dead)
    }

    /// The standard receive: whatever is visible, oldest visible first.
    fn take_standard(
        &self,
        inner: &mut Inner,
        max: u32,
        now: Instant,
    ) -> (Vec<ReceivedJob>, Vec<String>) {
        let (mut out, mut dead) = (Vec::new(), Vec::new());
        inner.reveal(now);
        while out.len() < max as usize {
            let Some(id) = inner.ready.pop_front() else {
                break;
            };
            let Some(m) = inner.messages.get_mut(&id) else {
                continue; // acked meanwhile
            };
            if m.visible_at > now {
                // Hidden again meanwhile. Re-indexing keeps it reachable whatever the reason (a
                // duplicate heap entry is harmless: stale ones are skipped).
                let at = m.visible_at;
                inner.hidden.push(Reverse((at, id)));
                continue;
            }
            match self.redriven(inner, id) {
                Some(body) => dead.push(body),
                None => out.push(self.hand_out(inner, id, now)),
            }
        }
        (out, dead)
    }

    fn try_receive(&self, max: u32) -> Vec<ReceivedJob> {
        let mut inner = self.inner.lock().unwrap();
        // Read under the lock: a message pushed just before must not look like it is from the future.
        let now = Instant::now();
        let (out, dead) = if inner.fifo {
            self.take_fifo(&mut inner, max, now)
        } else {
            self.take_standard(&mut inner, max, now)
        };
        drop(inner);
        if let Some((dlq, _)) = &self.redrive {
            for body in dead {
                dlq.push_raw(body, Duration::ZERO);
            }
        }
        out
    }
}

#[async_trait]
impl DeliveryQueue for MemoryQueue {
    async fn send(&self, jobs: &[QueuedJob]) -> Result<(), QueueError> {
        let fifo = self.is_fifo();
        // As the SQS adapter: the sending span's context travels with each message.
        let trace = telemetry::carrier();
        let mut bodies = Vec::with_capacity(jobs.len());
        for q in jobs {
            if fifo && q.job.ordering_key.is_none() {
                // As SQS answers a FIFO send without `MessageGroupId`.
                return Err(QueueError::Unavailable(
                    "a FIFO queue needs each job's message group (ordering_key)".into(),
                ));
            }
            let body = serde_json::to_string(&q.job)
                .map_err(|e| QueueError::Unavailable(e.to_string()))?;
            // SQS's limit, so that a too-large job is refused here as it would be there.
            QueueError::check_size(body.len())?;
            bodies.push(body);
        }
        for (q, body) in jobs.iter().zip(bodies) {
            if fifo {
                let now = Instant::now();
                if self
                    .inner
                    .lock()
                    .unwrap()
                    .seen_recently(q.job.deduplication_id(), now)
                {
                    continue;
                }
            }
            self.push(
                body,
                Duration::from_secs(u64::from(q.delay_seconds.min(900))),
                q.job.ordering_key.clone(),
                trace.clone(),
            );
        }
        Ok(())
    }
}

#[async_trait]
impl QueueConsumer for MemoryQueue {
    async fn receive(&self, max: u32, wait_seconds: u32) -> Result<Vec<ReceivedJob>, QueueError> {
        let deadline = Instant::now() + Duration::from_secs(u64::from(wait_seconds));
        loop {
            let notified = self.notify.notified();
            let got = self.try_receive(max.clamp(1, 10));
            if !got.is_empty() || Instant::now() >= deadline {
                return Ok(got);
            }
            // Wake on a new message, or poll again shortly for delayed ones becoming visible.
            let _ = tokio::time::timeout(
                Duration::from_millis(50).min(deadline - Instant::now()),
                notified,
            )
            .await;
        }
    }

    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        let mut inner = self.inner.lock().unwrap();
        if let Some(id) = inner.id_of_receipt(receipt) {
            inner.messages.remove(&id);
        }
        Ok(())
    }

    async fn retry_after(&self, receipt: &str, seconds: u32) -> Result<(), QueueError> {
        let mut inner = self.inner.lock().unwrap();
        let Some(id) = inner.id_of_receipt(receipt) else {
            return Ok(());
        };
        inner.hide_until(id, Instant::now() + Duration::from_secs(u64::from(seconds)));
        drop(inner);
        if seconds == 0 {
            self.notify.notify_one();
        }
        Ok(())
    }

    async fn depth(&self) -> Result<u64, QueueError> {
        Ok(self.len() as u64)
    }
}

#[async_trait]
impl DeadLetterSink for MemoryQueue {
    async fn park(&self, raw_body: &str) -> Result<(), QueueError> {
        self.push_raw(raw_body.to_owned(), Duration::ZERO);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn receive_all(q: &MemoryQueue) -> Vec<ReceivedJob> {
        q.receive(10, 0).await.unwrap()
    }

    #[tokio::test]
    async fn repeated_visibility_changes_never_duplicate_a_message() {
        let q = MemoryQueue::new(Duration::from_secs(60));
        q.push_raw("a".into(), Duration::ZERO);
        let first = receive_all(&q).await;
        assert_eq!(first.len(), 1);
        q.retry_after(&first[0].receipt, 0).await.unwrap();
        q.retry_after(&first[0].receipt, 0).await.unwrap();
        let again = receive_all(&q).await;
        assert_eq!(
            again.len(),
            1,
            "one copy, however often it was made visible"
        );
        assert_eq!(again[0].receive_count, 2);
        assert!(receive_all(&q).await.is_empty());
    }

    #[tokio::test]
    async fn a_superseded_receipt_neither_acks_nor_hides() {
        let q = MemoryQueue::new(Duration::from_millis(20));
        q.push_raw("a".into(), Duration::ZERO);
        let old = receive_all(&q).await.remove(0);
        tokio::time::sleep(Duration::from_millis(60)).await;
        let new = receive_all(&q).await.remove(0);
        assert_eq!(new.receive_count, 2);
        q.ack(&old.receipt).await.unwrap();
        q.retry_after(&old.receipt, 3600).await.unwrap();
        assert_eq!(q.len(), 1, "the old receipt did not delete it");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(receive_all(&q).await.len(), 1, "nor hide it for an hour");
    }

    #[tokio::test]
    async fn ack_of_a_message_already_visible_again_removes_it() {
        let q = MemoryQueue::new(Duration::from_millis(20));
        q.push_raw("a".into(), Duration::ZERO);
        q.push_raw("b".into(), Duration::ZERO);
        let got = receive_all(&q).await;
        tokio::time::sleep(Duration::from_millis(60)).await;
        q.ack(&got[0].receipt).await.unwrap();
        let again = receive_all(&q).await;
        assert_eq!(
            again.iter().map(|j| j.body.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        assert_eq!(q.bodies(), ["b"]);
    }

    #[tokio::test]
    async fn delayed_messages_come_out_in_visibility_order_after_ready_ones() {
        let q = MemoryQueue::new(Duration::from_secs(60));
        q.push_raw("late".into(), Duration::from_millis(80));
        q.push_raw("soon".into(), Duration::from_millis(30));
        q.push_raw("now".into(), Duration::ZERO);
        assert_eq!(receive_all(&q).await[0].body, "now");
        tokio::time::sleep(Duration::from_millis(120)).await;
        let got = receive_all(&q).await;
        assert_eq!(
            got.iter().map(|j| j.body.as_str()).collect::<Vec<_>>(),
            ["soon", "late"]
        );
    }

    fn ordered_job(i: u64, group: &str) -> QueuedJob {
        let event = crate::events::OutboundEvent {
            id: crate::ids::EventId::new_at(i),
            event_type: crate::events::EventType::TelephonyCreated,
            org_id: "o".into(),
            created_at: chrono::Utc::now(),
            body: "{}".into(),
        };
        let mut job =
            crate::delivery::DeliveryJob::for_event(&event, crate::ids::SubscriptionId::new_at(1));
        job.ordering_key = (!group.is_empty()).then(|| group.to_owned());
        QueuedJob::now(job)
    }

    /// The redrive backstop on a FIFO queue: the group's head, received too often, moves to the
    /// dead-letter queue, and the group goes on.
    #[tokio::test]
    async fn a_fifo_head_over_the_receive_limit_is_redriven_and_frees_its_group() {
        let dlq = Arc::new(MemoryQueue::new(Duration::from_secs(60)));
        let q = MemoryQueue::fifo(Duration::from_secs(60)).with_dead_letter(dlq.clone(), 2);
        q.send(&[ordered_job(1, "g"), ordered_job(2, "g")])
            .await
            .unwrap();
        for _ in 0..2 {
            let got = q.receive(1, 0).await.unwrap();
            assert_eq!(got.len(), 1);
            q.retry_after(&got[0].receipt, 0).await.unwrap();
        }
        let next = receive_all(&q).await;
        assert_eq!(next.len(), 1, "the head went to the dead-letter queue");
        assert_eq!(
            next[0].receive_count, 1,
            "the second message, first receive"
        );
        assert_eq!(dlq.len(), 1);
    }

    /// `RoutedQueue`: ordered jobs to the FIFO queue, the rest to the standard one; without an
    /// ordered queue an ordered job is refused, never sent unordered.
    #[tokio::test]
    async fn routed_queue_splits_by_ordering_and_refuses_ordered_jobs_without_a_fifo_queue() {
        use crate::ports::RoutedQueue;
        let standard = Arc::new(MemoryQueue::new(Duration::from_secs(60)));
        let fifo = Arc::new(MemoryQueue::fifo(Duration::from_secs(60)));
        let routed = RoutedQueue {
            standard: standard.clone(),
            ordered: Some(fifo.clone()),
        };
        let jobs = [ordered_job(1, ""), ordered_job(2, "g"), ordered_job(3, "")];
        routed.send(&jobs).await.unwrap();
        assert_eq!((standard.len(), fifo.len()), (2, 1));
        let unordered_only = RoutedQueue {
            standard: standard.clone(),
            ordered: None,
        };
        let err = unordered_only.send(&jobs[1..2]).await.unwrap_err();
        assert!(matches!(err, QueueError::Unavailable(m) if m.contains("ORDERED_QUEUE_URL")));
        assert_eq!(standard.len(), 2, "nothing sent unordered");
    }

    /// Producers and consumers racing on the lock: every message is received and acked once.
    /// (A message pushed between a consumer reading the clock and taking the lock was once lost.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_producers_and_consumers_lose_nothing() {
        const PER_PRODUCER: usize = 5_000;
        let q = Arc::new(MemoryQueue::new(Duration::from_secs(60)));
        let producers: Vec<_> = (0..4)
            .map(|p| {
                let q = q.clone();
                tokio::spawn(async move {
                    for i in 0..PER_PRODUCER {
                        q.push_raw(format!("{p}-{i}"), Duration::ZERO);
                        if i % 64 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        let seen = Arc::new(Mutex::new(std::collections::HashSet::new()));
        let consumers: Vec<_> = (0..4)
            .map(|_| {
                let (q, seen) = (q.clone(), seen.clone());
                tokio::spawn(async move {
                    let deadline = Instant::now() + Duration::from_secs(30);
                    while seen.lock().unwrap().len() < 4 * PER_PRODUCER && Instant::now() < deadline
                    {
                        for job in q.receive(10, 0).await.unwrap() {
                            assert!(seen.lock().unwrap().insert(job.body), "received twice");
                            q.ack(&job.receipt).await.unwrap();
                        }
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for t in producers.into_iter().chain(consumers) {
            t.await.unwrap();
        }
        assert_eq!(seen.lock().unwrap().len(), 4 * PER_PRODUCER);
        assert!(q.is_empty());
    }
}
