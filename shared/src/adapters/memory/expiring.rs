//! Items with their `expires_at`, so the in-memory logs honour retention as the DynamoDB
//! adapters do: TTL deletes an expired item eventually (up to days later), and until then every
//! DynamoDB reader skips it (`aws::common::is_expired`); here every reader skips it at once.

use chrono::{DateTime, Utc};

/// An item and the instant it expires (its DynamoDB `expires_at`).
#[derive(Debug, Clone)]
pub(crate) struct Expiring<T> {
    item: T,
    expires_at: DateTime<Utc>,
}

impl<T> Expiring<T> {
    pub fn new(item: T, expires_at: DateTime<Utc>) -> Self {
        Self { item, expires_at }
    }

    /// The item, unless it has expired at `now` (from `expires_at` on, as DynamoDB's readers).
    pub fn live(&self, now: DateTime<Utc>) -> Option<&T> {
        (now < self.expires_at).then_some(&self.item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_from_expires_at_on() {
        let t = DateTime::UNIX_EPOCH + chrono::Duration::days(1);
        let e = Expiring::new("x", t);
        assert_eq!(e.live(t - chrono::Duration::milliseconds(1)), Some(&"x"));
        assert_eq!(e.live(t), None);
    }
}
