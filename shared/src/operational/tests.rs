use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::*;
use crate::adapters::memory::{memory_stores, MemoryQueue};
use crate::clock::ManualClock;
use crate::delivery::AttemptSummary;
use crate::events::EventType;

fn t0() -> DateTime<Utc> {
    "2026-12-02T10:00:30Z".parse().unwrap()
}

struct Rig {
    stores: crate::ports::Stores,
    queue: Arc<MemoryQueue>,
    clock: Arc<ManualClock>,
    emitter: OperationalEmitter,
}

fn rig(per_minute: u32) -> Rig {
    let stores = memory_stores();
    let queue = Arc::new(MemoryQueue::new(Duration::from_secs(30)));
    let clock = Arc::new(ManualClock::new(t0()));
    let emitter = OperationalEmitter::new(
        stores.subscriptions.clone(),
        queue.clone(),
        stores.rate_limits.clone(),
        clock.clone(),
        &OperationalArgs {
            events_per_minute: per_minute,
        },
    );
    Rig {
        stores,
        queue,
        clock,
        emitter,
    }
}

fn sub(owner: &str, org: &str, types: &[EventType]) -> Subscription {
    Subscription {
        name: format!("{owner}'s hook"),
        ..Subscription::new(
            owner,
            org,
            "https://h.example.com/x",
            types.to_vec(),
            "s",
            t0(),
        )
    }
}

impl Rig {
    async fn add(&self, s: &Subscription) {
        self.stores.subscriptions.create(s, 100).await.unwrap();
    }

    /// The queued jobs, as (recipient, event type, event id).
    fn queued(&self) -> Vec<DeliveryJob> {
        self.queue
            .bodies()
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect()
    }
}

fn exhausted_job(about: &Subscription) -> DeliveryJob {
    let event = OutboundEvent {
        id: EventId::new_at(1),
        event_type: EventType::TelephonyCreated,
        org_id: about.org_id.clone(),
        created_at: t0(),
        body: "{}".into(),
    };
    let mut job = DeliveryJob::for_event(&event, about.id);
    for n in 1..=3 {
        job.attempts.push(AttemptSummary {
            attempt: n,
            at: t0(),
            status_code: Some(503),
            error_class: Some(ErrorClass::HttpStatus),
        });
    }
    job
}

#[tokio::test]
async fn a_webhook_event_goes_to_the_same_owners_other_webhooks_only() {
    let r = rig(10);
    let failing = sub("alice", "org-1", &[EventType::WebhookFailing]);
    let sibling = sub("alice", "org-1", &[EventType::WebhookFailing]);
    let not_wanted = sub("alice", "org-1", &[EventType::TelephonyCreated]);
    let other_owner = sub("bob", "org-1", &[EventType::WebhookFailing]);
    let other_org = sub("alice", "org-2", &[EventType::WebhookFailing]);
    let disabled = Subscription {
        enabled: false,
        ..sub("alice", "org-1", &[EventType::WebhookFailing])
    };
    for s in [
        &failing,
        &sibling,
        &not_wanted,
        &other_owner,
        &other_org,
        &disabled,
    ] {
        r.add(s).await;
    }
    let op = OperationalEvent::failing(&failing, &Trigger::of(&exhausted_job(&failing)), t0());
    assert_eq!(r.emitter.emit(&op).await.unwrap(), Emission::Queued(1));
    let jobs = r.queued();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0].subscription_id, sibling.id,
        "never the webhook itself"
    );
    assert_eq!(jobs[0].event_type, EventType::WebhookFailing);
    let body: Value = serde_json::from_str(&jobs[0].body).unwrap();
    assert_eq!(body["type"], "webhook:failing");
    assert_eq!(body["orgId"], "org-1");
    assert_eq!(body["data"]["webhookId"], failing.id.to_string());
    assert_eq!(body["data"]["webhookName"], "alice's hook");
    assert_eq!(body["data"]["attempts"], 3);
    assert_eq!(body["data"]["lastStatus"], 503);
    assert_eq!(body["data"]["errorClass"], "http_status");
    assert_eq!(body["timestamp"], "2026-12-02T10:00:30.000Z");
}

