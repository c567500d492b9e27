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
    let attempts: Arc<dyn crate::ports::AttemptLog> =
        Arc::new(MemoryAttemptLog::default().with_clock(clock.clone()));
    Stores {
        subscriptions: Arc::new(MemorySubscriptions::default()),
        api_keys: Arc::new(MemoryApiKeys::default()),
        calls: Arc::new(MemoryCallStates::default()),
        // Attempt claims are settled by the records they name in this attempt log.
        dedupe: Arc::new(MemoryDedupe::default().over(attempts.clone())),
        presence: Arc::new(MemoryPresence::default()),
        leases: Arc::new(MemoryLeases::default()),
        attempts,
        events: Arc::new(MemoryEventLog::default().with_clock(clock)),
        rate_limits: Arc::new(MemoryRateLimiter::default()),
        idempotency: Arc::new(MemoryIdempotency::default()),
        stats: Arc::new(MemoryStats::default()),
    }
}

/// Every store, in memory, with the growing ones bounded: the local stack's embedded store, where
/// no TTL sweeper runs. Keeps the newest `capacity` events per org (replay) and attempts per
/// subscription (delivery log), the `capacity` most recently written calls, and `2 × capacity`
/// claims (attempt claims, ordered jobs' held records); older entries are forgotten (an attempt
/// claim whose record was forgotten is settled only while its lease runs).
pub fn bounded_memory_stores(capacity: usize) -> Stores {
    let capacity = capacity.max(1);
    let attempts: Arc<dyn crate::ports::AttemptLog> =
        Arc::new(MemoryAttemptLog::with_capacity(capacity));
    Stores {
        calls: Arc::new(MemoryCallStates::with_capacity(capacity)),
        dedupe: Arc::new(
            MemoryDedupe::with_capacity(capacity.saturating_mul(2)).over(attempts.clone()),
        ),
        attempts,
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

/// One page of a time-ordered log (keys: ULID ids), newest first, read as the DynamoDB adapters
/// read theirs: the keys in `range` (a window's, `None` without one) before the cursor — a cursor
/// outside `range` is `BadCursor`, as DynamoDB's start key would be refused —, at most
/// [`PAGE_SCAN_BUDGET`](crate::ports::PAGE_SCAN_BUDGET) of them read. `keep` gives the entry's
/// value when it is live and passes the filters. A page the budget stopped may be shorter than
/// asked, with a cursor at the last key read.
pub(crate) fn page_newest_first<V, T: Clone>(
    log: &std::collections::BTreeMap<String, V>,
    range: Option<(String, String)>,
    page: &crate::ports::PageRequest,
    keep: impl Fn(&V) -> Option<&T>,
) -> Result<crate::ports::Page<T>, crate::error::StoreError> {
    page_in_order(log, range, page, true, keep)
}

/// [`page_newest_first`], or oldest first (the keys after the cursor) when `!newest_first`.
pub(crate) fn page_in_order<V, T: Clone>(
    log: &std::collections::BTreeMap<String, V>,
    range: Option<(String, String)>,
    page: &crate::ports::PageRequest,
    newest_first: bool,
    keep: impl Fn(&V) -> Option<&T>,
) -> Result<crate::ports::Page<T>, crate::error::StoreError> {
    use crate::ports::{Page, PAGE_SCAN_BUDGET};
    use std::ops::Bound;
    let from = page.cursor.as_deref().map(decode_cursor).transpose()?;
    if let (Some(b), Some((lo, hi))) = (&from, &range) {
        if b < lo || b > hi {
            return Err(crate::error::StoreError::BadCursor);
        }
    }
    let (lo, hi) = match range {
        Some((lo, hi)) => (Bound::Included(lo), Bound::Included(hi)),
        None => (Bound::Unbounded, Bound::Unbounded),
    };
    // The cursor is the last key the previous page read: go on past it, in the page's order.
    let (lo, hi) = match from {
        Some(key) if newest_first => (lo, Bound::Excluded(key)),
        Some(key) => (Bound::Excluded(key), hi),
        None => (lo, hi),
    };
    let want = page.size() + 1;
    let mut kept: Vec<(&String, T)> = Vec::new();
    let range = log.range::<String, _>((lo, hi));
    let keys: Box<dyn Iterator<Item = (&String, &V)>> = if newest_first {
        Box::new(range.rev())
    } else {
        Box::new(range)
    };
    for (read, (key, value)) in keys.enumerate() {
        kept.extend(keep(value).map(|v| (key, v.clone())));
        if kept.len() >= want {
            break;
        }
        if read + 1 == PAGE_SCAN_BUDGET {
            return Ok(Page {
                items: kept.into_iter().map(|(_, v)| v).collect(),
                next_cursor: Some(encode_cursor(key)),
            });
        }
    }
    let page = Page::from_lookahead(kept, page.size(), |(key, _)| Ok(encode_cursor(key)))?;
    Ok(Page {
        items: page.items.into_iter().map(|(_, v)| v).collect(),
        next_cursor: page.next_cursor,
    })
}
