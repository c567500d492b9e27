//! The presence poller against a fake Webex on 127.0.0.1, with the in-memory adapters.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use async_trait::async_trait;
use chrono::Utc;
use presence_poller::token::TokenSource;
use presence_poller::{RunOptions, RunStatus};
use relay_shared::adapters::memory::{memory_stores, MemoryQueue};
use relay_shared::events::EventType;
use relay_shared::ports::{PresenceRecord, Term};
use serde_json::Value;

fn cycle_ok(r: &presence_poller::CycleReport) {
    assert!(r.error.is_none(), "cycle failed: {:?}", r.error);
    assert!(r.write_error.is_none(), "write failed: {:?}", r.write_error);
}

#[tokio::test]
async fn no_event_when_nothing_changes() {
    let rig = Rig::new(people(250, "active"), fast_config()).await;
    rig.subscribe().await;
    let mut s = rig.poller.session();
    for _ in 0..3 {
        let r = s.cycle(far()).await;
        cycle_ok(&r);
        assert_eq!(r.people, Some(250));
    }
    // lastActivity alone moves: still no change.
    rig.fake.update(|p| {
        p.iter_mut()
            .for_each(|x| x["lastActivity"] = "2025-06-30T11:00:00Z".into())
    });
    let r = s.cycle(far()).await;
    cycle_ok(&r);
    assert_eq!(r.changes, 0);
    assert!(rig.queue.is_empty(), "no job may be queued");
    let logged = logged_events(&rig.stores, 100).await;
    assert!(logged.is_empty());
    // 3 pages per cycle (250 people, max=100), orgId and max on the first request.
    assert_eq!(rig.fake.requests(), 4 * 3);
    let first = &rig.fake.seen()[0];
    assert_eq!(
        first.query,
        vec![
            ("orgId".to_string(), ORG.to_string()),
            ("max".to_string(), "100".to_string())
        ]
    );
}

#[tokio::test]
async fn exactly_the_changed_people_are_emitted() {
    let mut served = people(250, "active");
    let rig = Rig::new(served.clone(), fast_config()).await;
    let wanted = rig.subscribe().await;
    let mut s = rig.poller.session();
    let r = s.cycle(far()).await;
    cycle_ok(&r);
    assert!(r.baseline);

    // One change on each page, and every lastActivity moves.
    for (i, st) in [(5, "DoNotDisturb"), (150, "inactive"), (249, "call")] {
        set_status(&mut served, i, st);
    }
    served
        .iter_mut()
        .for_each(|x| x["lastActivity"] = "2025-06-30T11:00:00Z".into());
    rig.fake.set_people(served.clone());
    let r = s.cycle(far()).await;
    cycle_ok(&r);
    assert_eq!(r.changes, 3);
    assert_eq!(r.emitted.events, 1);
    assert_eq!(r.emitted.jobs, 2);

    let jobs = rig.jobs();
    assert_eq!(
        jobs.len(),
        2,
        "one job per subscription of the org that wants presence:changed"
    );
    let mut targets: Vec<_> = jobs.iter().map(|j| j.subscription_id).collect();
    targets.sort();
    let mut expected_targets = wanted.clone();
    expected_targets.sort();
    assert_eq!(targets, expected_targets);
    for j in &jobs {
        assert_eq!(j.event_type, EventType::PresenceChanged);
        assert_eq!(j.org_id, ORG);
        assert_eq!(j.event_id, jobs[0].event_id);
        // Byte for byte the presence webhook contract's body: the contract's fields of each
        // person, as Webex returned them.
        assert_eq!(
            j.body,
            expected_body(&[sent(&served[5]), sent(&served[150]), sent(&served[249])])
        );
    }
    assert!(
        !jobs[0].body.contains("phoneNumbers"),
        "fields outside the contract are not sent by default"
    );
    // Signed as the delivery worker signs it: the presence contract's `x-org-id` header is there.
    let secrets = [relay_shared::signing::SigningSecret::new(
        testkit::fixtures::SECRET.to_string(),
    )];
    let headers = relay_shared::signing::delivery_headers(&relay_shared::signing::SignatureInput {
        delivery_id: &jobs[0].delivery_id(),
        timestamp: Utc::now(),
        event_type: jobs[0].event_type,
        subscription_id: &jobs[0].subscription_id.to_string(),
        org_id: &jobs[0].org_id,
        secrets: &secrets,
        body: jobs[0].body.as_bytes(),
    });
    assert!(
        headers.contains(&("x-org-id", ORG.to_string())),
        "{headers:?}"
    );

    // Logged for replay.
    let logged = logged_events(&rig.stores, 100).await;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].id, jobs[0].event_id);
    assert_eq!(logged[0].body, jobs[0].body);
    assert_eq!(logged[0].event_type, EventType::PresenceChanged);

    // The store holds the new states; the next cycle sees nothing new.
    let stored = rig.stores.presence.load(ORG).await.unwrap();
    let find = |i: usize| {
        stored
            .iter()
            .find(|r| r.person_id == served[i]["id"])
            .unwrap()
            .clone()
    };
    assert_eq!(find(150).fingerprint, "inactive");
    assert_eq!(find(0).fingerprint, "active");
    assert!(
        find(150).version > find(0).version,
        "changed records carry the later cycle's version"
    );
    let r = s.cycle(far()).await;
    cycle_ok(&r);
    assert_eq!(r.changes, 0);
    assert_eq!(rig.jobs().len(), 2);
}

