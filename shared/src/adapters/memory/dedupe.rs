use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::bounded::BoundedMap;
use crate::error::StoreError;
use crate::ports::{AttemptLog, AttemptRef, Claim, DedupeStore, Term};

#[derive(Clone, PartialEq)]
enum Entry {
    Pending {
        lease: Term,
        /// The attempt record its holder will write (an attempt claim).
        record: Option<AttemptRef>,
        /// The records the holders it was taken over from named: any of them settles it too.
        earlier: Vec<AttemptRef>,
        expires_at: DateTime<Utc>,
    },
    Done {
        expires_at: DateTime<Utc>,
    },
}

impl Entry {
    fn live(&self, now: DateTime<Utc>) -> bool {
        match self {
            Entry::Pending { expires_at, .. } | Entry::Done { expires_at } => *expires_at > now,
        }
    }
}

/// Claims in memory, as the DynamoDB adapter keeps them: an attempt claim is settled by the
/// record it names in `attempts` (the same stores' attempt log; without one, only `complete`
/// settles a claim). Unbounded by default; `with_capacity` keeps the most recently written keys
/// only (the local stack's embedded store, where nothing else expires them).
#[derive(Default)]
pub struct MemoryDedupe {
    items: Mutex<BoundedMap<Entry>>,
    attempts: Option<Arc<dyn AttemptLog>>,
}

impl MemoryDedupe {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            items: Mutex::new(BoundedMap::with_capacity(capacity)),
            attempts: None,
        }
    }

    /// Attempt claims settled by the records they name in `attempts`.
    pub fn over(mut self, attempts: Arc<dyn AttemptLog>) -> Self {
        self.attempts = Some(attempts);
        self
    }

    async fn any_exists(&self, records: &[AttemptRef]) -> Result<bool, StoreError> {
        let Some(log) = &self.attempts else {
            return Ok(false);
        };
        for r in records {
            if log.get(&r.subscription_id, &r.attempt_id).await?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Is `entry` done: completed, or any record it names written?
    async fn settled(&self, entry: &Entry) -> Result<bool, StoreError> {
        match entry {
            Entry::Done { .. } => Ok(true),
            Entry::Pending {
                record, earlier, ..
            } => {
                let names: Vec<AttemptRef> = record.iter().chain(earlier).copied().collect();
                self.any_exists(&names).await
            }
        }
    }

    /// As the DynamoDB adapter: the lock is never held across the record read, so the entry
    /// judged is replaced only if it is still the one seen.
    async fn claim_naming(
        &self,
        key: &str,
        record: Option<AttemptRef>,
        lease: Term,
        expires_at: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let now = lease.from;
        let ours = Entry::Pending {
            lease,
            record,
            earlier: Vec::new(),
            expires_at,
        };
        for _ in 0..3 {
            let seen = {
                let mut items = self.items.lock().unwrap();
                match items.get(key) {
                    Some(e) if e.live(now) => e.clone(),
                    _ => {
                        items.insert(key, ours);
                        return Ok(Claim::Claimed);
                    }
                }
            };
            if self.settled(&seen).await? {
                return Ok(Claim::Done);
            }
            let Entry::Pending {
                lease: held,
                record: held_record,
                earlier,
                ..
            } = &seen
            else {
                unreachable!("a done entry is settled")
            };
            if held.runs_at(now) {
                return Ok(Claim::InProgress);
            }
            // The holder's lease ran out unsettled: take over the claim exactly as seen, keeping
            // every name it had (an overtaken holder still running may write its record yet).
            let names: Vec<AttemptRef> = held_record.iter().chain(earlier).copied().collect();
            let taken = {
                let mut items = self.items.lock().unwrap();
                let same = items.get(key) == Some(&seen);
                if same {
                    let Entry::Pending {
                        lease,
                        record,
                        expires_at,
                        ..
                    } = ours.clone()
                    else {
                        unreachable!("ours is pending")
                    };
                    let mut kept = names.clone();
                    kept.dedup();
                    let taking = Entry::Pending {
                        lease,
                        record,
                        earlier: kept,
                        expires_at,
                    };
                    items.insert(key, taking);
                }
                same
            };
            if taken {
                // As the DynamoDB adapter: a record written between the read above and the
                // take-over settles the claim (it still names it), so read them again.
                return Ok(if self.any_exists(&names).await? {
                    Claim::Done
                } else {
                    Claim::TakenOver
                });
            }
        }
        Ok(Claim::InProgress)
    }
}

#[async_trait]
impl DedupeStore for MemoryDedupe {
    async fn claim(
        &self,
        key: &str,
        lease: Term,
        expires_at: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        self.claim_naming(key, None, lease, expires_at).await
    }

    async fn claim_attempt(
        &self,
        key: &str,
        record: AttemptRef,
        lease: Term,
        expires_at: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        self.claim_naming(key, Some(record), lease, expires_at)
            .await
    }

    async fn complete(&self, key: &str, expires_at: DateTime<Utc>) -> Result<(), StoreError> {
        self.items
            .lock()
            .unwrap()
            .insert(key, Entry::Done { expires_at });
        Ok(())
    }

    async fn release(&self, key: &str, holder: Option<AttemptRef>) -> Result<(), StoreError> {
        let mut items = self.items.lock().unwrap();
        if matches!(items.get(key), Some(Entry::Pending { record, .. }) if *record == holder) {
            items.remove(key);
        }
        Ok(())
    }

    async fn exists(&self, key: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(self
            .items
            .lock()
            .unwrap()
            .get(key)
            .is_some_and(|e| e.live(now)))
    }
}
