use chrono::Duration;
use relay_shared::delivery::{AttemptRecord, AttemptStatus};
use relay_shared::ids::{AttemptId, EventId, SubscriptionId};
use relay_shared::ports::{AttemptRef, Claim, Term};

use crate::fixtures::{millis, now};
use crate::harness::StoreEnv;

/// `exists`: a live claim in any state (pending, done), not a released or expired one (the
/// worker's read of a successor's claim after a take-over).
pub async fn a_claim_exists_while_pending_or_done(env: StoreEnv) {
    let d = &env.stores.dedupe;
    let t = now();
    let at = |s| t + Duration::seconds(s);
    let term = |from, until| Term::new(at(from), at(until));
    let keep = t + Duration::days(1);

    assert!(!d.exists("e1", t).await.unwrap(), "never claimed");
    assert_eq!(
        d.claim("e1", term(0, 30), keep).await.unwrap(),
        Claim::Claimed
    );
    assert!(d.exists("e1", at(1)).await.unwrap(), "pending");
    assert!(
        d.exists("e1", at(31)).await.unwrap(),
        "pending, its lease over: still a claim"
    );
    d.complete("e1", at(100)).await.unwrap();
    assert!(d.exists("e1", at(99)).await.unwrap(), "done");
    assert!(!d.exists("e1", at(101)).await.unwrap(), "its memory over");

    assert_eq!(
        d.claim("e2", term(0, 30), keep).await.unwrap(),
        Claim::Claimed
    );
    d.release("e2", None).await.unwrap();
    assert!(!d.exists("e2", at(1)).await.unwrap(), "released");
}

pub async fn claim_complete_release(env: StoreEnv) {
    let d = &env.stores.dedupe;
    let t = now();
    // A claim's lease from `from` to `until`, in seconds after `t`.
    let term = |from, until| Term::new(t + Duration::seconds(from), t + Duration::seconds(until));
    let keep = t + Duration::days(1);

    assert_eq!(
        d.claim("k1", term(0, 30), keep).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        d.claim("k1", term(1, 30), keep).await.unwrap(),
        Claim::InProgress
    );
    d.complete("k1", keep).await.unwrap();
    assert_eq!(d.claim("k1", term(2, 30), keep).await.unwrap(), Claim::Done);
    // Releasing a completed key does not undo it.
    d.release("k1", None).await.unwrap();
    assert_eq!(d.claim("k1", term(3, 30), keep).await.unwrap(), Claim::Done);

    // A released claim can be taken again at once.
    assert_eq!(
        d.claim("k2", term(0, 30), keep).await.unwrap(),
        Claim::Claimed
    );
    d.release("k2", None).await.unwrap();
    assert_eq!(
        d.claim("k2", term(1, 30), keep).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        d.claim("k2", term(2, 30), keep).await.unwrap(),
        Claim::InProgress
    );

    // Releasing an unknown key is a no-op.
    d.release("never-claimed", None).await.unwrap();
}

pub async fn expired_claims_are_reclaimable(env: StoreEnv) {
    let d = &env.stores.dedupe;
    let t = now();
    // A claim's lease from `from` to `until`, in seconds after `t`.
    let term = |from, until| Term::new(t + Duration::seconds(from), t + Duration::seconds(until));
    let keep = t + Duration::days(1);

    // The claimer crashed: after its lease runs out, a retry claims.
    assert_eq!(
        d.claim("k3", term(0, 30), keep).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        d.claim("k3", term(29, 60), keep).await.unwrap(),
        Claim::InProgress
    );
    assert_eq!(
        d.claim("k3", term(31, 61), keep).await.unwrap(),
        Claim::TakenOver
    );
    // …and now that claim's lease holds.
    assert_eq!(
        d.claim("k3", term(32, 62), keep).await.unwrap(),
        Claim::InProgress
    );

    // A done record that expired (TTL not run yet) no longer dedupes.
    assert_eq!(
        d.claim("k4", term(0, 30), keep).await.unwrap(),
        Claim::Claimed
    );
    d.complete("k4", t + Duration::seconds(10)).await.unwrap();
    assert_eq!(d.claim("k4", term(9, 40), keep).await.unwrap(), Claim::Done);
    assert_eq!(
        d.claim("k4", term(11, 41), keep).await.unwrap(),
        Claim::Claimed
    );
}