#[tokio::test]
async fn new_people_are_emitted_vanished_people_are_not() {
    let mut served = people(10, "active");
    let rig = Rig::new(served.clone(), fast_config()).await;
    rig.subscribe().await;
    let mut s = rig.poller.session();
    cycle_ok(&s.cycle(far()).await);
    served.remove(3);
    served.push(person(99, "active"));
    rig.fake.set_people(served.clone());
    let r = s.cycle(far()).await;
    cycle_ok(&r);
    assert_eq!(rig.emitted_items(), vec![vec![sent(&person(99, "active"))]]);
}

#[tokio::test]
async fn baseline_is_recorded_silently_by_default() {
    let rig = Rig::new(people(120, "active"), fast_config()).await;
    rig.subscribe().await;
    let summary = run_cycles(&rig.poller, "inv-1", 2).await;
    assert_eq!(summary.status, RunStatus::Completed);
    assert_eq!(summary.cycles, 2);
    assert_eq!(summary.baseline_recorded, 120);
    assert_eq!(summary.events, 0);
    assert_eq!(summary.changes, 0);
    assert!(rig.queue.is_empty());
    assert_eq!(
        rig.stores.presence.load(ORG).await.unwrap().len(),
        120,
        "the baseline is stored"
    );
}

#[tokio::test]
async fn baseline_is_emitted_when_configured() {
    let mut config = fast_config();
    config.emit_baseline = true;
    let served = people(120, "active");
    let rig = Rig::new(served.clone(), config).await;
    rig.subscribe().await;
    let summary = run_cycles(&rig.poller, "inv-1", 2).await;
    assert_eq!(summary.status, RunStatus::Completed);
    assert_eq!(summary.baseline_recorded, 120);
    assert_eq!(summary.changes, 120);
    assert_eq!(summary.events, 1);
    assert_eq!(summary.jobs, 2);
    let items: Vec<Value> = served.iter().map(sent).collect();
    assert_eq!(rig.bodies(), vec![expected_body(&items)]);
}

#[tokio::test]
async fn baseline_is_not_repeated_when_state_exists() {
    let served = people(5, "active");
    let mut config = fast_config();
    config.emit_baseline = true;
    let rig = Rig::new(served.clone(), config).await;
    rig.subscribe().await;
    // State recorded by an earlier invocation: one person differs.
    let records: Vec<PresenceRecord> = served
        .iter()
        .enumerate()
        .map(|(i, p)| PresenceRecord {
            person_id: p["id"].as_str().unwrap().into(),
            fingerprint: if i == 2 { "inactive" } else { "active" }.into(),
            version: 1,
            item: None,
        })
        .collect();
    rig.stores.presence.write(ORG, &records).await.unwrap();
    let summary = run_cycles(&rig.poller, "inv-2", 1).await;
    assert_eq!(summary.baseline_recorded, 0);
    assert_eq!(summary.changes, 1);
    assert_eq!(rig.emitted_items(), vec![vec![sent(&served[2])]]);
}

