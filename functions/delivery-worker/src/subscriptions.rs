//! The worker's view of subscriptions: each job's strongly consistent read (no warm-container
//! cache, so a change made before a job is enqueued applies to its first attempt), and the health
//! and disable updates, each decided on the stored state.

use std::sync::Arc;

use relay_shared::error::StoreError;
use relay_shared::ids::SubscriptionId;
use relay_shared::ports::{Clock, SubscriptionStore};
use relay_shared::subscription::{Health, Subscription};

pub(crate) struct Subscriptions {
    store: Arc<dyn SubscriptionStore>,
    clock: Arc<dyn Clock>,
}

impl Subscriptions {
    pub fn new(store: Arc<dyn SubscriptionStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// The subscription as stored now (`None`: deleted): one strongly consistent read (DynamoDB
    /// GetItem, ≈ 1 RRU). What a job is delivered to and every transition (failing, recovered,
    /// disabled) is decided on.
    pub async fn get(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        self.store.get(id).await
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
                return Ok(None);
            };
            if !change(&mut sub) {
                return Ok(Some(sub));
            }
            sub.version += 1;
            sub.updated_at = self.clock.now();
            match self.store.update(&sub).await {
                Ok(()) => return Ok(Some(sub)),
                Err(StoreError::Conflict(_)) => continue,
                Err(StoreError::NotFound) => return Ok(None),
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
    /// A streak `sub` (read for this job) already shows is returned as is, without another read;
    /// one that makes auto-disable due is re-read before anything is disabled
    /// (`Worker::auto_disable`).
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
