//! Presence from calls (docs/presence-poller.md): the ingest's `call` (and back) seen by the
//! poller's diff — not repeated, not flapped back, and a real change still emitted. The ingest's
//! step is `relay_shared::call_presence::apply` itself, on the same in-memory stores.

use chrono::Utc;
use relay_shared::call_presence::{self, Transition};
use relay_shared::events::EventType;
use serde_json::Value;

use crate::common::*;

fn cycle_ok(r: &presence_poller::CycleReport) {
    assert!(r.error.is_none(), "cycle failed: {:?}", r.error);
    assert!(r.write_error.is_none(), "write failed: {:?}", r.write_error);
}

/// The ingest's step a few ms after the poller's last cycle (its version is that cycle's ms).
async fn ingest(rig: &Rig, person: &str, call: &str, t: Transition) -> Option<String> {
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    let event = call_presence::apply(
        rig.stores.presence.as_ref(),
        ORG,
        person,
        call,
        t,
        Utc::now(),
    )
    .await
    .unwrap()?;
    assert_eq!(event.event_type, EventType::PresenceChanged);
    Some(event.body)
}

fn with_status(p: &Value, status: &str) -> Value {
    let mut p = sent(p);
    p["status"] = status.into();
    p
}

#[tokio::test]
async fn a_call_set_status_is_neither_repeated_nor_flapped_back() {
    let mut served = people(3, "active");
    let rig = Rig::new(served.clone(), fast_config()).await;
    rig.subscribe().await;
    let mut s = rig.poller.session();
    cycle_ok(&s.cycle(far()).await); // the baseline, recorded with each person's sent item
    let id = served[1]["id"].as_str().unwrap().to_owned();

    // The call connects: `call` at once, the poller's item with only `status` changed.
    let body = ingest(&rig, &id, "call-1", Transition::Connected).await;
    assert_eq!(
        body,
        Some(expected_body(&[with_status(&served[1], "call")]))
    );
    // A retry of the same connect: the same event again (same id), nothing new stored.
    assert!(ingest(&rig, &id, "call-1", Transition::Connected)
        .await
        .is_some());

    // Webex still shows the pre-call status: no flap back.
    let r = s.cycle(far()).await;
    cycle_ok(&r);
    assert_eq!((r.changes, r.emitted.events), (0, 0));
    // Webex catches up with `call`: already told, recorded, not emitted again.
    set_status(&mut served, 1, "call");
    rig.fake.set_people(served.clone());
    let r = s.cycle(far()).await;
    cycle_ok(&r);
    assert_eq!((r.changes, r.emitted.events, r.written), (0, 0, 1));

    // The call ends: back to the status they had, at once.
    let body = ingest(&rig, &id, "call-1", Transition::Ended).await;
    assert_eq!(
        body,
        Some(expected_body(&[with_status(&served[1], "active")]))
    );
    // Webex still shows `call` a little longer: nothing (the poller's own view is unchanged).
    cycle_ok(&s.cycle(far()).await);
    // Webex shows `active`: already told.
    set_status(&mut served, 1, "active");
    rig.fake.set_people(served.clone());
    let r = s.cycle(far()).await;
    cycle_ok(&r);
    assert_eq!((r.changes, r.emitted.events, r.written), (0, 0, 1));
    assert!(
        rig.queue.is_empty(),
        "the poller emitted nothing of the call"
    );

    // Then a real change: emitted as usual.
    set_status(&mut served, 1, "DoNotDisturb");
    rig.fake.set_people(served.clone());
    let r = s.cycle(far()).await;
    cycle_ok(&r);
    assert_eq!((r.changes, r.emitted.events), (1, 1));
    assert_eq!(rig.bodies(), vec![expected_body(&[sent(&served[1])])]);
}

#[tokio::test]
async fn webex_s_late_call_is_an_echo_and_other_statuses_are_real() {
    let mut served = people(2, "active");
    let rig = Rig::new(served.clone(), fast_config()).await;
    rig.subscribe().await;
    let mut s = rig.poller.session();
    cycle_ok(&s.cycle(far()).await);
    let a = served[0]["id"].as_str().unwrap().to_owned();
    let b = served[1]["id"].as_str().unwrap().to_owned();

    // A short call Webex never showed while it lasted.
    assert!(ingest(&rig, &a, "call-a", Transition::Connected)
        .await
        .is_some());
    assert!(ingest(&rig, &a, "call-a", Transition::Ended)
        .await
        .is_some());
    // Webex shows `call` only now, after the end: an echo, neither emitted nor recorded.
    set_status(&mut served, 0, "call");
    // Meanwhile b's call is live and Webex reports b `meeting`: a real change.
    assert!(ingest(&rig, &b, "call-b", Transition::Connected)
        .await
        .is_some());
    set_status(&mut served, 1, "meeting");
    rig.fake.set_people(served.clone());
    let r = s.cycle(far()).await;
    cycle_ok(&r);
    assert_eq!((r.changes, r.emitted.events, r.written), (1, 1, 1));
    assert_eq!(rig.bodies(), vec![expected_body(&[sent(&served[1])])]);
    assert_eq!(s.known().unwrap()[&a], "active", "the echo is not recorded");

    // b's call ends: receivers have `meeting` from the poller, so the ingest leaves it.
    assert_eq!(ingest(&rig, &b, "call-b", Transition::Ended).await, None);
    // Webex drops a's late `call`: nothing changed for the poller.
    set_status(&mut served, 0, "active");
    rig.fake.set_people(served.clone());
    let r = s.cycle(far()).await;
    cycle_ok(&r);
    assert_eq!((r.changes, r.emitted.events), (0, 0));
}

#[tokio::test]
async fn people_the_poller_never_recorded_get_nothing_from_the_ingest() {
    let rig = Rig::new(people(1, "active"), fast_config()).await;
    assert_eq!(
        ingest(&rig, "someone-else", "call-1", Transition::Connected).await,
        None
    );
    let (record, call) = rig
        .stores
        .presence
        .person(ORG, "someone-else")
        .await
        .unwrap();
    assert_eq!((record, call), (None, None), "nothing stored either");
}
