//! In-memory adapters: the local stack's embedded store and the fast test double. They implement
//! the same conditional-write semantics as the DynamoDB adapters (the conformance suite checks).

mod api_keys;
mod attempts;
mod calls;
mod dedupe;
mod events;
mod idempotency;
mod leases;
mod presence;
mod queue;
mod rate_limits;
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
pub use subscriptions::MemorySubscriptions;

use crate::ports::Stores;

/// Every store, in memory.
pub fn memory_stores() -> Stores {
    Stores {
        subscriptions: Arc::new(MemorySubscriptions::default()),
        api_keys: Arc::new(MemoryApiKeys::default()),
        calls: Arc::new(MemoryCallStates::default()),
        dedupe: Arc::new(MemoryDedupe::default()),
        presence: Arc::new(MemoryPresence::default()),
        leases: Arc::new(MemoryLeases::default()),
        attempts: Arc::new(MemoryAttemptLog::default()),
        events: Arc::new(MemoryEventLog::default()),
        rate_limits: Arc::new(MemoryRateLimiter::default()),
        idempotency: Arc::new(MemoryIdempotency::default()),
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