#[tokio::test]
async fn a_webex_event_goes_to_every_subscriber_of_the_org() {
    let r = rig(10);
    let a = sub("alice", "org-1", &[EventType::PresenceThrottled]);
    let b = sub("bob", "org-1", &[EventType::PresenceThrottled]);
    let c = sub("carol", "org-2", &[EventType::PresenceThrottled]);
    for s in [&a, &b, &c] {
        r.add(s).await;
    }
    let op = OperationalEvent::presence_throttled("org-1", 429, 30, t0());
    assert_eq!(r.emitter.emit(&op).await.unwrap(), Emission::Queued(2));
    let mut to: Vec<_> = r.queued().iter().map(|j| j.subscription_id).collect();
    to.sort();
    let mut want = vec![a.id, b.id];
    want.sort();
    assert_eq!(to, want);
}

#[test]
fn a_transition_has_one_id_whoever_emits_it_and_the_next_one_another() {
    let s = sub("alice", "org-1", &[]);
    let trigger = Trigger::of(&exhausted_job(&s));
    let first = OperationalEvent::failing(&s, &trigger, t0());
    // Another worker (or the same message redelivered) making the same change later.
    let again = OperationalEvent::failing(&s, &trigger, t0() + chrono::Duration::seconds(40));
    assert_eq!(first.event.id, again.event.id);
    // After the change was written, the next episode's transition reads another version.
    let next = Subscription {
        version: s.version + 2,
        ..s.clone()
    };
    assert_ne!(
        OperationalEvent::failing(&next, &trigger, t0()).event.id,
        first.event.id
    );
    // Each type of transition its own id.
    assert_ne!(
        OperationalEvent::recovered(&s, trigger.event_id, t0())
            .event
            .id,
        first.event.id
    );
    let dl = |t: &Trigger| OperationalEvent::dead_lettered(&s, t, "x", t0()).event.id;
    assert_eq!(dl(&trigger), dl(&trigger.clone()));
    let mut other = exhausted_job(&s);
    other.event_id = EventId::new_at(2);
    assert_ne!(dl(&trigger), dl(&Trigger::of(&other)));
    // Webex-side: one per org, type and minute.
    let at = |s: i64| t0() + chrono::Duration::seconds(s);
    let th = |s| {
        OperationalEvent::presence_throttled("org-1", 429, 5, at(s))
            .event
            .id
    };
    assert_eq!(th(0), th(20));
    assert_ne!(th(0), th(40), "the next minute");
    assert_ne!(
        th(0),
        OperationalEvent::presence_throttled("org-2", 429, 5, at(0))
            .event
            .id
    );
}

#[tokio::test]
async fn a_retried_emission_queues_the_same_delivery() {
    let r = rig(10);
    let about = sub("alice", "org-1", &[]);
    let sibling = sub("alice", "org-1", &[EventType::WebhookDisabled]);
    r.add(&about).await;
    r.add(&sibling).await;
    let op = |at| OperationalEvent::disabled(&about, DisabledCause::Gone, "410", None, at);
    r.emitter.emit(&op(t0())).await.unwrap();
    r.emitter
        .emit(&op(t0() + chrono::Duration::seconds(5)))
        .await
        .unwrap();
    let jobs = r.queued();
    assert_eq!(jobs.len(), 2);
    // The worker claims attempts by this key: the second copy is a duplicate there.
    assert_eq!(jobs[0].attempt_claim_key(), jobs[1].attempt_claim_key());
    assert_eq!(jobs[0].delivery_id(), jobs[1].delivery_id());
}

#[tokio::test]
async fn a_flapping_subject_is_rate_limited_per_minute_and_others_are_not() {
    let r = rig(2);
    let flapping = sub("alice", "org-1", &[]);
    let steady = sub("alice", "org-1", &[]);
    let watcher = sub("alice", "org-1", &[EventType::DeliveryDeadLettered]);
    for s in [&flapping, &steady, &watcher] {
        r.add(s).await;
    }
    let dead = |about: &Subscription, n: u64| {
        let mut job = exhausted_job(about);
        job.event_id = EventId::new_at(n);
        OperationalEvent::dead_lettered(about, &Trigger::of(&job), "permanent", t0())
    };
    let mut outcomes = Vec::new();
    for n in 0..5 {
        outcomes.push(r.emitter.emit(&dead(&flapping, n)).await.unwrap());
    }
    assert_eq!(
        outcomes,
        [
            Emission::Queued(1),
            Emission::Queued(1),
            Emission::RateLimited,
            Emission::RateLimited,
            Emission::RateLimited
        ]
    );
    // Another subject has its own budget.
    assert_eq!(
        r.emitter.emit(&dead(&steady, 9)).await.unwrap(),
        Emission::Queued(1)
    );
    // The next minute, the flapping one's budget is back.
    r.clock.advance(chrono::Duration::minutes(1));
    assert_eq!(
        r.emitter.emit(&dead(&flapping, 10)).await.unwrap(),
        Emission::Queued(1)
    );
    assert_eq!(r.queued().len(), 4);
}

