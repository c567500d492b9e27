//! What became of one queue message ([`DeliveryOutcome`]), and why a job was put back without an
//! attempt ([`DeferReason`]).

use std::time::Duration;

/// Why a job was put back on the queue without an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeferReason {
    /// Received before its `not_before` (a backoff longer than SQS's 15-minute delay).
    NotYetDue,
    /// The subscription's per-minute limit is used up: wait for the next window.
    RateLimited,
}

/// What became of one queue message. Every variant but `Held` and `Failed` means "acknowledge
/// it": its successor (re-sent job, DLQ entry) is already safely stored, or there is nothing left
/// to do.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx.
    Delivered { attempt: u32, status: u16 },
    /// The attempt failed; the job was re-sent for attempt `attempt + 1` after `delay`.
    Retrying { attempt: u32, delay: Duration },
    /// Re-sent without an attempt.
    Deferred {
        reason: DeferReason,
        delay: Duration,
    },
    /// Parked in the dead-letter queue (attempts exhausted, permanent failure, or unparseable).
    DeadLettered { reason: String },
    /// The subscription no longer exists.
    Dropped { reason: String },
    /// The subscription is disabled (an attempt record `skipped` was written).
    Skipped { reason: String },
    /// A per-call-ordered job received from the standard queue (sent there by an old or
    /// misconfigured producer): re-sent, unattempted, to the ordered queue, where it can be held
    /// back in its group (docs/ordering.md).
    Rerouted,
    /// A per-call-ordered job (docs/ordering.md) stays on the FIFO queue, hidden for `delay`,
    /// so that it holds back the rest of its message group: after failed attempt `attempt`
    /// (the next one comes after `delay`), or without an attempt (`None`: rate limit). Not
    /// acknowledged; the driver changes the message's visibility to `delay`.
    Held {
        attempt: Option<u32>,
        delay: Duration,
    },
    /// Something could not be stored (re-send, DLQ, store read): do NOT acknowledge, let the
    /// queue hand the message out again.
    Failed { error: String },
}

impl DeliveryOutcome {
    /// May the message be deleted from the queue?
    pub fn acknowledged(&self) -> bool {
        !matches!(
            self,
            DeliveryOutcome::Failed { .. } | DeliveryOutcome::Held { .. }
        )
    }

    /// Was an attempt made and settled (so its claim is done, not released)?
    pub fn settled_an_attempt(&self) -> bool {
        self.acknowledged()
            || matches!(
                self,
                DeliveryOutcome::Held {
                    attempt: Some(_),
                    ..
                }
            )
    }
}
