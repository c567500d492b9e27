//! verify + parse + build-outbound for one captured Webex `telephony_calls` webhook (the `updated`
//! event of `tests/fixtures/seed001`; target ≤ 10 µs/event).

use criterion::{criterion_group, criterion_main, Criterion};
use relay_shared::events::telephony_body;
use relay_shared::webex::{verify_webex_signature, webex_signature};
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
}

criterion_group!(benches, bench);
criterion_main!(benches);
