//! A `GET /v1/people` page as the presence poller receives it: the adapter's page parser, then
//! what the poller does with the people (fingerprints, the diff, cutting to the contract's fields,
//! splitting into events under the size limit).
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use presence_poller::diff::{baseline, diff, DiffFields, ExtraFields};
use presence_poller::emit::{split_for_events, JOB_OVERHEAD_BYTES};
use relay_shared::adapters::webex_http::WebexHttpClient;
use relay_shared::events::presence_body;
use relay_shared::webex::Person;

fuzz_target!(|data: &[u8]| {
    let Some((&knob, page)) = data.split_first() else {
        return;
    };
    let Ok(people) = WebexHttpClient::fuzz_people_page(page) else {
        return;
    };
    // A person re-serialises to the same person (what is emitted is what Webex listed).
    for p in &people {
        let json = serde_json::to_string(p).expect("serialises");
        let back: Person = serde_json::from_str(&json).expect("an emitted person parses");
        // Long floats included (serde_json's float_roundtrip; docs/reliability.md, finding 3).
        assert_eq!(&back, p, "round trip");
    }
    let fields = [
        DiffFields::default(),
        DiffFields::parse("status,lastActivity,displayName").unwrap(),
        DiffFields::parse("phoneNumbers").unwrap(),
    ];
    for f in &fields {
        let base = baseline(&people, f);
        assert!(base.iter().all(|c| people[c.index].has_status()));
        // Against its own baseline nothing changed (unless an id is listed twice).
        let known: HashMap<String, String> = base
            .iter()
            .map(|c| (people[c.index].id.clone(), c.fingerprint.clone()))
            .collect();
        let changes = diff(&known, &people, f);
        if known.len() == base.len() {
            assert!(
                changes.is_empty(),
                "a listing differs from itself: {changes:?}"
            );
        }
    }
    let extra = ExtraFields::parse("phoneNumbers,extension").unwrap();
    let mut cut = people.clone();
    for p in &mut cut {
        extra.apply(p);
        assert!(p.extra.keys().all(|k| extra.contains(k)));
    }
    // Every person once, in order; a group of several stays within the job size.
    let max = JOB_OVERHEAD_BYTES + 64 + usize::from(knob) * 16;
    let groups = split_for_events(cut.clone(), max);
    let flat: Vec<&Person> = groups.iter().flatten().collect();
    assert_eq!(flat, cut.iter().collect::<Vec<_>>());
    for g in &groups {
        assert!(!g.is_empty());
        if g.len() > 1 {
            let body = presence_body(g);
            let escaped = serde_json::to_string(&body).unwrap().len() - 2;
            assert!(
                escaped + JOB_OVERHEAD_BYTES <= max,
                "{escaped} + overhead > {max}"
            );
        }
    }
});
