use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use relay_shared::error::QueueError;
use relay_shared::ports::{DeadLetterSink, DeliveryQueue, QueuedJob};

/// A queue (delivery or dead-letter) over a real one that refuses the next `failures` sends or
/// parks with `QueueError::Unavailable`, then forwards; it counts every call.
pub struct FlakyQueue<Q: ?Sized> {
    pub inner: Arc<Q>,
    failures: AtomicU32,
    calls: AtomicUsize,
}

impl<Q: ?Sized> FlakyQueue<Q> {
    /// Refuses the first `failures` calls.
    pub fn new(inner: Arc<Q>, failures: u32) -> Self {
        Self {
            inner,
            failures: AtomicU32::new(failures),
            calls: AtomicUsize::new(0),
        }
    }

    /// Refuses every call from now on (`true`) or none (`false`).
    pub fn set_down(&self, down: bool) {
        let n = if down { u32::MAX } else { 0 };
        self.failures.store(n, Ordering::SeqCst);
    }

    /// Sends and parks so far, refused ones included.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn fail(&self) -> bool {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
                0 => None,
                u32::MAX => Some(u32::MAX),
                n => Some(n - 1),
            })
            .is_ok()
    }
}

#[async_trait]
impl<Q: DeliveryQueue + ?Sized> DeliveryQueue for FlakyQueue<Q> {
    async fn send(&self, jobs: &[QueuedJob]) -> Result<(), QueueError> {
        if self.fail() {
            return Err(QueueError::Unavailable("injected: queue down".into()));
        }
        self.inner.send(jobs).await
    }
}

#[async_trait]
impl<Q: DeadLetterSink + ?Sized> DeadLetterSink for FlakyQueue<Q> {
    async fn park(&self, raw_body: &str) -> Result<(), QueueError> {
        if self.fail() {
            return Err(QueueError::Unavailable("injected: dlq down".into()));
        }
        self.inner.park(raw_body).await
    }
}
