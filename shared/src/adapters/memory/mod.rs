//! In-memory adapters: the local stack's embedded store and the fast test double. They implement
//! the same conditional-write semantics as the DynamoDB adapters (the conformance suite checks).

mod api_keys;
mod attempts;
mod bounded;
mod calls;
mod dedupe;
mod events;
mod expiring;
mod idempotency;
mod leases;
mod presence;
mod queue;
mod rate_limits;
mod stats;
mod subscriptions;

use std::sync::Arc;

pub use api_keys::MemoryApiKeys;
pub use attempts::MemoryAttemptLog;
pub use calls::MemoryCallStates;
pub use dedupe::MemoryDedupe;
pub use events::MemoryEventLog;
pub use idempotency::MemoryIdempotency;
pub use leases::MemoryLeases;
pub use presence::MemoryPresence;
pub use queue::MemoryQueue;
pub use rate_limits::MemoryRateLimiter;
pub use stats::MemoryStats;
pub use subscriptions::MemorySubscriptions;

use crate::ports::Stores;

/// Every store, in memory, unbounded: the test double. The event and attempt logs judge expiry
/// (`expires_at`, the retention) by the system clock, as the DynamoDB adapters do; tests on a
/// manual clock use [`memory_stores_at`].
pub fn memory_stores() -> Stores {
    memory_stores_at(Arc::new(crate::clock::SystemClock))
}

/// [`memory_stores`] whose event and attempt logs judge expiry by `clock`.
pub fn memory_stores_at(clock: Arc<dyn crate::ports::Clock>) -> Stores {
    Stores {
        subscriptions: Arc::new(MemorySubscriptions::default()),
        api_keys: Arc::new(MemoryApiKeys::default()),
        calls: Arc::new(MemoryCallStates::default()),
        dedupe: Arc::new(MemoryDedupe::default()),
        presence: Arc::new(MemoryPresence::default()),
        leases: Arc::new(MemoryLeases::default()),
        attempts: Arc::new(MemoryAttemptLog::default().with_clock(clock.clone())),
        events: Arc::new(MemoryEventLog::default().with_clock(clock)),
        rate_limits: Arc::new(MemoryRateLimiter::default()),
        idempotency: Arc::new(MemoryIdempotency::default()),
        stats: Arc::new(MemoryStats::default()),
    }
}

/// Every store, in memory, with the growing ones bounded: the local stack's embedded store, where
/// no TTL sweeper runs. Keeps the newest `capacity` events per org (replay) and attempts per
/// subscription (delivery log), the `capacity` most recently written calls, and `2 × capacity`
/// dedupe keys (an ingest claim and an attempt claim per event); older entries are forgotten.
pub fn bounded_memory_stores(capacity: usize) -> Stores {
    let capacity = capacity.max(1);
    Stores {
        calls: Arc::new(MemoryCallStates::with_capacity(capacity)),
        dedupe: Arc::new(MemoryDedupe::with_capacity(capacity.saturating_mul(2))),
        attempts: Arc::new(MemoryAttemptLog::with_capacity(capacity)),
        events: Arc::new(MemoryEventLog::with_capacity(capacity)),
        ..memory_stores()
    }
}

/// Opaque cursors: base64url of the last key returned.
pub(crate) fn encode_cursor(key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

pub(crate) fn decode_cursor(cursor: &str) -> Result<String, crate::error::StoreError> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(crate::error::StoreError::BadCursor)
}
