//! The core scenarios against the AWS adapters (DynamoDB + SQS), on whatever endpoints the
//! environment names: `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SQS`, e.g. DynamoDB Local
//! and moto. Skipped with a printed reason when unset, unless `RELAY_REQUIRE_AWS=1` (then they
//! fail): `testkit::aws`.
//!
//! DynamoDB calls are counted by operation with an SDK interceptor, so "250 changed people → 10
//! BatchWriteItem calls" and "one Query per load" are checked against the real adapter.

use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use chrono::Utc;
use presence_poller::token::StaticToken;
use presence_poller::{Poller, RunOptions, RunStatus};
use relay_shared::adapters::aws::{OpCounter, SqsQueue};
use relay_shared::clock::SystemClock;
use relay_shared::delivery::DeliveryJob;
use relay_shared::events::EventType;
use relay_shared::ports::{DeliveryQueue, QueueConsumer, Stores, Term};
use serde_json::Value;

struct AwsRig {
    rig: Rig,
    ops: OpCounter,
    sqs: SqsQueue,
    stores: Stores,
}

/// The rig on a fresh table and queue (its DynamoDB calls counted), or `None` when `test` skips.
async fn aws_rig(
    test: &str,
    served: Vec<Value>,
    config: presence_poller::PollerConfig,
) -> Option<AwsRig> {
    let sdk = testkit::aws::local(test, testkit::aws::BOTH).await?;
    let ops = OpCounter::default();
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(ops.clone())
            .build(),
    );
    let aws =
        testkit::aws::Resources::with_clients(ddb, aws_sdk_sqs::Client::new(&sdk), "pp").await;
    let (stores, sqs) = (aws.stores, aws.queue.as_ref().clone());

    let fake = FakeWebex::start(served).await;
    // The poller's queue is SQS here: build the rig's poller by hand over the AWS stores.
    let mut rig = Rig::with_fake(
        fake,
        config.clone(),
        Arc::new(StaticToken("t".into())),
        stores.clone(),
        Arc::new(relay_shared::adapters::memory::MemoryQueue::new(
            Duration::from_secs(30),
        )),
    )
    .await;
    let mut counted = stores.clone();
    counted.presence = rig.presence.clone();
    rig.poller = Poller::new(
        &counted,
        rig.webex.clone(),
        Arc::new(sqs.clone()) as Arc<dyn DeliveryQueue>,
        Arc::new(SystemClock),
        config,
    );
    Some(AwsRig {
        rig,
        ops,
        sqs,
        stores,
    })
}

impl AwsRig {
    async fn received(&self) -> Vec<DeliveryJob> {
        let mut out = Vec::new();
        loop {
            let got = self.sqs.receive(10, 1).await.unwrap();
            if got.is_empty() {
                return out;
            }
            for m in got {
                out.push(serde_json::from_str(&m.body).unwrap());
                self.sqs.ack(&m.receipt).await.unwrap();
            }
        }
    }

    async fn subscribe(&self) -> usize {
        let subs = [
            subscription(ORG, &[EventType::PresenceChanged], true),
            subscription(ORG, &[EventType::TelephonyCreated], true),
            subscription("other-org", &[EventType::PresenceChanged], true),
        ];
        for s in &subs {
            self.stores.subscriptions.create(s, 100).await.unwrap();
        }
        1
    }
}

#[tokio::test]
async fn aws_change_detection_fan_out_and_no_false_changes() {
    let mut served = people(150, "active");
    let Some(a) = aws_rig(
        "aws_change_detection_fan_out_and_no_false_changes",
        served.clone(),
        fast_config(),
    )
    .await
    else {
        return;
    };
    let wanted = a.subscribe().await;
    let p = &a.rig.poller;

    // Invocation 1: baseline, silent.
    let s1 = p.run(RunOptions::until("inv-1", far()).max_cycles(2)).await;
    assert_eq!(
        (s1.status, s1.baseline_recorded, s1.events),
        (RunStatus::Completed, 150, 0),
        "{s1:?}"
    );
    assert_eq!(a.stores.presence.load(ORG).await.unwrap().len(), 150);

    // Invocation 2 (state from DynamoDB): two changes → one event → one job per wanting subscription.
    set_status(&mut served, 7, "DoNotDisturb");
    set_status(&mut served, 120, "meeting");
    a.rig.fake.set_people(served.clone());
    let s2 = p.run(RunOptions::until("inv-2", far()).max_cycles(3)).await;
    assert_eq!(
        (s2.changes, s2.events, s2.jobs, s2.failed_cycles),
        (2, 1, wanted, 0),
        "{s2:?}"
    );
    let jobs = a.received().await;
    assert_eq!(jobs.len(), wanted);
    assert_eq!(
        jobs[0].body,
        expected_body(&[sent(&served[7]), sent(&served[120])])
    );
    assert_eq!(jobs[0].event_type, EventType::PresenceChanged);
    let logged = logged_events(&a.stores, 10).await;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].body, jobs[0].body);

    // A 500 on page 1 with another real change: skipped cycle, nothing written, nothing sent.
    set_status(&mut served, 3, "inactive");
    a.rig.fake.set_people(served.clone());
    for _ in 0..3 {
        a.rig.fake.fault(Some(1), Fault::Status(500));
    }
    let writes = a.ops.get("BatchWriteItem");
    let s3 = p.run(RunOptions::until("inv-3", far()).max_cycles(1)).await;
    assert_eq!((s3.failed_cycles, s3.events), (1, 0), "{s3:?}");
    assert_eq!(a.ops.get("BatchWriteItem"), writes);
    assert!(a.received().await.is_empty());
    // …and the change is emitted by the next invocation.
    let s4 = p.run(RunOptions::until("inv-4", far()).max_cycles(1)).await;
    assert_eq!((s4.changes, s4.events), (1, 1), "{s4:?}");
    assert_eq!(a.received().await.len(), wanted);
}

