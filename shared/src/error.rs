/// Errors of the storage ports. Adapters map their backend's errors onto these.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A conditional write lost a race (version mismatch, item already exists).
    #[error("conflicting concurrent write: {0}")]
    Conflict(String),
    /// A per-owner limit would be exceeded.
    #[error("limit of {limit} reached")]
    LimitReached { limit: u32 },
    #[error("not found")]
    NotFound,
    /// The backend could not be reached or refused the call; the caller may retry.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A stored item could not be decoded.
    #[error("stored item is corrupt: {0}")]
    Corrupt(String),
    #[error("invalid pagination cursor")]
    BadCursor,
}

/// Errors of the queue ports.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// Some messages were still refused after retrying; the caller must not acknowledge.
    #[error("{failed} of {total} messages were not accepted: {reason}")]
    Partial {
        failed: usize,
        total: usize,
        reason: String,
    },
}