#[tokio::test]
async fn lease_contention_between_two_pollers() {
    let fake = FakeWebex::start(people(30, "active")).await;
    let stores = memory_stores();
    let queue = Arc::new(MemoryQueue::new(Duration::from_secs(30)));
    let tokens: Arc<dyn TokenSource> = Arc::new(presence_poller::token::StaticToken("t".into()));
    let a = Arc::new(
        Rig::with_fake(
            fake.clone(),
            fast_config(),
            tokens.clone(),
            stores.clone(),
            queue.clone(),
        )
        .await,
    );
    let b = Rig::with_fake(fake.clone(), fast_config(), tokens, stores.clone(), queue).await;

    // A runs until told to stop (its deadline is far away, its cycles bounded).
    let a2 = a.clone();
    let first = tokio::spawn(async move { run_cycles(&a2.poller, "invocation-a", 25).await });
    while fake.requests() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before = fake.requests();
    let skipped = b.poller.run(RunOptions::until("invocation-b", far())).await;
    assert_eq!(skipped.status, RunStatus::Skipped);
    assert!(
        skipped.reason.as_deref().unwrap().contains("lease"),
        "{skipped:?}"
    );
    assert_eq!(skipped.cycles, 0);
    assert_eq!(
        b.presence.counts(),
        (0, 0, 0),
        "a skipped poller touches nothing"
    );
    let json = serde_json::to_value(&skipped).unwrap();
    assert_eq!(json["status"], "skipped");

    let done = first.await.unwrap();
    assert_eq!(done.status, RunStatus::Completed);
    assert!(fake.requests() > before);
    // Released at the end: the next invocation polls.
    let next = run_cycles(&b.poller, "invocation-c", 1).await;
    assert_eq!(next.status, RunStatus::Completed);
    assert_eq!(next.cycles, 1);
    // And an expired lease (a crashed holder) is taken over.
    let now = Utc::now();
    assert!(stores
        .leases
        .acquire(
            &fast_config().lease_name(),
            "crashed",
            Term::new(
                now - chrono::Duration::minutes(5),
                now - chrono::Duration::minutes(1)
            )
        )
        .await
        .unwrap());
    let after_crash = run_cycles(&b.poller, "invocation-d", 1).await;
    assert_eq!(after_crash.status, RunStatus::Completed);
}

#[tokio::test]
async fn rate_limit_is_honoured_then_the_cycle_completes() {
    let mut served = people(250, "active");
    let rig = Rig::new(served.clone(), fast_config()).await;
    rig.subscribe().await;
    let mut s = rig.poller.session();
    cycle_ok(&s.cycle(far()).await);
    set_status(&mut served, 200, "meeting");
    rig.fake.set_people(served.clone());
    rig.fake.fault(Some(1), Fault::rate_limited(429, 1));
    let r = s.cycle(far()).await;
    cycle_ok(&r);
    assert_eq!(r.webex_calls, 4, "3 pages + 1 retry of page 1");
    assert_eq!(r.webex_rate_limited, 1, "the WebexRateLimited metric");
    let statuses: Vec<(usize, u16)> = rig.fake.seen()[3..]
        .iter()
        .map(|x| (x.page, x.status))
        .collect();
    assert_eq!(statuses, vec![(0, 200), (1, 429), (1, 200), (2, 200)]);
    assert_eq!(rig.emitted_items(), vec![vec![sent(&served[200])]]);
}

#[tokio::test]
async fn a_423_is_a_rate_limit_too() {
    let rig = Rig::new(people(10, "active"), fast_config()).await;
    rig.fake.fault(None, Fault::rate_limited(423, 0));
    let mut s = rig.poller.session();
    let r = s.cycle(far()).await;
    cycle_ok(&r);
    assert_eq!(r.webex_calls, 2);
    assert_eq!(r.webex_rate_limited, 1);
}

/// The listing's 429, through HTTP, fails the cycle without a retry. That polling then pauses
/// until Retry-After has passed is tests/it/ticker.rs's
/// `a_retry_after_beyond_the_deadline_pauses_polling_until_the_deadline` (paused time: a
/// wall-clock deadline here gave a loaded machine no cycle at all).
#[tokio::test]
async fn a_retry_after_beyond_the_deadline_skips_the_cycle() {
    let served = people(50, "active");
    let rig = Rig::new(served.clone(), fast_config()).await;
    rig.subscribe().await;
    // Baseline by an earlier invocation.
    let baseline = run_cycles(&rig.poller, "inv-0", 1).await;
    assert_eq!(baseline.failed_cycles, 0);
    assert_eq!(
        baseline.cycle_durations_ms.len(),
        1,
        "one completed cycle timed"
    );
    let summary = rig.run_throttled(served, "inv-1").await;
    assert_eq!(summary.status, RunStatus::Completed);
    assert_eq!(summary.cycles, 1);
    assert_eq!(summary.failed_cycles, 1);
    assert_eq!(summary.webex_calls, 1, "no retry within the cycle");
    assert_eq!(summary.webex_rate_limited, 1);
    assert!(
        summary.cycle_durations_ms.is_empty(),
        "a failed cycle has no cycle time: {:?}",
        summary.cycle_durations_ms
    );
    assert!(
        summary.errors[0].contains("rate limit"),
        "{:?}",
        summary.errors
    );
    assert!(rig.queue.is_empty());
}

