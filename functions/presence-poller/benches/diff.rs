//! The diff of 10,000 people with 1 % changes (target: ≤ 2 ms per cycle), and cutting a listing
//! of 10,000 full Webex people to the sent fields (done to every listing as it arrives).

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use presence_poller::diff::{diff, DiffFields, ExtraFields};
use relay_shared::webex::Person;
use serde_json::json;

const PEOPLE: usize = 10_000;

fn listing() -> Vec<Person> {
    let statuses = [
        "active",
        "inactive",
        "DoNotDisturb",
        "call",
        "meeting",
        "presenting",
        "OutOfOffice",
        "pending",
    ];
    (0..PEOPLE)
        .map(|i| {
            serde_json::from_value(json!({
                "id": format!("Y2lzY29zcGFyazovL3VzL1BFT1BMRS9{i:012}"),
                "emails": [format!("user{i}@example.com")],
                "sipAddresses": [{"type": "cloud", "value": format!("sip:user{i}@example.com"), "primary": true}],
                "displayName": format!("User {i}"),
                "firstName": "User",
                "lastName": format!("{i}"),
                "orgId": "org-12345",
                "status": statuses[i % statuses.len()],
                "lastModified": "2025-06-30T10:05:00Z",
                "lastActivity": "2025-06-30T10:10:00Z",
                "type": "person",
                "department": "Engineering",
            }))
            .unwrap()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let fields = DiffFields::default();
    let previous = listing();
    let known: HashMap<String, String> = previous
        .iter()
        .map(|p| (p.id.clone(), fields.fingerprint(p)))
        .collect();
    // 1 % of the people changed status, and everybody's lastActivity moved (not a change).
    let mut current = previous.clone();
    for (i, p) in current.iter_mut().enumerate() {
        p.last_activity = Some("2025-06-30T10:12:00Z".into());
        if i % 100 == 0 {
            p.status = Some("changed".into());
        }
    }
    assert_eq!(diff(&known, &current, &fields).len(), PEOPLE / 100);

    c.bench_function("diff 10k people, 1% changed (status)", |b| {
        b.iter(|| black_box(diff(black_box(&known), black_box(&current), &fields)))
    });

    let two = DiffFields::parse("status,lastActivity").unwrap();
    let known2: HashMap<String, String> = current
        .iter()
        .map(|p| (p.id.clone(), two.fingerprint(p)))
        .collect();
    let mut current2 = current.clone();
    for p in current2.iter_mut().step_by(100) {
        p.status = Some("again".into());
    }
    c.bench_function("diff 10k people, 1% changed (status,lastActivity)", |b| {
        b.iter(|| black_box(diff(black_box(&known2), black_box(&current2), &two)))
    });

    // Every Person field Webex returns besides the contract's 13, dropped by default.
    let full: Vec<Person> = previous
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut p = p.clone();
            for (k, v) in [
                (
                    "phoneNumbers",
                    json!([{"type": "work", "value": format!("+1 555 {i:04}")}]),
                ),
                ("extension", json!(format!("{}", 1000 + i))),
                (
                    "locationId",
                    json!("Y2lzY29zcGFyazovL3VzL0xPQ0FUSU9OL2xvYy0x"),
                ),
                ("avatar", json!(format!("https://avatar.example.com/{i}"))),
                ("roles", json!([])),
                (
                    "licenses",
                    json!(["Y2lzY29zcGFyazovL3VzL0xJQ0VOU0UvY2FsbGluZw"]),
                ),
                ("manager", json!("Boss")),
                ("title", json!("Engineer")),
                ("addresses", json!([{"type": "work", "country": "US"}])),
                ("created", json!("2024-01-01T00:00:00.000Z")),
                ("timezone", json!("America/New_York")),
            ] {
                p.extra.insert(k.into(), v);
            }
            p
        })
        .collect();
    let none = ExtraFields::default();
    c.bench_function("cut 10k full people to the 13 contract fields", |b| {
        b.iter_batched(
            || full.clone(),
            |mut people| {
                people.iter_mut().for_each(|p| none.apply(p));
                black_box(people)
            },
            BatchSize::LargeInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
