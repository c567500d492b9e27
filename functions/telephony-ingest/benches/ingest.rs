//! verify + parse + build-outbound for one captured Webex `telephony_calls` webhook (the `updated`
//! event of `tests/fixtures/seed001`; target ≤ 10 µs/event), and the fan-out to 10 webhooks with
//! and without payload filters (target: filters cost ≤ 10 µs/event more).

use criterion::{criterion_group, criterion_main, Criterion};
use relay_shared::events::{telephony_body, EventType, OutboundEvent};
use relay_shared::fan_out::jobs_for;
use relay_shared::filters::Filter;
use relay_shared::ids::EventId;
use relay_shared::subscription::Subscription;
use relay_shared::webex::{verify_webex_signature, webex_signature};
use serde_json::json;
use telephony_ingest::envelope::parse_envelope;

const SEED: &str = include_str!("../../../tests/fixtures/seed001/updated.json");

fn envelope_bytes() -> Vec<u8> {
    let body: serde_json::Value = serde_json::from_str(SEED).expect("fixture is JSON");
    serde_json::to_vec(&body["items"]).expect("compact")
}

fn bench(c: &mut Criterion) {
    let body = envelope_bytes();
    let secret = b"local-webex-secret";
    let sig = webex_signature(secret, &body);
    let now = chrono::Utc::now();
    c.bench_function("verify+parse+outbound (telephony updated)", |b| {
        b.iter(|| {
            verify_webex_signature(secret, std::hint::black_box(&body), Some(&sig)).unwrap();
            let env = parse_envelope(&body).unwrap();
            std::hint::black_box(telephony_body(&env, now))
        })
    });

    let env = parse_envelope(&body).unwrap();
    let event = OutboundEvent {
        id: EventId::new_at(1),
        event_type: EventType::TelephonyUpdated,
        org_id: env.org_id.clone(),
        created_at: now,
        body: telephony_body(&env, now),
    };
    let plain: Vec<Subscription> = (0..10)
        .map(|_| testkit::fixtures::subscription(&env.org_id, &[EventType::TelephonyUpdated]))
        .collect();
    // Each with the catalogue's two examples' kind of filter: two or three conditions, half passing.
    let filtered: Vec<Subscription> = plain
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let filter = if i % 2 == 0 {
                json!({"data.personality": "terminator", "data.remoteParty.callType": "external"})
            } else {
                json!({"data.redirections.0.reason": "callQueue", "data.redirections.0.redirectingParty.name": {"prefix": "Sales"}, "data.state": {"in": ["alerting", "connected"]}})
            };
            Subscription {
                filter: Some(Filter::parse(&filter).unwrap()),
                ..s.clone()
            }
        })
        .collect();
    c.bench_function("fan-out to 10 webhooks, no filters", |b| {
        b.iter(|| {
            std::hint::black_box(jobs_for(
                &plain,
                &env.org_id,
                std::hint::black_box(&event),
                None,
            ))
        })
    });
    c.bench_function("fan-out to 10 webhooks, each filtered", |b| {
        b.iter(|| {
            std::hint::black_box(jobs_for(
                &filtered,
                &env.org_id,
                std::hint::black_box(&event),
                None,
            ))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