#[tokio::test]
async fn a_server_error_skips_the_cycle_without_a_false_change() {
    let mut served = people(250, "active");
    let rig = Rig::new(served.clone(), fast_config()).await;
    rig.subscribe().await;
    let mut s = rig.poller.session();
    cycle_ok(&s.cycle(far()).await);
    let writes_before = rig.presence.counts();

    // A real change on page 0, then page 1 fails every retry: the partial listing is not diffed.
    set_status(&mut served, 10, "DoNotDisturb");
    rig.fake.set_people(served.clone());
    for _ in 0..3 {
        rig.fake.fault(Some(1), Fault::Status(500));
    }
    let r = s.cycle(far()).await;
    let err = r.error.as_ref().expect("the cycle fails");
    assert!(err.to_string().contains("500"), "{err}");
    assert_eq!(r.people, None);
    assert_eq!(
        r.webex_calls, 4,
        "page 0, then page 1 three times (2 retries with back-off)"
    );
    assert!(rig.queue.is_empty(), "no event from a failed cycle");
    assert_eq!(
        rig.presence.counts(),
        writes_before,
        "no state written by a failed cycle"
    );
    assert_eq!(s.known().unwrap().len(), 250, "nobody vanished");

    // The next cycle sees the change, once.
    let r = s.cycle(far()).await;
    cycle_ok(&r);
    assert_eq!(rig.emitted_items(), vec![vec![sent(&served[10])]]);

    // A single 503 is retried within the cycle.
    rig.fake.fault(Some(2), Fault::Status(503));
    let r = s.cycle(far()).await;
    cycle_ok(&r);
    assert_eq!(r.webex_calls, 4);
    assert_eq!(rig.emitted_items().len(), 1);
}

#[tokio::test]
async fn failed_cycles_are_counted_and_never_fatal() {
    let rig = Rig::new(people(10, "active"), fast_config()).await;
    for _ in 0..9 {
        rig.fake.fault(None, Fault::Status(502));
    }
    let summary = run_cycles(&rig.poller, "inv", 4).await;
    assert_eq!(summary.status, RunStatus::Completed);
    assert_eq!(summary.cycles, 4);
    assert_eq!(summary.failed_cycles, 3);
    assert_eq!(summary.error_count, 3);
    assert_eq!(summary.people_seen, 10, "the fourth cycle completed");
    assert_eq!(summary.baseline_recorded, 10);
}

/// Serves "old" until Webex refuses it, then "new" (the rotated token).
#[derive(Default)]
struct OldThenNew(AtomicBool);

#[async_trait]
impl TokenSource for OldThenNew {
    async fn token(&self) -> Result<secrecy::SecretString, presence_poller::token::TokenError> {
        let rotated = self.0.load(Ordering::SeqCst);
        Ok(if rotated { "new" } else { "old" }.into())
    }
    async fn rejected(
        &self,
        _: &secrecy::SecretString,
    ) -> Result<secrecy::SecretString, presence_poller::token::TokenError> {
        self.0.store(true, Ordering::SeqCst);
        self.token().await
    }
}

#[tokio::test]
async fn a_401_rereads_the_token_and_retries_once() {
    let fake = FakeWebex::start(people(150, "active")).await;
    fake.accept_tokens(&["new"]);
    let tokens: Arc<dyn TokenSource> = Arc::new(OldThenNew::default());
    let rig = Rig::with_fake(
        fake,
        fast_config(),
        tokens,
        memory_stores(),
        Arc::new(MemoryQueue::new(Duration::from_secs(30))),
    )
    .await;
    let mut s = rig.poller.session();
    let r = s.cycle(far()).await;
    cycle_ok(&r);
    assert_eq!(r.people, Some(150));
    let seen: Vec<(Option<String>, u16)> = rig
        .fake
        .seen()
        .into_iter()
        .map(|x| (x.token, x.status))
        .collect();
    assert_eq!(
        seen,
        vec![
            (Some("old".into()), 401),
            (Some("new".into()), 200),
            (Some("new".into()), 200)
        ]
    );
    assert_eq!(rig.webex.refreshes(), 1);

    // A token that stays invalid fails the cycle (no loop of re-reads).
    rig.fake.accept_tokens(&["newer"]);
    let r = s.cycle(far()).await;
    assert!(
        r.error.as_ref().unwrap().to_string().contains("401"),
        "{:?}",
        r.error
    );
    assert_eq!(rig.webex.refreshes(), 2);
}

