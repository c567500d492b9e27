use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::error::QueueError;
use crate::ports::{DeadLetterQueue, DeliveryQueue, QueueConsumer, QueuedJob, ReceivedJob};

struct Message {
    id: u64,
    body: String,
    visible_at: Instant,
    receive_count: u32,
    receipt: Option<String>,
}

struct Inner {
    messages: VecDeque<Message>,
    next_id: u64,
}

/// An SQS-like queue in memory: delays, visibility timeouts, receive counts, and a redrive to a
/// dead-letter queue after `max_receive_count` receives.
pub struct MemoryQueue {
    inner: Mutex<Inner>,
    notify: Notify,
    visibility: Duration,
    redrive: Option<(Arc<MemoryQueue>, u32)>,
}

impl MemoryQueue {
    pub fn new(visibility: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner {
                messages: VecDeque::new(),
                next_id: 0,
            }),
            notify: Notify::new(),
            visibility,
            redrive: None,
        }
    }

    /// Like SQS's redrive policy: a message received `max_receive_count` times without an ack
    /// moves to `dlq`.
    pub fn with_dead_letter(mut self, dlq: Arc<MemoryQueue>, max_receive_count: u32) -> Self {
        self.redrive = Some((dlq, max_receive_count));
        self
    }

    pub fn push_raw(&self, body: String, delay: Duration) {
        let mut inner = self.inner.lock().unwrap();
        let id = inner.next_id;
        inner.next_id += 1;
        inner.messages.push_back(Message {
            id,
            body,
            visible_at: Instant::now() + delay,
            receive_count: 0,
            receipt: None,
        });
        drop(inner);
        self.notify.notify_waiters();
    }

    /// Messages in the queue, visible or not.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bodies of every message, in order (tests and the admin view).
    pub fn bodies(&self) -> Vec<String> {
        self.inner
            .lock()
            .unwrap()
            .messages
            .iter()
            .map(|m| m.body.clone())
            .collect()
    }

    fn try_receive(&self, max: u32) -> Vec<ReceivedJob> {
        let now = Instant::now();
        let mut out = Vec::new();
        let mut dead = Vec::new();
        let mut inner = self.inner.lock().unwrap();
        let mut i = 0;
        while i < inner.messages.len() && out.len() < max as usize {
            let m = &mut inner.messages[i];
            if m.visible_at > now {
                i += 1;
                continue;
            }
            if let Some((_, max_receives)) = &self.redrive {
                if m.receive_count >= *max_receives {
                    dead.push(inner.messages.remove(i).expect("index in range").body);
                    continue;
                }
            }
            m.receive_count += 1;
            m.visible_at = now + self.visibility;
            let receipt = format!("{}:{}", m.id, m.receive_count);
            m.receipt = Some(receipt.clone());
            out.push(ReceivedJob {
                body: m.body.clone(),
                receipt,
                receive_count: m.receive_count,
            });
            i += 1;
        }
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
        for q in jobs {
            let body = serde_json::to_string(&q.job)
                .map_err(|e| QueueError::Unavailable(e.to_string()))?;
            self.push_raw(
                body,
                Duration::from_secs(u64::from(q.delay_seconds.min(900))),
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
        inner
            .messages
            .retain(|m| m.receipt.as_deref() != Some(receipt));
        Ok(())
    }

    async fn retry_after(&self, receipt: &str, seconds: u32) -> Result<(), QueueError> {
        let mut inner = self.inner.lock().unwrap();
        if let Some(m) = inner
            .messages
            .iter_mut()
            .find(|m| m.receipt.as_deref() == Some(receipt))
        {
            m.visible_at = Instant::now() + Duration::from_secs(u64::from(seconds));
        }
        drop(inner);
        self.notify.notify_waiters();
        Ok(())
    }
}

#[async_trait]
impl DeadLetterQueue for MemoryQueue {
    async fn park(&self, raw_body: &str) -> Result<(), QueueError> {
        self.push_raw(raw_body.to_owned(), Duration::ZERO);
        Ok(())
    }
}
