//! The org's subscriptions as the fan-out reads them, cached per warm container for at most
//! `SUBSCRIPTIONS_CACHE_SECONDS` (default 5; 0 = every event queries the store).
//!
//! What the cache delays: everything the fan-out decides from the list — *which* subscriptions
//! get a job (enabled, event types, payload filter) and *which queue* a job goes to (`ordering`:
//! standard or the per-call ordered queue). For up to the bound after a change, a container may
//! (a) miss a webhook created, re-enabled or widened (types, filter); (b) still give jobs to a
//! webhook narrowed (types, filter): those jobs are **delivered** (the worker checks only that the
//! subscription still exists and is enabled, not its types or filter); (c) still send a webhook
//! switched to `per-call` to the standard queue, unordered (or one switched back to the ordered
//! queue). Disable, delete, url, secret and rotation are enforced by the delivery worker, which
//! reads each subscription fresh for every job, so a job queued for a webhook disabled or deleted
//! meanwhile is skipped there.
//!
//! The bound is on the entry's age by the ingest's clock, stamped when the query started; the
//! query itself is on `gsi2`, an eventually consistent index, so a change reaches the fan-out
//! within the bound **plus** the index's propagation delay (usually well under a second on AWS,
//! with no guaranteed maximum), even with the cache off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use relay_shared::subscription::Subscription;

/// At most this many orgs are cached (a deployment serves one or a few; the bound keeps a
/// container's memory flat whatever arrives). When full, the expired entries go first, then the
/// oldest one.
pub const MAX_CACHED_ORGS: usize = 256;

/// One org's subscriptions and when the query that read them started.
struct Entry {
    subs: Arc<Vec<Subscription>>,
    read_at: DateTime<Utc>,
}

/// The per-container cache of [`SubscriptionStore::list_by_org`](relay_shared::ports::SubscriptionStore::list_by_org) answers.
pub struct SubscriptionsCache {
    ttl: chrono::Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl SubscriptionsCache {
    /// A cache whose entries are used while younger than `ttl` (zero: never cached).
    pub fn new(ttl: chrono::Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Is caching on?
    pub fn enabled(&self) -> bool {
        self.ttl > chrono::Duration::zero()
    }

    /// The org's cached subscriptions, if read less than the bound before `now`. An entry
    /// stamped after `now` (the clock went back) is not trusted: its real age is unknown.
    pub fn get(&self, org_id: &str, now: DateTime<Utc>) -> Option<Arc<Vec<Subscription>>> {
        if !self.enabled() {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(org_id)?;
        let age = now - entry.read_at;
        (age >= chrono::Duration::zero() && age < self.ttl).then(|| entry.subs.clone())
    }

    /// Keeps `subs`, read by a query that started at `read_at`.
    pub fn put(&self, org_id: &str, subs: Arc<Vec<Subscription>>, read_at: DateTime<Utc>) {
        if !self.enabled() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_CACHED_ORGS && !entries.contains_key(org_id) {
            let ttl = self.ttl;
            entries.retain(|_, e| read_at - e.read_at < ttl);
            if entries.len() >= MAX_CACHED_ORGS {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, e)| e.read_at)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    entries.remove(&k);
                }
            }
        }
        // A slower concurrent miss must not replace a fresher read with an older one.
        if entries.get(org_id).is_some_and(|e| e.read_at > read_at) {
            return;
        }
        entries.insert(org_id.to_owned(), Entry { subs, read_at });
    }

    /// How many orgs are cached (tests).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn subs(n: usize) -> Arc<Vec<Subscription>> {
        let types = [relay_shared::events::EventType::TelephonyCreated];
        Arc::new(
            (0..n)
                .map(|_| testkit::fixtures::subscription("o", &types))
                .collect(),
        )
    }

    #[test]
    fn an_entry_serves_within_its_bound_only() {
        let cache = SubscriptionsCache::new(chrono::Duration::seconds(5));
        assert!(cache.get("o", at(0)).is_none());
        cache.put("o", subs(2), at(0));
        assert_eq!(cache.get("o", at(0)).unwrap().len(), 2);
        assert_eq!(cache.get("o", at(4)).unwrap().len(), 2);
        assert!(cache.get("o", at(5)).is_none(), "5 s old: read again");
        assert!(cache.get("o", at(-1)).is_none(), "the clock went back");
        assert!(cache.get("other", at(1)).is_none());
        // An older read finishing late keeps the fresher entry.
        cache.put("o", subs(3), at(10));
        cache.put("o", subs(1), at(9));
        assert_eq!(cache.get("o", at(11)).unwrap().len(), 3);
    }

    #[test]
    fn zero_turns_it_off() {
        let cache = SubscriptionsCache::new(chrono::Duration::zero());
        cache.put("o", subs(1), at(0));
        assert!(cache.get("o", at(0)).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn bounded_size() {
        let cache = SubscriptionsCache::new(chrono::Duration::seconds(5));
        for i in 0..MAX_CACHED_ORGS as i64 {
            cache.put(&format!("org-{i}"), subs(0), at(i / 100));
        }
        assert_eq!(cache.len(), MAX_CACHED_ORGS);
        // Still fresh: the oldest goes.
        cache.put("new", subs(0), at(3));
        assert_eq!(cache.len(), MAX_CACHED_ORGS);
        assert!(cache.get("new", at(3)).is_some());
        // Later, the expired ones go at once.
        cache.put("later", subs(0), at(100));
        assert_eq!(cache.len(), 1);
    }
}