#[tokio::test]
async fn many_big_changes_are_split_into_events_under_256_kib() {
    let big = |i: usize, status: &str| {
        let mut p = person(i, status);
        p["department"] = Value::String(format!("Department \"{i}\" ").repeat(60));
        p["extraProfile"] = serde_json::json!({"bio": "x".repeat(1500), "tags": ["a\\b", "c\"d"]});
        p
    };
    let served: Vec<Value> = (0..600).map(|i| big(i, "active")).collect();
    // Every field sent (opted in), so the items are as big as Webex's.
    let mut config = fast_config();
    config.extra_fields =
        presence_poller::diff::ExtraFields::parse("phoneNumbers,extraProfile").unwrap();
    let rig = Rig::new(served, config).await;
    rig.subscribe().await;
    let mut s = rig.poller.session();
    cycle_ok(&s.cycle(far()).await);
    let changed: Vec<Value> = (0..600).map(|i| big(i, "inactive")).collect();
    rig.fake.set_people(changed.clone());
    let r = s.cycle(far()).await;
    cycle_ok(&r);
    assert_eq!(r.changes, 600);
    let bodies = rig.bodies();
    assert!(bodies.len() >= 3, "{} events", bodies.len());
    assert_eq!(r.emitted.events, bodies.len());
    assert_eq!(r.emitted.jobs, bodies.len() * 2);
    let mut all = Vec::new();
    for b in &bodies {
        assert!(b.len() < 256 * 1024, "body of {} bytes", b.len());
        let v: Value = serde_json::from_str(b).unwrap();
        assert_eq!(v["payload"], "user-presence");
        all.extend(v["items"].as_array().unwrap().clone());
        assert_eq!(*b, expected_body(v["items"].as_array().unwrap()));
    }
    assert_eq!(all, changed, "every change once, in order");
    for raw in rig.queue.bodies() {
        assert!(raw.len() < 256 * 1024, "SQS message of {} bytes", raw.len());
    }
}

#[tokio::test]
async fn store_calls_per_cycle() {
    let mut served = people(500, "active");
    let rig = Rig::new(served.clone(), fast_config()).await;
    let mut s = rig.poller.session();
    cycle_ok(&s.cycle(far()).await);
    assert_eq!(
        rig.presence.counts(),
        (1, 1, 500),
        "cycle 1: one load, the baseline in one write call"
    );

    for _ in 0..3 {
        cycle_ok(&s.cycle(far()).await);
    }
    assert_eq!(
        rig.presence.counts(),
        (1, 1, 500),
        "no load and no write without changes"
    );

    for i in (0..500).step_by(20) {
        set_status(&mut served, i, "inactive");
    }
    rig.fake.set_people(served.clone());
    let r = s.cycle(far()).await;
    cycle_ok(&r);
    assert_eq!(r.written, 25);
    assert_eq!(
        rig.presence.counts(),
        (1, 2, 525),
        "one write call carrying only the 25 changed people"
    );

    set_status(&mut served, 7, "call");
    rig.fake.set_people(served);
    cycle_ok(&s.cycle(far()).await);
    assert_eq!(rig.presence.counts(), (1, 3, 526));

    // A whole run: one load, then only changes.
    let summary = run_cycles(&rig.poller, "inv", 5).await;
    assert_eq!(summary.state_loads, 1);
    assert_eq!(summary.state_records_written, 0);
    assert_eq!(rig.presence.counts(), (2, 3, 526));
}

/// Three cycles, counted by the test rather than fitted into a wall-clock deadline (which gave a
/// loaded machine fewer); the loop's stop at the deadline (and a listing cut off by it) is
/// tests/it/ticker.rs's, in paused time.
#[tokio::test]
async fn the_loop_runs_its_cycles_and_reports() {
    let mut served = people(40, "active");
    let rig = Rig::new(served.clone(), fast_config()).await;
    rig.subscribe().await;
    rig.fake.push_snapshot(served.clone());
    set_status(&mut served, 3, "inactive");
    rig.fake.push_snapshot(served.clone());
    let summary = run_cycles(&rig.poller, "inv-loop", 3).await;
    assert_eq!(summary.status, RunStatus::Completed);
    assert_eq!(summary.cycles, 3, "{summary:?}");
    assert_eq!(summary.failed_cycles, 0, "{summary:?}");
    assert!(summary.errors.is_empty(), "{summary:?}");
    assert_eq!(summary.people_seen, 40);
    assert_eq!(summary.changes, 1);
    assert_eq!(summary.events, 1);
    assert_eq!(summary.jobs, 2);
    assert_eq!(summary.state_loads, 1);
    assert_eq!(summary.webex_calls, summary.cycles);
    let json = serde_json::to_value(&summary).unwrap();
    for key in [
        "cycles",
        "peopleSeen",
        "changes",
        "errors",
        "events",
        "jobs",
        "webexCalls",
        "failedCycles",
    ] {
        assert!(json.get(key).is_some(), "summary lacks {key}: {json}");
    }
    // The lease was released.
    let now = Utc::now();
    assert!(rig
        .stores
        .leases
        .acquire(
            &fast_config().lease_name(),
            "someone-else",
            Term::new(now, now + chrono::Duration::seconds(5))
        )
        .await
        .unwrap());
}

