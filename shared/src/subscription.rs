//! A subscription: a user's webhook endpoint, bound to their org, filtered by event type.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::events::EventType;
use crate::filters::Filter;
use crate::ids::SubscriptionId;
use crate::secrets_at_rest::{SecretContext, StoredSecret};

/// Delivery health, set by the worker: `failing` after a job exhausts its attempts (or fails
/// permanently), cleared by the next success. The change to `failing` and back is what the
/// operational events `webhook:failing` and `webhook:recovered` report, once each per episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Healthy,
    Failing,
}

/// Whether a webhook's deliveries keep their call's order (docs/ordering.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ordering {
    /// Deliveries are independent (the standard queue): the most throughput.
    #[default]
    None,
    /// Deliveries of one `callId` never overtake each other, retries included (the FIFO queue,
    /// one message group per webhook and call).
    PerCall,
}

impl Ordering {
    pub fn is_none(&self) -> bool {
        *self == Ordering::None
    }
}

/// A secret still accepted until `expires_at` after a rotation.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetiringSecret {
    pub secret: StoredSecret,
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub id: SubscriptionId,
    pub owner_id: String,
    pub org_id: String,
    pub name: String,
    pub url: String,
    pub event_types: Vec<EventType>,
    /// Sealed by the API (`secrets_at_rest`); a plain string in items written before that.
    pub secret: StoredSecret,
    #[serde(default)]
    pub retiring_secrets: Vec<RetiringSecret>,
    pub enabled: bool,
    pub health: Health,
    /// Why the relay disabled it (e.g. the receiver answered `410 Gone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Since when every attempt has failed: set by the worker at the first failed attempt after a
    /// success (one conditional update per streak), cleared by the next success or a re-enable.
    /// The auto-disable policy (`AUTO_DISABLE_AFTER_HOURS`, docs/operational-events.md) measures
    /// from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
    pub rate_limit_per_minute: u32,
    /// The payload filter (`filters`): only events passing it are queued for this subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// Per-call ordering (opt-in; `none` when absent).
    #[serde(default, skip_serializing_if = "Ordering::is_none")]
    pub ordering: Ordering,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version; every store write checks and bumps it.
    pub version: u64,
}

impl Subscription {
    /// The rate limit a subscription gets when its creator does not choose one.
    pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 100;

    /// A new subscription: enabled, healthy, unnamed, at version 1, its id stamped `now` (ids sort
    /// by creation time). Set the other fields with struct-update syntax.
    pub fn new(
        owner_id: impl Into<String>,
        org_id: impl Into<String>,
        url: impl Into<String>,
        event_types: Vec<EventType>,
        secret: impl Into<StoredSecret>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: SubscriptionId::new_at(now.timestamp_millis().max(0) as u64),
            owner_id: owner_id.into(),
            org_id: org_id.into(),
            name: String::new(),
            url: url.into(),
            event_types,
            secret: secret.into(),
            retiring_secrets: Vec::new(),
            enabled: true,
            health: Health::Healthy,
            disabled_reason: None,
            failing_since: None,
            rate_limit_per_minute: Self::DEFAULT_RATE_LIMIT_PER_MINUTE,
            filter: None,
            ordering: Ordering::None,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// Does an event of this type go to this subscription?
    pub fn wants(&self, event_type: EventType) -> bool {
        self.enabled
            && (event_type == EventType::WebhookTest || self.event_types.contains(&event_type))
    }

    /// The stored secrets that sign a delivery at `now`: the current one first, then the one still
    /// in its rotation grace period. The worker opens them (`secrets_at_rest::SecretOpener`).
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&StoredSecret> {
        std::iter::once(&self.secret)
            .chain(
                self.retiring_secrets
                    .iter()
                    .filter(|r| r.expires_at > now)
                    .map(|r| &r.secret),
            )
            .collect()
    }

    /// What this subscription's secrets are sealed to.
    pub fn secret_context(&self) -> SecretContext {
        SecretContext::new(self.org_id.clone(), self.id)
    }

    /// Whether any stored secret is still in the legacy plain form (`relayctl seal-secrets`).
    pub fn has_plain_secret(&self) -> bool {
        !self.secret.is_sealed() || self.retiring_secrets.iter().any(|r| !r.secret.is_sealed())
    }

    /// Replaces the secret, keeping the old one valid for `grace` (0: retired at once). At most one
    /// secret is retiring: a rotation ends the grace of any earlier one, so repeated rotations
    /// never pile up secrets that still sign deliveries, and a grace-0 rotation (the answer to a
    /// leaked secret) leaves only the new secret.
    pub fn rotate_secret(
        &mut self,
        new_secret: StoredSecret,
        now: DateTime<Utc>,
        grace: chrono::Duration,
    ) {
        self.retiring_secrets.clear();
        let old = std::mem::replace(&mut self.secret, new_secret);
        if grace > chrono::Duration::zero() {
            self.retiring_secrets.push(RetiringSecret {
                secret: old,
                expires_at: now + grace,
            });
        }
        self.updated_at = now;
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("owner_id", &self.owner_id)
            .field("org_id", &self.org_id)
            .field("name", &self.name)
            .field("url", &self.url)
            .field("event_types", &self.event_types)
            .field("secret", &"<redacted>")
            .field("enabled", &self.enabled)
            .field("health", &self.health)
            .field("failing_since", &self.failing_since)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field("filter", &self.filter)
            .field("ordering", &self.ordering)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(sub: &Subscription, now: DateTime<Utc>) -> Vec<String> {
        sub.signing_secrets(now)
            .into_iter()
            .map(|s| match s {
                StoredSecret::Plain(p) => p.clone(),
                StoredSecret::Sealed(_) => panic!("plain in this test"),
            })
            .collect()
    }

    #[test]
    fn at_most_one_retiring_secret_and_grace_zero_retires_at_once() {
        let now: DateTime<Utc> = "2026-12-01T12:00:00Z".parse().unwrap();
        let day = chrono::Duration::days(1);
        let mut sub = Subscription::new("u", "o", "https://x", vec![], "s1", now);
        sub.rotate_secret("s2".into(), now, day);
        sub.rotate_secret("s3".into(), now, day);
        assert_eq!(secrets(&sub, now), ["s3", "s2"], "s1's grace ended");
        assert_eq!(sub.retiring_secrets.len(), 1);
        sub.rotate_secret("s4".into(), now, chrono::Duration::zero());
        assert_eq!(
            secrets(&sub, now),
            ["s4"],
            "grace 0 retires every old secret"
        );
        assert!(sub.retiring_secrets.is_empty());
    }
}
