//! Claims: `DEDUPE#<key>`/`DEDUPE` with `state` (`pending`/`done`), `lease_until` (Unix ms),
//! `expires_at` and, for an attempt claim, `rec` (`<webhook id>/<attempt id>`: the attempt record
//! `ATTEMPTS#<webhook id>`/`<attempt id>` its current holder will write) and, once taken over,
//! `recs` (a string set: the records every earlier holder named). A claim is one conditional put
//! that succeeds when there is no live item; when it is refused, the item returned with the
//! failure (or a consistent read) is judged: done, or any record it names exists (one consistent
//! GetItem per name) → `Done`; lease running → `InProgress`; lease over → taken
//! over (`TakenOver`) by a put conditional on the very claim seen (its lease and holder), so of two copies
//! taking over, one wins.
//!
//! The take-over keeps every name: an overtaken holder may still be running (its lease ran out
//! while it was slow) and write its record later, which must settle the claim whoever holds it
//! now. The put carries `recs` = the seen `recs` plus the seen `rec`; the condition (lease and
//! holder as seen — every take-over moves `lease_until` forward) makes that the same as an `ADD`
//! on the stored set, with the PutItem the worker may already make (no UpdateItem on `DEDUPE#`).
//!
//! Check then act: the records are read before the take-over, and a record write does not change
//! the claim, so a record written between the read and the put would be missed. After a
//! successful take-over the earlier holders' records are read again: one written by then
//! settles the claim (it still names it) and the taker answers `Done`, so no copy starts a POST
//! after a recorded success it could see. What remains: an overtaken holder that writes its
//! record after that second read, while the taker is already POSTing — one duplicate POST, the
//! price of any lease, impossible on Lambda where the lease outlasts the invocation
//! (docs/delivery-worker.md, "Exactly once per attempt").

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
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
/// The attempt record an attempt claim's current holder names.
const REC: &str = "rec";
/// The records the holders it was taken over from named (a string set).
const RECS: &str = "recs";

fn pk(key: &str) -> String {
    format!("DEDUPE#{key}")
}

fn rec_value(record: &AttemptRef) -> String {
    format!("{}/{}", record.subscription_id, record.attempt_id)
}

fn parse_rec(value: &str) -> Option<AttemptRef> {
    let (sub, att) = value.split_once('/')?;
    Some(AttemptRef {
        subscription_id: sub.parse().ok()?,
        attempt_id: att.parse().ok()?,
    })
}

/// The names of the earlier holders' records (`recs`), as stored.
fn earlier_names(item: &Item) -> Vec<String> {
    match item.get(RECS) {
        Some(AttributeValue::Ss(names)) => names.clone(),
        _ => Vec::new(),
    }
}

/// Every record a stored claim names: its holder's and the earlier holders' (names this adapter
/// did not write are left out).
fn named_records(item: &Item) -> Vec<AttemptRef> {
    let holder = get_s(item, REC).ok().map(str::to_owned);
    holder
        .into_iter()
        .chain(earlier_names(item))
        .filter_map(|v| parse_rec(&v))
        .collect()
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

    /// Does any of `records` exist? One GetItem each, the holder's first, up to the first found
    /// (more than one only after a take-over, which is rare: no concurrency worth its code).
    async fn any_exists(
        &self,
        records: &[AttemptRef],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        for r in records {
            if self.record_exists(r, now).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Is the stored claim `item` done at `now`: marked so, or any record it names written?
    async fn settled(&self, item: &Item, now: DateTime<Utc>) -> Result<bool, StoreError> {
        if get_s(item, "state").is_ok_and(|st| st == DONE) {
            return Ok(true);
        }
        self.any_exists(&named_records(item), now).await
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
            // and so did the fallback, or it is still running, slow): take over the claim
            // exactly as seen, keeping every name it had.
            let seen_rec = get_s(&old, REC).ok().map(str::to_owned);
            let mut earlier = earlier_names(&old);
            earlier.extend(seen_rec.clone());
            earlier.sort();
            earlier.dedup();
            let mut taking = item.clone();
            if !earlier.is_empty() {
                taking.insert(RECS.into(), AttributeValue::Ss(earlier));
            }
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
            match self.put_if(taking.clone(), same).await? {
                // Read the overtaken holders' records again: see the module comment.
                Conditional::Written => {
                    return Ok(if self.any_exists(&named_records(&old), now).await? {
                        Claim::Done
                    } else {
                        Claim::TakenOver
                    })
                }
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

    async fn release(&self, key_: &str, holder: Option<AttemptRef>) -> Result<(), StoreError> {
        // Only a pending claim is released, and only by its holder: a completed key stays done,
        // and a claim another copy has taken over since stays that copy's. (A settled attempt
        // claim is never released: the worker releases only claims it made no record for.)
        let pending = match &holder {
            Some(r) => Condition::new("#st = :pending AND #rec = :mine")
                .name("#rec", REC)
                .value(":mine", s(rec_value(r))),
            None => {
                Condition::new("#st = :pending AND attribute_not_exists(#rec)").name("#rec", REC)
            }
        }
        .name("#st", "state")
        .value(":pending", s(PENDING));
        self.delete_if(key(pk(key_), SK), pending).await?;
        Ok(())
    }

    async fn exists(&self, key_: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(self.get_live(pk(key_), SK, now).await?.is_some())
    }
}
