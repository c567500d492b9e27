//! Claims: `DEDUPE#<key>`/`DEDUPE` with `state` (`pending`/`done`), `lease_until` (Unix ms),
//! `expires_at` and, for an attempt claim, `rec` (`<webhook id>/<attempt id>`: the attempt record
//! `ATTEMPTS#<webhook id>`/`<attempt id>` that settles it). A claim is one conditional put that
//! succeeds when there is no live item; when it is refused, the item returned with the failure
//! (or a consistent read) is judged: done, or its record exists (one consistent GetItem) →
//! `Done`; lease running → `InProgress`; lease over → taken over by a put conditional on the
//! very claim seen (its lease and record), so of two copies taking over, one wins.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::attempts;
use super::common::{
    expiring_item, get_n, get_s, is_expired, key, millis, n, s, secs, Condition, Conditional, Item,
};
use super::DynamoTable;
use crate::error::StoreError;
use crate::ports::{AttemptRef, Claim, DedupeStore, Term};

const SK: &str = "DEDUPE";
const PENDING: &str = "pending";
const DONE: &str = "done";
/// The attempt record an attempt claim names.
const REC: &str = "rec";

fn pk(key: &str) -> String {
    format!("DEDUPE#{key}")
}

fn rec_value(record: &AttemptRef) -> String {
    format!("{}/{}", record.subscription_id, record.attempt_id)
}

/// The record a stored claim names (`None`: none, or not one this adapter wrote).
fn named_record(item: &Item) -> Option<AttemptRef> {
    let (sub, att) = get_s(item, REC).ok()?.split_once('/')?;
    Some(AttemptRef {
        subscription_id: sub.parse().ok()?,
        attempt_id: att.parse().ok()?,
    })
}

impl DynamoTable {
    /// Does `record` exist (live)? One strongly consistent GetItem.
    async fn record_exists(
        &self,
        record: &AttemptRef,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (pk, sk) = attempts::key_of(&record.subscription_id, &record.attempt_id);
        Ok(self.get_live(pk, &sk, now).await?.is_some())
    }

    /// Is the stored claim `item` done at `now`: marked so, or its named record written?
    async fn settled(&self, item: &Item, now: DateTime<Utc>) -> Result<bool, StoreError> {
        if get_s(item, "state").is_ok_and(|st| st == DONE) {
            return Ok(true);
        }
        match named_record(item) {
            Some(record) => self.record_exists(&record, now).await,
            None => Ok(false),
        }
    }

    /// Claims `key_` for `lease`, naming `record` (if any): see the module comment.
    async fn claim_naming(
        &self,
        key_: &str,
        record: Option<&AttemptRef>,
        lease: Term,
        expires_at: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let now = lease.from;
        let mut item = expiring_item(pk(key_), SK, expires_at);
        item.insert("state".into(), s(PENDING));
        item.insert("lease_until".into(), n(millis(lease.until)));
        if let Some(r) = record {
            item.insert(REC.into(), s(rec_value(r)));
        }
        // First: no live item (never claimed, or its memory expired, TTL not run yet).
        let fresh = Condition::new("attribute_not_exists(pk) OR expires_at <= :now_s")
            .value(":now_s", n(secs(now)))
            .returning_old();
        let mut seen = match self.put_if(item.clone(), fresh).await? {
            Conditional::Written => return Ok(Claim::Claimed),
            Conditional::Refused(old) => old,
        };
        // A refused take-over means another copy changed the claim in between: judge again.
        for _ in 0..3 {
            let old = match seen.take() {
                Some(old) => old,
                // The server did not return the item: read it.
                None => match self.get_item(pk(key_), SK).await? {
                    Some(old) => old,
                    // Released in between: claim afresh.
                    None => {
                        let absent = Condition::new("attribute_not_exists(pk)").returning_old();
                        match self.put_if(item.clone(), absent).await? {
                            Conditional::Written => return Ok(Claim::Claimed),
                            Conditional::Refused(old) => {
                                seen = old;
                                continue;
                            }
                        }
                    }
                },
            };
            if is_expired(&old, now) {
                let unchanged = Condition::new("expires_at <= :now_s")
                    .value(":now_s", n(secs(now)))
                    .returning_old();
                match self.put_if(item.clone(), unchanged).await? {
                    Conditional::Written => return Ok(Claim::Claimed),
                    Conditional::Refused(again) => {
                        seen = again;
                        continue;
                    }
                }
            }
            if self.settled(&old, now).await? {
                return Ok(Claim::Done);
            }
            let lease_until: i64 = get_n(&old, "lease_until").unwrap_or(i64::MAX);
            if lease_until > millis(now) {
                return Ok(Claim::InProgress);
            }
            // The holder's lease ran out unsettled (it crashed, or its record write failed
            // and so did the fallback): take over the claim exactly as seen.
            let seen_rec = get_s(&old, REC).ok().map(str::to_owned);
            let expression = if seen_rec.is_some() {
                "#st = :pending AND lease_until = :seen_lease AND #rec = :seen_rec"
            } else {
                "#st = :pending AND lease_until = :seen_lease AND attribute_not_exists(#rec)"
            };
            let mut same = Condition::new(expression)
                .name("#st", "state")
                .name("#rec", REC)
                .value(":pending", s(PENDING))
                .value(":seen_lease", n(lease_until))
                .returning_old();
            if let Some(r) = seen_rec {
                same = same.value(":seen_rec", s(r));
            }
            match self.put_if(item.clone(), same).await? {
                Conditional::Written => return Ok(Claim::Claimed),
                Conditional::Refused(again) => seen = again,
            }
        }
        Ok(Claim::InProgress)
    }
}

#[async_trait]
impl DedupeStore for DynamoTable {
    async fn claim(
        &self,
        key_: &str,
        lease: Term,
        expires_at: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        self.claim_naming(key_, None, lease, expires_at).await
    }

    async fn claim_attempt(
        &self,
        key_: &str,
        record: AttemptRef,
        lease: Term,
        expires_at: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        self.claim_naming(key_, Some(&record), lease, expires_at)
            .await
    }

    async fn complete(&self, key_: &str, expires_at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut item = expiring_item(pk(key_), SK, expires_at);
        item.insert("state".into(), s(DONE));
        self.put(item).await
    }

    async fn release(&self, key_: &str) -> Result<(), StoreError> {
        // Only a pending claim is released: a completed key stays done. (A settled attempt
        // claim is never released: the worker releases only claims it made no record for.)
        let pending = Condition::new("#st = :pending")
            .name("#st", "state")
            .value(":pending", s(PENDING));
        self.delete_if(key(pk(key_), SK), pending).await?;
        Ok(())
    }
}