#[tokio::test]
async fn a_deadline_already_passed_polls_nothing() {
    let rig = Rig::new(people(3, "active"), fast_config()).await;
    let summary = rig
        .poller
        .run(RunOptions::until("late", tokio::time::Instant::now()))
        .await;
    assert_eq!(summary.status, RunStatus::Skipped);
    assert_eq!(rig.fake.requests(), 0);
}

#[tokio::test]
async fn location_and_page_size_reach_webex() {
    let mut config = fast_config();
    config.location_id = Some("loc-1".into());
    config.page_size = 7;
    let rig = Rig::new(people(20, "active"), config).await;
    let r = rig.poller.session().cycle(far()).await;
    cycle_ok(&r);
    let seen = rig.fake.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        seen[0].query,
        vec![
            ("orgId".to_string(), ORG.to_string()),
            ("locationId".to_string(), "loc-1".to_string()),
            ("max".to_string(), "7".to_string())
        ]
    );
    assert!(
        seen[1].query.iter().any(|(k, v)| k == "cursor" && v == "7"),
        "followed the Link: {:?}",
        seen[1].query
    );
}

#[tokio::test]
async fn older_cycles_cannot_regress_the_memory_store() {
    // Versions are cycle times in ms: a late write of an older cycle loses.
    let stores = memory_stores();
    let rec = |f: &str, v: u64| PresenceRecord {
        person_id: "p".into(),
        fingerprint: f.into(),
        version: v,
        item: None,
    };
    stores
        .presence
        .write(ORG, &[rec("inactive", 2_000)])
        .await
        .unwrap();
    stores
        .presence
        .write(ORG, &[rec("active", 1_000)])
        .await
        .unwrap();
    assert_eq!(
        stores.presence.load(ORG).await.unwrap(),
        vec![rec("inactive", 2_000)]
    );
}

