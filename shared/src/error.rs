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
    /// The item would exceed the store's item size limit ([`MAX_STORE_ITEM_BYTES`]); nothing was
    /// written, and writing it again cannot succeed.
    #[error("a {bytes}-byte item exceeds the store's {max}-byte item limit")]
    TooLarge { bytes: usize, max: usize },
}

/// DynamoDB's item size limit (400 KB, attribute names and values counted).
pub const MAX_STORE_ITEM_BYTES: usize = 400 * 1024;

impl StoreError {
    /// `TooLarge` for an item over [`MAX_STORE_ITEM_BYTES`].
    pub fn check_size(bytes: usize) -> Result<(), StoreError> {
        if bytes > MAX_STORE_ITEM_BYTES {
            return Err(StoreError::TooLarge {
                bytes,
                max: MAX_STORE_ITEM_BYTES,
            });
        }
        Ok(())
    }
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
    /// A message over [`MAX_QUEUE_MESSAGE_BYTES`]: nothing was sent, and sending it again cannot
    /// succeed (the caller parks it instead of retrying).
    #[error("a {bytes}-byte message exceeds the queue's {max}-byte limit")]
    TooLarge { bytes: usize, max: usize },
}

/// The largest message body a delivery queue takes, and the most one `SendMessageBatch` carries
/// in total: SQS's 256 KiB for each, less 1 KiB kept for message attributes and entry ids.
pub const MAX_QUEUE_MESSAGE_BYTES: usize = 255 * 1024;

impl QueueError {
    /// `TooLarge` for a message body over [`MAX_QUEUE_MESSAGE_BYTES`].
    pub fn check_size(bytes: usize) -> Result<(), QueueError> {
        if bytes > MAX_QUEUE_MESSAGE_BYTES {
            return Err(QueueError::TooLarge {
                bytes,
                max: MAX_QUEUE_MESSAGE_BYTES,
            });
        }
        Ok(())
    }
}
