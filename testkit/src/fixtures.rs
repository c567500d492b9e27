//! The fixtures every suite builds on.

use chrono::{DateTime, Utc};
use relay_shared::events::EventType;
use relay_shared::subscription::Subscription;

/// The owner of the fixtures' subscriptions.
pub const OWNER: &str = "user-1";
/// The receiver the fixtures' subscriptions name (nothing listens there; tests with a real
/// receiver set `url`).
pub const RECEIVER: &str = "https://receiver.example/hook";
/// The signing secret of the fixtures' subscriptions (the Standard Webhooks spec's example).
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A subscription of `org` to `types`, created now: owner [`OWNER`], url [`RECEIVER`], secret
/// [`SECRET`]. Set other fields with struct-update syntax.
pub fn subscription(org: &str, types: &[EventType]) -> Subscription {
    subscription_at(org, types, Utc::now())
}

/// [`subscription`] created at `at` (its id is stamped `at`, so ids sort by creation).
pub fn subscription_at(org: &str, types: &[EventType], at: DateTime<Utc>) -> Subscription {
    Subscription::new(OWNER, org, RECEIVER, types.to_vec(), SECRET, at)
}