#[tokio::test]
async fn an_empty_org_id_resolves_to_the_tokens_org() {
    let fake = FakeWebex::start(vec![]).await;
    assert_eq!(
        presence_poller::org::own_org_id(client_at(&fake.base_url, "t").as_ref())
            .await
            .unwrap(),
        ORG
    );
    assert!(
        presence_poller::org::own_org_id(client_at("http://127.0.0.1:9/v1", "t").as_ref())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn only_the_contract_fields_are_sent_unless_opted_in() {
    let mut served = people(3, "active");
    served[1]["title"] = "Engineer".into();
    served[1]["manager"] = "Boss".into();
    let mut config = fast_config();
    config.extra_fields = presence_poller::diff::ExtraFields::parse("title").unwrap();
    let rig = Rig::new(served.clone(), config).await;
    rig.subscribe().await;
    let mut s = rig.poller.session();
    cycle_ok(&s.cycle(far()).await);
    set_status(&mut served, 1, "call");
    set_status(&mut served, 2, "meeting");
    rig.fake.set_people(served.clone());
    cycle_ok(&s.cycle(far()).await);
    let bodies = rig.bodies();
    assert_eq!(bodies.len(), 1);
    let items = &rig.emitted_items()[0];
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    let contract: Vec<String> = relay_shared::webex::PRESENCE_ITEM_FIELDS
        .iter()
        .map(|f| f.to_string())
        .collect();
    assert_eq!(keys(&items[0])[..13], contract[..], "the contract's order");
    assert_eq!(
        keys(&items[0])[13..],
        ["title".to_string()],
        "then the opted-in field: no phoneNumbers, no manager"
    );
    assert_eq!(keys(&items[1]), contract, "exactly the 13 contract fields");
    let mut with_title = sent(&served[1]);
    with_title["title"] = "Engineer".into();
    assert_eq!(bodies[0], expected_body(&[with_title, sent(&served[2])]));
}

#[tokio::test]
async fn a_change_only_in_an_unsent_field_emits_nothing() {
    let mut served = people(4, "active");
    let rig = Rig::new(served.clone(), fast_config()).await;
    rig.subscribe().await;
    let mut s = rig.poller.session();
    cycle_ok(&s.cycle(far()).await);
    served[0]["phoneNumbers"] = serde_json::json!([{"type": "work", "value": "+1 555 9999"}]);
    served[1]["title"] = "Manager".into();
    rig.fake.set_people(served.clone());
    let r = s.cycle(far()).await;
    cycle_ok(&r);
    assert_eq!(r.changes, 0);
    assert!(rig.queue.is_empty());

    // Opted in and compared, such a field is a change — and it is in the item.
    let mut config = fast_config();
    config.extra_fields = presence_poller::diff::ExtraFields::parse("title").unwrap();
    config.diff_fields = presence_poller::diff::DiffFields::parse("status,title").unwrap();
    let rig = Rig::new(served.clone(), config).await;
    rig.subscribe().await;
    let mut s = rig.poller.session();
    cycle_ok(&s.cycle(far()).await);
    served[1]["title"] = "Director".into();
    served[0]["phoneNumbers"] = serde_json::json!([]);
    rig.fake.set_people(served.clone());
    let r = s.cycle(far()).await;
    cycle_ok(&r);
    assert_eq!(r.changes, 1);
    assert_eq!(rig.emitted_items()[0][0]["title"], "Director");
}

#[tokio::test]
async fn people_without_status_are_never_changes_nor_emitted() {
    let mut config = fast_config();
    config.emit_baseline = true;
    let mut served = people(4, "active");
    served[3].as_object_mut().unwrap().remove("status");
    let rig = Rig::new(served.clone(), config).await;
    rig.subscribe().await;
    let mut s = rig.poller.session();
    let r = s.cycle(far()).await;
    cycle_ok(&r);
    assert_eq!(
        r.changes, 3,
        "the baseline leaves out the person without status"
    );
    assert_eq!(r.without_status, 1);
    assert_eq!(rig.emitted_items()[0].len(), 3);
    assert!(rig.emitted_items()[0]
        .iter()
        .all(|p| p["status"] == "active"));

    // Status sharing turned off for person 0 (status gone, or empty), a newcomer without one:
    // nothing is emitted, and their known state stays.
    served[0].as_object_mut().unwrap().remove("status");
    set_status(&mut served, 1, "");
    let mut newcomer = person(7, "active");
    newcomer.as_object_mut().unwrap().remove("status");
    served.push(newcomer);
    rig.fake.set_people(served.clone());
    let jobs_before = rig.jobs().len();
    for _ in 0..3 {
        let r = s.cycle(far()).await;
        cycle_ok(&r);
        assert_eq!(r.changes, 0);
        assert_eq!(r.without_status, 4);
    }
    assert_eq!(rig.jobs().len(), jobs_before, "no delivery");
    let known = s.known().unwrap();
    assert_eq!(known[served[0]["id"].as_str().unwrap()], "active");
    assert_eq!(known[served[1]["id"].as_str().unwrap()], "active");
    assert!(!known.contains_key(served[4]["id"].as_str().unwrap()));
    let stored = rig.stores.presence.load(ORG).await.unwrap();
    assert_eq!(stored.len(), 3);
    assert!(stored.iter().all(|r| r.fingerprint == "active"));

    // Back with the same status: still no change; with another one, a change (and the newcomer,
    // once they have a status).
    set_status(&mut served, 0, "active");
    rig.fake.set_people(served.clone());
    let r = s.cycle(far()).await;
    cycle_ok(&r);
    assert_eq!(r.changes, 0);
    set_status(&mut served, 1, "DoNotDisturb");
    set_status(&mut served, 4, "inactive");
    rig.fake.set_people(served.clone());
    let r = s.cycle(far()).await;
    cycle_ok(&r);
    assert_eq!(r.changes, 2);
    assert_eq!(
        rig.emitted_items().last().unwrap(),
        &vec![sent(&served[1]), sent(&served[4])]
    );

    let summary = run_cycles(&rig.poller, "inv", 1).await;
    assert_eq!(summary.people_without_status, 1);
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["peopleWithoutStatus"], 1);
    assert!(json.get("budgetWaitMs").is_some(), "{json}");
}

#[tokio::test]
async fn org_id_only_for_another_org_than_the_tokens() {
    // The token's org resolved (`org::resolve`): no orgId for it.
    let fake = FakeWebex::start(people(3, "active")).await;
    let mut config = fast_config();
    presence_poller::org::resolve(&mut config, client_at(&fake.base_url, "token").as_ref())
        .await
        .unwrap();
    assert_eq!(config.token_org_id.as_deref(), Some(ORG));
    let rig = Rig::with_fake(
        fake,
        config,
        Arc::new(presence_poller::token::StaticToken("token".into())),
        memory_stores(),
        Arc::new(MemoryQueue::new(Duration::from_secs(30))),
    )
    .await;
    cycle_ok(&rig.poller.session().cycle(far()).await);
    let seen = rig.fake.seen();
    assert_eq!(
        seen[0].query,
        vec![("max".to_string(), "100".to_string())],
        "no orgId for the token's own org"
    );

    // Another org (a partner's customer): orgId is sent.
    let mut config = fast_config();
    config.token_org_id = Some("partner-org".into());
    let rig = Rig::new(people(1, "active"), config).await;
    let _ = rig.poller.session().cycle(far()).await;
    assert!(rig.fake.seen()[0]
        .query
        .contains(&("orgId".to_string(), ORG.to_string())));

    // An empty PRESENCE_ORG_ID is the token's org; an unresolvable one fails only then.
    let fake = FakeWebex::start(vec![]).await;
    let mut config = fast_config();
    config.org_id.clear();
    presence_poller::org::resolve(&mut config, client_at(&fake.base_url, "token").as_ref())
        .await
        .unwrap();
    assert_eq!(config.org_id, ORG);
    let mut config = fast_config();
    config.org_id.clear();
    assert!(presence_poller::org::resolve(
        &mut config,
        client_at("http://127.0.0.1:9/v1", "t").as_ref()
    )
    .await
    .is_err());
    let mut config = fast_config();
    presence_poller::org::resolve(
        &mut config,
        client_at("http://127.0.0.1:9/v1", "t").as_ref(),
    )
    .await
    .unwrap();
    assert_eq!(
        config.token_org_id, None,
        "unknown: orgId stays in the query"
    );
    // A recreated webhook gets the token's own org's secret (as relayctl's ensure), else the
    // polled org's.
    assert_eq!(presence_poller::org::signing_org(&config), ORG);
    config.token_org_id = Some("token-org".into());
    assert_eq!(presence_poller::org::signing_org(&config), "token-org");
}

#[tokio::test]
async fn max_respects_webexs_caps() {
    for (location, calling_data, expected) in [
        (true, false, "50"),
        (false, true, "100"),
        (true, true, "50"),
        (false, false, "1000"),
    ] {
        let mut config = fast_config();
        config.page_size = 1000;
        config.calling_data = calling_data;
        config.location_id = location.then(|| "loc-1".to_string());
        let rig = Rig::new(people(120, "active"), config).await;
        let r = rig.poller.session().cycle(far()).await;
        cycle_ok(&r);
        assert_eq!(r.people, Some(120));
        let first = &rig.fake.seen()[0].query;
        assert!(
            first.contains(&("max".to_string(), expected.to_string())),
            "{first:?}"
        );
        assert_eq!(
            first.contains(&("callingData".to_string(), "true".to_string())),
            calling_data
        );
        let pages = 120usize.div_ceil(expected.parse().unwrap());
        assert_eq!(rig.fake.requests(), pages, "{first:?}");
    }
}

/// Payload filters hold for presence events too: a subscriber filtering on one status gets only
/// the events that match (one event per cycle here, one person changing).
#[tokio::test]
async fn a_presence_subscribers_filter_is_applied() {
    let mut served = people(3, "active");
    let rig = Rig::new(served.clone(), fast_config()).await;
    let mut only_dnd = subscription(ORG, &[EventType::PresenceChanged], true);
    only_dnd.filter = Some(
        relay_shared::filters::Filter::parse(
            &serde_json::json!({"items.0.status": "DoNotDisturb"}),
        )
        .unwrap(),
    );
    rig.stores
        .subscriptions
        .create(&only_dnd, 100)
        .await
        .unwrap();
    let mut s = rig.poller.session();
    cycle_ok(&s.cycle(far()).await);

    set_status(&mut served, 0, "inactive");
    rig.fake.set_people(served.clone());
    let r = s.cycle(far()).await;
    cycle_ok(&r);
    assert_eq!(r.emitted.events, 1);
    assert_eq!(r.emitted.jobs, 0, "filtered out: no job");

    set_status(&mut served, 1, "DoNotDisturb");
    rig.fake.set_people(served.clone());
    let r = s.cycle(far()).await;
    cycle_ok(&r);
    assert_eq!(r.emitted.jobs, 1);
    assert_eq!(rig.jobs().len(), 1);
    assert_eq!(rig.jobs()[0].subscription_id, only_dnd.id);
}