/// The attempt record `r` names, as the worker writes it (its id the claim's).
fn record_of(r: AttemptRef, at: chrono::DateTime<chrono::Utc>) -> AttemptRecord {
    AttemptRecord {
        id: r.attempt_id,
        ..testkit::fixtures::attempt(
            r.subscription_id,
            EventId::new_at(millis(at)),
            1,
            AttemptStatus::Succeeded,
            at,
        )
    }
}

fn attempt_ref(sub: SubscriptionId, at: chrono::DateTime<chrono::Utc>) -> AttemptRef {
    AttemptRef {
        subscription_id: sub,
        attempt_id: AttemptId::new_at(millis(at)),
    }
}

/// The record a claim names settles it: no "claim done" write. Before the record exists the claim
/// is in progress; once it does, every later claim — even after the lease — is `Done`.
pub async fn an_attempt_claim_is_settled_by_the_record_it_names(env: StoreEnv) {
    let (d, log) = (&env.stores.dedupe, &env.stores.attempts);
    let t = now();
    let term = |from, until| Term::new(t + Duration::seconds(from), t + Duration::seconds(until));
    let keep = t + Duration::days(5);
    let sub = SubscriptionId::new_at(millis(t));
    let (mine, other) = (attempt_ref(sub, t), attempt_ref(sub, t));

    assert_eq!(
        d.claim_attempt("a1", mine, term(0, 30), keep)
            .await
            .unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        d.claim_attempt("a1", other, term(1, 31), keep)
            .await
            .unwrap(),
        Claim::InProgress,
        "another copy waits for the holder"
    );
    // The holder's attempt record: the claim is settled by it.
    log.record(&record_of(mine, t), t + Duration::days(30))
        .await
        .unwrap();
    assert_eq!(
        d.claim_attempt("a1", other, term(2, 32), keep)
            .await
            .unwrap(),
        Claim::Done
    );
    assert_eq!(
        d.claim_attempt("a1", other, term(100, 130), keep)
            .await
            .unwrap(),
        Claim::Done,
        "after the lease too: the record says the attempt was made"
    );
    assert_eq!(
        d.claim("a1", term(101, 131), keep).await.unwrap(),
        Claim::Done,
        "a claim naming no record sees it done as well"
    );

    // A record under another id does not settle a claim.
    let third = attempt_ref(sub, t);
    assert_eq!(
        d.claim_attempt("a2", third, term(0, 30), keep)
            .await
            .unwrap(),
        Claim::Claimed
    );
    log.record(&record_of(attempt_ref(sub, t), t), t + Duration::days(30))
        .await
        .unwrap();
    assert_eq!(
        d.claim_attempt("a2", other, term(1, 31), keep)
            .await
            .unwrap(),
        Claim::InProgress
    );

    // `complete` settles an attempt claim too (the fallback when the record cannot be written).
    d.complete("a2", keep).await.unwrap();
    assert_eq!(
        d.claim_attempt("a2", other, term(2, 32), keep)
            .await
            .unwrap(),
        Claim::Done
    );
}