#[tokio::test]
async fn aws_lease_contention() {
    let Some(a) = aws_rig("aws_lease_contention", people(5, "active"), fast_config()).await else {
        return;
    };
    let now = Utc::now();
    let lease = fast_config().lease_name();
    assert!(a
        .stores
        .leases
        .acquire(
            &lease,
            "other-invocation",
            Term::new(now, now + chrono::Duration::seconds(60))
        )
        .await
        .unwrap());
    let skipped = a.rig.poller.run(RunOptions::until("me", far())).await;
    assert_eq!(skipped.status, RunStatus::Skipped, "{skipped:?}");
    assert_eq!(a.rig.fake.requests(), 0);
    a.stores
        .leases
        .release(&lease, "other-invocation")
        .await
        .unwrap();
    let ran = run_cycles(&a.rig.poller, "me", 1).await;
    assert_eq!(ran.status, RunStatus::Completed);
    // Released at the end of the run.
    assert!(a
        .stores
        .leases
        .acquire(
            &lease,
            "third",
            Term::new(Utc::now(), Utc::now() + chrono::Duration::seconds(5))
        )
        .await
        .unwrap());
}

#[tokio::test]
async fn aws_store_calls_250_changes_are_10_batch_writes() {
    let mut config = fast_config();
    config.page_size = 1000;
    let mut served = people(1000, "active");
    let Some(a) = aws_rig(
        "aws_store_calls_250_changes_are_10_batch_writes",
        served.clone(),
        config,
    )
    .await
    else {
        return;
    };
    let mut s = a.rig.poller.session();
    let r = s.cycle(far()).await;
    assert!(r.error.is_none() && r.write_error.is_none(), "{r:?}");
    assert_eq!(a.ops.get("Query"), 1, "one Query loads the (empty) state");
    assert_eq!(
        a.ops.get("BatchWriteItem"),
        40,
        "the 1000-person baseline: 40 × 25"
    );

    for _ in 0..2 {
        assert!(s.cycle(far()).await.error.is_none());
    }
    assert_eq!(
        (a.ops.get("Query"), a.ops.get("BatchWriteItem")),
        (1, 40),
        "no store call without changes"
    );

    for i in (0..1000).step_by(4) {
        set_status(&mut served, i, "inactive");
    }
    a.rig.fake.set_people(served);
    let r = s.cycle(far()).await;
    assert!(r.error.is_none() && r.write_error.is_none(), "{r:?}");
    assert_eq!(r.changes, 250);
    assert_eq!(
        a.ops.get("BatchWriteItem") - 40,
        10,
        "250 changed people → 10 BatchWriteItem calls"
    );
    assert_eq!(a.ops.get("Query"), 1, "still no reload");
    assert_eq!(a.rig.presence.counts(), (1, 2, 1250));

    // A new invocation loads the 1000 states with one load (1 Query page: the items are small).
    let before = a.ops.get("Query");
    let summary = run_cycles(&a.rig.poller, "inv", 2).await;
    assert_eq!(summary.state_loads, 1);
    assert_eq!(summary.changes, 0);
    assert_eq!(a.ops.get("Query") - before, 1);
    assert_eq!(
        a.stores
            .presence
            .load(ORG)
            .await
            .unwrap()
            .iter()
            .filter(|r| r.fingerprint == "inactive")
            .count(),
        250
    );
}
