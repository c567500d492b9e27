//! Typed, prefixed, sortable identifiers (`evt_…`, `wh_…`, `att_…`).
//!
//! The body after the prefix is a ULID: 48 bits of milliseconds then 80 bits of entropy, so ids sort
//! by creation time as strings and as bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use ulid::Ulid;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid {kind} id `{value}`: expected `{prefix}` followed by a 26-character ULID")]
pub struct IdParseError {
    pub kind: &'static str,
    pub prefix: &'static str,
    pub value: String,
}

macro_rules! prefixed_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Ulid);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new random id stamped with `millis` (milliseconds since the Unix epoch).
            pub fn new_at(millis: u64) -> Self {
                Self(Ulid::from_parts(millis, rand::random::<u128>()))
            }

            /// A deterministic id: same `millis` and `seed`, same id. Used where a retry must not
            /// mint a new identity (e.g. an ingested Webex event redelivered after a 503).
            pub fn derived(millis: u64, seed: &[u8]) -> Self {
                let digest = Sha256::digest(seed);
                let mut entropy = [0u8; 16];
                entropy.copy_from_slice(&digest[..16]);
                Self(Ulid::from_parts(millis, u128::from_be_bytes(entropy)))
            }

            pub fn timestamp_ms(&self) -> u64 {
                self.0.timestamp_ms()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let err = || IdParseError { kind: $kind, prefix: $prefix, value: s.chars().take(64).collect() };
                let body = s.strip_prefix($prefix).ok_or_else(err)?;
                Ulid::from_string(body).map(Self).map_err(|_| err())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

prefixed_id!(
    /// One outbound event (a telephony webhook, a presence change set, a test event).
    EventId, "evt_", "event"
);
prefixed_id!(
    /// One subscription (a customer's webhook endpoint).
    SubscriptionId, "wh_", "webhook"
);
prefixed_id!(
    /// One delivery attempt in the attempt log.
    AttemptId, "att_", "attempt"
);

/// The Standard Webhooks `webhook-id`: stable for one event delivered to one subscription, across
/// every retry, so receivers can deduplicate.
pub fn delivery_id(event: &EventId, subscription: &SubscriptionId) -> String {
    format!("msg_{}_{}", event.0, subscription.0)
}

/// The smallest and largest `<prefix><ULID>` id whose timestamp falls in `[since, until)`
/// (millisecond resolution): the key range of a time window over time-ordered ids (events,
/// attempts), as both the DynamoDB and the memory adapters read it.
pub fn ulid_range(
    prefix: &str,
    since: chrono::DateTime<chrono::Utc>,
    until: chrono::DateTime<chrono::Utc>,
) -> (String, String) {
    let lo_ms = u64::try_from(since.timestamp_millis()).unwrap_or(0);
    // The last millisecond that still has instants before `until`.
    let hi_ms = (until - chrono::Duration::nanoseconds(1)).timestamp_millis();
    let hi_ms = u64::try_from(hi_ms).unwrap_or(0).min((1 << 48) - 1);
    let lo = Ulid::from_parts(lo_ms, 0);
    let hi = Ulid::from_parts(hi_ms, u128::MAX);
    (format!("{prefix}{lo}"), format!("{prefix}{hi}"))
}

/// The latest instant an id can stand for (a ULID's timestamp has 48 bits of milliseconds).
pub fn last_id_instant() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis((1 << 48) - 1)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_sorts_by_time() {
        let a = EventId::new_at(1_000);
        let b = EventId::new_at(2_000);
        assert!(a.to_string() < b.to_string());
        assert_eq!(a.to_string().parse::<EventId>().unwrap(), a);
        assert!(a.to_string().starts_with("evt_"));
        assert_eq!(a.to_string().len(), 4 + 26);
    }

    #[test]
    fn derived_is_deterministic() {
        assert_eq!(EventId::derived(5, b"k"), EventId::derived(5, b"k"));
        assert_ne!(EventId::derived(5, b"k"), EventId::derived(5, b"j"));
    }

    #[test]
    fn rejects_wrong_prefix_and_garbage() {
        let e = "wh_01ARZ3NDEKTSV4RRFFQ69G5FAV"
            .parse::<EventId>()
            .unwrap_err();
        assert_eq!(e.kind, "event");
        assert!("evt_nope".parse::<EventId>().is_err());
        assert!("".parse::<SubscriptionId>().is_err());
        let json = serde_json::to_string(&SubscriptionId::new_at(9)).unwrap();
        assert_eq!(
            serde_json::from_str::<SubscriptionId>(&json)
                .unwrap()
                .timestamp_ms(),
            9
        );
    }
}
