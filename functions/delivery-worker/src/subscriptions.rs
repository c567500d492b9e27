//! The worker's view of subscriptions: a warm-container cache, so a burst of jobs for one
//! subscription reads it once, and the health and disable updates, which go through the cache so
//! the next job sees them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use relay_shared::error::StoreError;
use relay_shared::ids::SubscriptionId;
use relay_shared::ports::{Clock, SubscriptionStore};
use relay_shared::subscription::{Health, Subscription};

/// Beyond this many cached subscriptions the cache starts over (bounds a warm container's memory).
const MAX_CACHED: usize = 10_000;

struct Cached {
    loaded: Instant,
    sub: Option<Subscription>,
}

/// A subscription as [`SubscriptionCache::get`] loaded it for a job.
pub(crate) struct Loaded {
    /// `None`: deleted.
    pub sub: Option<Subscription>,
    /// Served from the cache, so up to its age behind the store: a change another container made
    /// meanwhile (a failing streak started, a recovery) may be missing from it.
    pub cached: bool,
}

pub(crate) struct SubscriptionCache {
    store: Arc<dyn SubscriptionStore>,
    clock: Arc<dyn Clock>,
    /// How long a read is trusted; zero turns the cache off.
    ttl: Duration,
    entries: Mutex<HashMap<SubscriptionId, Cached>>,
}

impl SubscriptionCache {
    pub fn new(store: Arc<dyn SubscriptionStore>, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self {
            store,
            clock,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The subscription a job is about to be delivered to (`sub` `None`: deleted), from the
    /// cache when fresh enough — an enabled copy only. A disabled or deleted one is read again:
    /// the job would be skipped or dropped for good on it, and it may be up to the cache's age
    /// behind a re-enable (`PATCH enabled:true` then a resend or redrive at once). Cheap: fan-out
    /// queues no job for a disabled webhook, so only in-flight, resent, replayed and redriven
    /// jobs get that far.
    pub async fn get(&self, id: &SubscriptionId) -> Result<Loaded, StoreError> {
        if !self.ttl.is_zero() {
            if let Some(c) = self.entries.lock().unwrap().get(id) {
                if c.loaded.elapsed() < self.ttl && c.sub.as_ref().is_some_and(|s| s.enabled) {
                    return Ok(Loaded {
                        sub: c.sub.clone(),
                        cached: true,
                    });
                }
            }
        }
        let sub = self.store.get(id).await?;
        self.remember(*id, sub.clone());
        Ok(Loaded { sub, cached: false })
    }

    fn remember(&self, id: SubscriptionId, sub: Option<Subscription>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap();
        if entries.len() > MAX_CACHED {
            entries.clear();
        }
        entries.insert(
            id,
            Cached {
                loaded: Instant::now(),
                sub,
            },
        );
    }

    /// The subscription as stored now (the cache bypassed, then refreshed): what a transition
    /// (failing, recovered, disabled) is decided and reported on.
    pub async fn fresh(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        let sub = self.store.get(id).await?;
        self.remember(*id, sub.clone());
        Ok(sub)
    }

    /// Get → change → conditional update, retried on a lost race. `change` returns `false` when
    /// there is nothing to do. The subscription as it is afterwards (`None`: deleted).
    async fn update(
        &self,
        id: &SubscriptionId,
        change: impl Fn(&mut Subscription) -> bool,
    ) -> Result<Option<Subscription>, StoreError> {
        for _ in 0..8 {
            let Some(mut sub) = self.store.get(id).await? else {
                self.remember(*id, None);
                return Ok(None);
            };
            if !change(&mut sub) {
                self.remember(*id, Some(sub.clone()));
                return Ok(Some(sub));
            }
            sub.version += 1;
            sub.updated_at = self.clock.now();
            match self.store.update(&sub).await {
                Ok(()) => {
                    self.remember(*id, Some(sub.clone()));
                    return Ok(Some(sub));
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(StoreError::NotFound) => {
                    self.remember(*id, None);
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict(format!("{id} kept changing")))
    }

    /// Marks the subscription failing (logged, never fails the job).
    pub async fn set_failing(&self, id: &SubscriptionId) {
        let result = self
            .update(id, |s| {
                if s.health == Health::Failing {
                    return false;
                }
                s.health = Health::Failing;
                true
            })
            .await;
        match result {
            Ok(_) => {
                tracing::info!(subscription_id = %id, health = ?Health::Failing, "subscription health updated")
            }
            Err(e) => {
                tracing::error!(subscription_id = %id, health = ?Health::Failing, error = %e, "could not update subscription health")
            }
        }
    }

    /// A success: healthy again, and the failing streak over (`failing_since` cleared). Logged,
    /// never fails the job.
    pub async fn set_recovered(&self, id: &SubscriptionId) {
        let result = self
            .update(id, |s| {
                if s.health == Health::Healthy && s.failing_since.is_none() {
                    return false;
                }
                s.health = Health::Healthy;
                s.failing_since = None;
                true
            })
            .await;
        match result {
            Ok(_) => {
                tracing::info!(subscription_id = %id, health = ?Health::Healthy, "subscription health updated")
            }
            Err(e) => {
                tracing::error!(subscription_id = %id, health = ?Health::Healthy, error = %e, "could not update subscription health")
            }
        }
    }

    /// A failed attempt: the start of the failing streak, `at`, unless one is already under way
    /// (one conditional update per streak). When the streak started (`None`: unknown, the
    /// subscription could not be read or is gone); logged, never fails the job.
    ///
    /// A streak `sub` already shows is returned as is, without a read, even from a cached copy:
    /// a stored streak is never older than a cached one (it only ends, or starts again later), so
    /// a cached start that does not make auto-disable due cannot hide a stored one that does —
    /// and one that does is re-read before anything is disabled (`Worker::auto_disable`).
    pub async fn failing_since(
        &self,
        sub: &Subscription,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        if let Some(since) = sub.failing_since {
            return Some(since);
        }
        let result = self
            .update(&sub.id, |s| {
                if s.failing_since.is_some() {
                    return false;
                }
                s.failing_since = Some(at);
                true
            })
            .await;
        match result {
            Ok(s) => s.and_then(|s| s.failing_since),
            Err(e) => {
                tracing::error!(subscription_id = %sub.id, error = %e, "could not record when the subscription started failing");
                None
            }
        }
    }

    /// Disables the subscription with `reason` if the stored copy still satisfies `still` (checked
    /// inside the conditional update, so on the state it writes over). Whether it is disabled
    /// afterwards (already disabled counts; a store error is logged and counts as not).
    pub async fn disable(
        &self,
        id: &SubscriptionId,
        reason: &str,
        still: impl Fn(&Subscription) -> bool,
    ) -> bool {
        let result = self
            .update(id, |s| {
                if !s.enabled || !still(s) {
                    return false;
                }
                s.enabled = false;
                s.disabled_reason = Some(reason.to_owned());
                true
            })
            .await;
        match result {
            Ok(Some(s)) if !s.enabled => {
                tracing::warn!(subscription_id = %id, reason, "subscription disabled");
                true
            }
            Ok(_) => {
                tracing::info!(subscription_id = %id, reason, "subscription not disabled: its stored state no longer calls for it");
                false
            }
            Err(e) => {
                tracing::error!(subscription_id = %id, error = %e, "could not disable the subscription");
                false
            }
        }
    }
}
