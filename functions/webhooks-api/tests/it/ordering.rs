//! `"ordering": "per-call"` through the API (docs/ordering.md): refused where the deployment has
//! no ordered queue, and a replay of a per-call-ordered webhook goes to the ordered queue with
//! the same message group and `webhook-sequence` as at ingest (read back from the logged bodies).

use std::sync::Arc;
use std::time::Duration;

use crate::common::{unique, Harness};
use relay_shared::adapters::memory::MemoryQueue;
use relay_shared::auth::Role;
use relay_shared::delivery::{ordering_key, DeliveryJob};
use relay_shared::events::{telephony_body, EventType, OutboundEvent};
use relay_shared::ids::{EventId, SubscriptionId};
use relay_shared::ports::{Clock, QueueConsumer, RoutedQueue};
use relay_shared::webex::TelephonyEnvelope;
use serde_json::{json, Value};
use webhooks_api::{router, ApiConfig};

const HOOKS: &str = "/api/hooks/webhooks";

/// A memory harness whose API sends through a [`RoutedQueue`]; returns its ordered queue.
fn routed(ordered: bool) -> (Harness, Arc<MemoryQueue>) {
    let mut h = Harness::memory(ApiConfig::default());
    let standard = Arc::new(MemoryQueue::new(Duration::from_secs(30)));
    let fifo = Arc::new(MemoryQueue::fifo(Duration::from_secs(30)));
    h.state.queue = Arc::new(RoutedQueue {
        standard,
        ordered: ordered.then(|| fifo.clone() as _),
    });
    h.router = router(h.state.clone());
    (h, fifo)
}

fn per_call(types: &[&str]) -> Value {
    json!({"name": "ordered", "url": "https://my-server.example.com/webhook",
           "eventTypes": types, "ordering": "per-call"})
}

#[tokio::test]
async fn per_call_ordering_is_refused_without_an_ordered_queue() {
    let (h, _) = routed(false);
    let key = h.user().await;
    let e = h
        .call(
            "POST",
            HOOKS,
            Some(&key),
            Some(per_call(&["telephony:created"])),
        )
        .await
        .assert_error(422, "validation_failed");
    assert_eq!(e["field"], "ordering", "{e}");
    let plain = h.create(&key, "plain").await;
    let p = format!("{HOOKS}/{}", plain["id"].as_str().unwrap());
    let e = h
        .call(
            "PATCH",
            &p,
            Some(&key),
            Some(json!({"ordering": "per-call"})),
        )
        .await
        .assert_error(422, "validation_failed");
    assert_eq!(e["field"], "ordering", "{e}");
    h.call("PATCH", &p, Some(&key), Some(json!({"ordering": "none"})))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn a_replay_keeps_the_call_group_and_sequence() {
    let (h, fifo) = routed(true);
    let org = unique("org");
    let key = h.key(&unique("user"), &org, Role::User).await;
    let created = h
        .call(
            "POST",
            HOOKS,
            Some(&key),
            Some(per_call(&["telephony:updated", "call:ringing"])),
        )
        .await
        .assert_status(201);
    let sid: SubscriptionId = created["id"].as_str().unwrap().parse().unwrap();
    let seed: Value = serde_json::from_str(include_str!(
        "../../../../tests/fixtures/seed001/updated.json"
    ))
    .unwrap();
    let mut envelope: TelephonyEnvelope = serde_json::from_value(seed["items"].clone()).unwrap();
    envelope.org_id = org.clone();
    let at = h.clock.now() - chrono::Duration::minutes(30);
    let applied = relay_shared::call_events::apply(None, &envelope, 100);
    let mark = applied.marks.first().expect("the seed event rings");
    let bodies = [
        (EventType::TelephonyUpdated, telephony_body(&envelope, at)),
        (
            mark.event,
            relay_shared::call_events::body(mark, &applied.record.leg, &envelope),
        ),
    ];
    for (i, (event_type, body)) in bodies.into_iter().enumerate() {
        let e = OutboundEvent {
            id: EventId::new_at(at.timestamp_millis() as u64 + i as u64),
            event_type,
            org_id: org.clone(),
            created_at: at + chrono::Duration::milliseconds(i as i64),
            body,
        };
        h.stores
            .events
            .append(&e, h.clock.now() + chrono::Duration::days(30))
            .await
            .unwrap();
    }
    let window = json!({"since": (at - chrono::Duration::minutes(1)).to_rfc3339(),
                        "until": (at + chrono::Duration::minutes(1)).to_rfc3339()});
    let r = h
        .call(
            "POST",
            &format!("{HOOKS}/{sid}/replay"),
            Some(&key),
            Some(window),
        )
        .await
        .assert_status(202);
    assert_eq!(r["queued"], 2);
    let received = fifo.receive(10, 0).await.unwrap();
    let jobs: Vec<DeliveryJob> = received
        .iter()
        .map(|m| serde_json::from_str(&m.body).unwrap())
        .collect();
    assert_eq!(jobs.len(), 2, "both replayed jobs on the ordered queue");
    let group = ordering_key(&sid, &envelope.data.call_id);
    let ms = u64::try_from(envelope.data.event_timestamp.at().timestamp_millis()).unwrap();
    assert_eq!(jobs[0].event_type, EventType::TelephonyUpdated);
    assert_eq!(jobs[0].ordering_key.as_deref(), Some(group.as_str()));
    assert_eq!(jobs[0].sequence, Some(ms));
    assert_eq!(jobs[1].event_type, mark.event);
    assert_eq!(jobs[1].ordering_key.as_deref(), Some(group.as_str()));
    assert_eq!(jobs[1].sequence, Some(mark.seq));
    // Resending one of them is the same: the ordered queue, the call's group and sequence, a run
    // of its own (the replayed ones acknowledged first: in flight, they hold the group back).
    for m in &received {
        fifo.ack(&m.receipt).await.unwrap();
    }
    let r = h
        .call(
            "POST",
            &format!("{HOOKS}/{sid}/events/{}/resend", jobs[1].event_id),
            Some(&key),
            None,
        )
        .await
        .assert_status(202);
    let resent: Vec<DeliveryJob> = fifo
        .receive(10, 0)
        .await
        .unwrap()
        .iter()
        .map(|m| serde_json::from_str(&m.body).unwrap())
        .collect();
    assert_eq!(resent.len(), 1, "the resent job on the ordered queue");
    assert_eq!(resent[0].event_id, jobs[1].event_id);
    assert_eq!(resent[0].ordering_key.as_deref(), Some(group.as_str()));
    assert_eq!(resent[0].sequence, Some(mark.seq));
    assert_eq!(r["run"], resent[0].run);
    assert_ne!(resent[0].run, jobs[1].run);
}