#[tokio::test]
async fn no_recipient_spends_no_rate_token() {
    let r = rig(1);
    let about = sub("alice", "org-1", &[EventType::WebhookFailing]);
    r.add(&about).await;
    let op = OperationalEvent::failing(&about, &Trigger::of(&exhausted_job(&about)), t0());
    assert_eq!(r.emitter.emit(&op).await.unwrap(), Emission::NoRecipients);
    let sibling = sub("alice", "org-1", &[EventType::WebhookFailing]);
    r.add(&sibling).await;
    assert_eq!(r.emitter.emit(&op).await.unwrap(), Emission::Queued(1));
}

#[test]
fn the_reader_defaults_and_bounds() {
    let a: OperationalArgs = crate::config::from_env_pairs(&[]).unwrap();
    assert_eq!(a.events_per_minute, DEFAULT_PER_MINUTE);
    let a: OperationalArgs =
        crate::config::from_env_pairs(&[("OPERATIONAL_EVENTS_PER_MINUTE", "3")]).unwrap();
    assert_eq!(a.events_per_minute, 3);
    assert!(crate::config::from_env_pairs::<OperationalArgs>(&[(
        "OPERATIONAL_EVENTS_PER_MINUTE",
        "0"
    )])
    .is_err());
}

#[test]
fn every_operational_type_has_a_catalogue_example_of_its_shape() {
    for t in EventType::ALL {
        let Some(body) = example(t) else {
            assert!(!t.is_operational(), "{t} has no example");
            continue;
        };
        assert!(t.is_operational(), "{t}");
        assert_eq!(body["type"], t.as_str());
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(body["orgId"].is_string());
        let data = body["data"].as_object().unwrap();
        if t.is_webhook_scoped() {
            for key in ["webhookId", "webhookName", "url"] {
                assert!(data.contains_key(key), "{t}: {key}");
            }
            // The example webhook's URL has a token in its query: never shown.
            assert_eq!(data["url"], "https://crm.example.com", "{t}");
        } else {
            assert!(!data.contains_key("webhookId"), "{t}");
        }
    }
}

#[tokio::test]
async fn a_token_in_the_webhooks_url_never_reaches_a_sibling() {
    let r = rig(10);
    let about = Subscription {
        url: "https://user:pa55@crm.example.com:8443/hooks/webex?token=s3cr3t#k=s3cr3t".into(),
        ..sub("alice", "org-1", &[])
    };
    let sibling = sub("alice", "org-1", &EventType::OPERATIONAL);
    r.add(&about).await;
    r.add(&sibling).await;
    let trigger = Trigger::of(&exhausted_job(&about));
    let at = t0();
    let ops = [
        OperationalEvent::failing(&about, &trigger, at),
        OperationalEvent::recovered(&about, trigger.event_id, at),
        OperationalEvent::disabled(&about, DisabledCause::Manual, "by hand", Some("alice"), at),
        OperationalEvent::dead_lettered(&about, &trigger, "permanent failure", at),
    ];
    for op in &ops {
        assert_eq!(r.emitter.emit(op).await.unwrap(), Emission::Queued(1));
    }
    let jobs = r.queued();
    assert_eq!(jobs.len(), ops.len());
    for job in jobs {
        assert_eq!(job.subscription_id, sibling.id);
        for secret in ["s3cr3t", "pa55", "user:", "token"] {
            assert!(!job.body.contains(secret), "{secret} in {}", job.body);
        }
        let body: Value = serde_json::from_str(&job.body).unwrap();
        assert_eq!(
            body["data"]["url"], "https://crm.example.com:8443",
            "{}",
            job.event_type
        );
    }
}