/// A holder that crashed before its record: after its lease another copy takes the claim over
/// (naming its own record, keeping the overtaken holder's name): a late record of the overtaken
/// holder settles the claim, and so does the new holder's. A released claim (no record made) is
/// claimable at once. A claim's memory expires.
pub async fn an_unsettled_attempt_claim_is_taken_over_after_its_lease(env: StoreEnv) {
    let (d, log) = (&env.stores.dedupe, &env.stores.attempts);
    let t = now();
    let term = |from, until| Term::new(t + Duration::seconds(from), t + Duration::seconds(until));
    let keep = t + Duration::days(5);
    let sub = SubscriptionId::new_at(millis(t));
    let (first, second, third) = (
        attempt_ref(sub, t),
        attempt_ref(sub, t),
        attempt_ref(sub, t),
    );

    assert_eq!(
        d.claim_attempt("b1", first, term(0, 30), keep)
            .await
            .unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        d.claim_attempt("b1", second, term(29, 59), keep)
            .await
            .unwrap(),
        Claim::InProgress
    );
    assert_eq!(
        d.claim_attempt("b1", second, term(31, 61), keep)
            .await
            .unwrap(),
        Claim::TakenOver,
        "the first holder's lease is over, its record never written"
    );
    assert_eq!(
        d.claim_attempt("b1", third, term(32, 62), keep)
            .await
            .unwrap(),
        Claim::InProgress,
        "the claim is the second holder's now"
    );
    log.record(&record_of(second, t), t + Duration::days(30))
        .await
        .unwrap();
    assert_eq!(
        d.claim_attempt("b1", third, term(33, 63), keep)
            .await
            .unwrap(),
        Claim::Done,
        "the new holder's record settles it"
    );
    // The overtaken holder was only slow: its late record settles the claim it lost.
    assert_eq!(
        d.claim_attempt("b4", first, term(0, 30), keep)
            .await
            .unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        d.claim_attempt("b4", second, term(31, 61), keep)
            .await
            .unwrap(),
        Claim::TakenOver
    );
    log.record(&record_of(first, t), t + Duration::days(30))
        .await
        .unwrap();
    assert_eq!(
        d.claim_attempt("b4", third, term(32, 62), keep)
            .await
            .unwrap(),
        Claim::Done,
        "a late record of the overtaken holder settles the claim"
    );

    // Released (the attempt's settle failed, nothing recorded under its name): claimable at once.
    assert_eq!(
        d.claim_attempt("b2", first, term(0, 30), keep)
            .await
            .unwrap(),
        Claim::Claimed
    );
    d.release("b2", Some(first)).await.unwrap();
    assert_eq!(
        d.claim_attempt("b2", third, term(1, 31), keep)
            .await
            .unwrap(),
        Claim::Claimed
    );

    // Remembered until `expires_at` only (TTL not run yet): then a new claim.
    let fourth = attempt_ref(sub, t);
    assert_eq!(
        d.claim_attempt("b3", fourth, term(0, 30), t + Duration::seconds(10))
            .await
            .unwrap(),
        Claim::Claimed
    );
    log.record(&record_of(fourth, t), t + Duration::days(30))
        .await
        .unwrap();
    assert_eq!(
        d.claim_attempt("b3", first, term(9, 39), keep)
            .await
            .unwrap(),
        Claim::Done
    );
    assert_eq!(
        d.claim_attempt("b3", first, term(11, 41), keep)
            .await
            .unwrap(),
        Claim::Claimed
    );
}

/// Copies racing to take over one expired claim: exactly one gets it.
pub async fn racing_take_overs_one_wins(env: StoreEnv) {
    let d = &env.stores.dedupe;
    let t = now();
    let term = |from, until| Term::new(t + Duration::seconds(from), t + Duration::seconds(until));
    let keep = t + Duration::days(5);
    let sub = SubscriptionId::new_at(millis(t));
    assert_eq!(
        d.claim_attempt("c1", attempt_ref(sub, t), term(0, 30), keep)
            .await
            .unwrap(),
        Claim::Claimed
    );
    let copy = || d.claim_attempt("c1", attempt_ref(sub, t), term(31, 61), keep);
    let (a, b, c, e) = tokio::join!(copy(), copy(), copy(), copy());
    let got = [a, b, c, e];
    let claimed = got
        .iter()
        .filter(|c| matches!(c, Ok(Claim::TakenOver)))
        .count();
    assert_eq!(claimed, 1, "{got:?}");
    assert!(
        got.iter()
            .all(|c| matches!(c, Ok(Claim::TakenOver | Claim::InProgress))),
        "{got:?}"
    );
}

/// Review 21 F1, the whole sequence: copy A claims and POSTs, and is still running when its lease
/// ends; copy B takes the claim over; A records its success; B crashes before its record. Copy C,
/// after B's lease, must see A's recorded success (`Done`: no POST after it) — the claim keeps
/// every name it had. And a late A giving up its claim does not free B's.
pub async fn an_overtaken_holders_late_record_settles_the_claim(env: StoreEnv) {
    let (d, log) = (&env.stores.dedupe, &env.stores.attempts);
    let t = now();
    let term = |from, until| Term::new(t + Duration::seconds(from), t + Duration::seconds(until));
    let keep = t + Duration::days(5);
    let sub = SubscriptionId::new_at(millis(t));
    let (a, b, c, e) = (
        attempt_ref(sub, t),
        attempt_ref(sub, t),
        attempt_ref(sub, t),
        attempt_ref(sub, t),
    );

    assert_eq!(
        d.claim_attempt("f1", a, term(0, 60), keep).await.unwrap(),
        Claim::Claimed
    );
    // A POSTs (2xx) and is slow after that; its lease ends.
    assert_eq!(
        d.claim_attempt("f1", b, term(61, 121), keep).await.unwrap(),
        Claim::TakenOver,
        "B takes the expired claim over (and POSTs: the price of a lease)"
    );
    log.record(
        &record_of(a, t + Duration::seconds(62)),
        keep + Duration::days(30),
    )
    .await
    .unwrap();
    // B crashes before its record. After B's lease, C:
    assert_eq!(
        d.claim_attempt("f1", c, term(122, 182), keep)
            .await
            .unwrap(),
        Claim::Done,
        "A's recorded success settles the claim B took over: C must not POST"
    );
    assert_eq!(
        d.claim_attempt("f1", e, term(300, 360), keep)
            .await
            .unwrap(),
        Claim::Done,
        "and stays settled for every later copy"
    );

    // A late holder's release: only its own claim. A's lease ends, B takes over, A (still
    // running, its settle failed) releases: B's claim stays. (New copies: A's record above
    // would settle any claim naming it.)
    let (a, b, c) = (
        attempt_ref(sub, t),
        attempt_ref(sub, t),
        attempt_ref(sub, t),
    );
    assert_eq!(
        d.claim_attempt("f2", a, term(0, 60), keep).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        d.claim_attempt("f2", b, term(61, 121), keep).await.unwrap(),
        Claim::TakenOver
    );
    d.release("f2", Some(a)).await.unwrap();
    assert_eq!(
        d.claim_attempt("f2", c, term(62, 122), keep).await.unwrap(),
        Claim::InProgress,
        "A's release did not free B's live claim"
    );
    d.release("f2", None).await.unwrap();
    assert_eq!(
        d.claim_attempt("f2", c, term(63, 123), keep).await.unwrap(),
        Claim::InProgress,
        "nor does a release naming no record"
    );
    // B's own release does.
    d.release("f2", Some(b)).await.unwrap();
    assert_eq!(
        d.claim_attempt("f2", c, term(64, 124), keep).await.unwrap(),
        Claim::Claimed
    );
    // A claim naming no record (an ordered job's hold) is released by `None` only.
    assert_eq!(
        d.claim("f3", term(0, 30), keep).await.unwrap(),
        Claim::Claimed
    );
    d.release("f3", Some(a)).await.unwrap();
    assert_eq!(
        d.claim("f3", term(1, 31), keep).await.unwrap(),
        Claim::InProgress
    );
    d.release("f3", None).await.unwrap();
    assert_eq!(
        d.claim("f3", term(2, 32), keep).await.unwrap(),
        Claim::Claimed
    );
}
