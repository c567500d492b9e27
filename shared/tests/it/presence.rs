use relay_shared::error::StoreError;
use relay_shared::ports::{CallPresence, PresenceRecord};

use crate::harness::{Backend, StoreEnv};

fn rec(person: &str, fingerprint: &str, version: u64) -> PresenceRecord {
    PresenceRecord {
        person_id: person.into(),
        fingerprint: fingerprint.into(),
        version,
        item: None,
    }
}

async fn load_sorted(env: &StoreEnv, org: &str) -> Vec<PresenceRecord> {
    let mut v = env.stores.presence.load(org).await.unwrap();
    v.sort_by(|a, b| a.person_id.cmp(&b.person_id));
    v
}

pub async fn load_and_write_in_batches(env: StoreEnv) {
    let p = &env.stores.presence;
    assert!(p.load("org-1").await.unwrap().is_empty());

    // 60 records: three BatchWriteItem calls on DynamoDB (25 + 25 + 10).
    let mut all: Vec<_> = (0..60)
        .map(|i| rec(&format!("person-{i:02}"), "status=active", 100))
        .collect();
    p.write("org-1", &all).await.unwrap();
    p.write("org-2", &[rec("person-x", "status=inactive", 100)])
        .await
        .unwrap();
    assert_eq!(load_sorted(&env, "org-1").await, all);
    assert_eq!(load_sorted(&env, "org-2").await.len(), 1);

    // The next cycle writes only what changed.
    let changed: Vec<_> = (0..5)
        .map(|i| rec(&format!("person-{:02}", i * 10), "status=meeting", 200))
        .collect();
    p.write("org-1", &changed).await.unwrap();
    for c in &changed {
        let i: usize = c.person_id["person-".len()..].parse().unwrap();
        all[i] = c.clone();
    }
    assert_eq!(load_sorted(&env, "org-1").await, all);

    // The same person twice in one write: the higher version wins on every backend.
    p.write(
        "org-3",
        &[rec("dup", "status=a", 300), rec("dup", "status=b", 250)],
    )
    .await
    .unwrap();
    assert_eq!(
        load_sorted(&env, "org-3").await,
        vec![rec("dup", "status=a", 300)]
    );
    p.write("org-3", &[]).await.unwrap();
}

/// A write with an older version than stored: the in-memory store keeps the newer record; the
/// DynamoDB adapter writes with (unconditional) BatchWriteItem, so the last writer wins there —
/// the poller's lease is what keeps two cycles from writing at once.
pub async fn stale_write_behaviour(env: StoreEnv) {
    let p = &env.stores.presence;
    p.write("org-1", &[rec("person-1", "status=new", 200)])
        .await
        .unwrap();
    p.write("org-1", &[rec("person-1", "status=old", 150)])
        .await
        .unwrap();
    let stored = load_sorted(&env, "org-1").await;
    match env.backend {
        Backend::Memory => assert_eq!(stored, vec![rec("person-1", "status=new", 200)]),
        Backend::Aws => assert_eq!(stored, vec![rec("person-1", "status=old", 150)]),
    }
}

/// Presence from calls: the ingest's call presence of a person sits beside the poller's record,
/// is read with it in one call, is never part of `load`, and is written conditionally.
pub async fn call_presence_beside_the_record(env: StoreEnv) {
    let p = &env.stores.presence;
    let mut record = rec("person-1", "active", 100);
    record.item = Some(r#"{"id":"person-1","status":"active"}"#.into());
    // Another person whose id extends this one's is not read with it.
    p.write(
        "org-1",
        &[record.clone(), rec("person-10", "inactive", 100)],
    )
    .await
    .unwrap();
    assert_eq!(
        p.person("org-1", "person-1").await.unwrap(),
        (Some(record.clone()), None)
    );
    assert_eq!(p.person("org-1", "nobody").await.unwrap(), (None, None));

    let mut call = CallPresence {
        person_id: "person-1".into(),
        live: vec!["call-1".into()],
        told: Some("call".into()),
        told_by: Some("call-1".into()),
        told_at: 200,
        before: Some("active".into()),
        updated_at: 200,
        version: 1,
    };
    p.put_call("org-1", &call).await.unwrap();
    // Version 1 again: someone else wrote it first.
    assert!(matches!(
        p.put_call("org-1", &call).await,
        Err(StoreError::Conflict(_))
    ));
    // Skipping a version is refused too.
    let mut skip = call.clone();
    skip.version = 3;
    assert!(matches!(
        p.put_call("org-1", &skip).await,
        Err(StoreError::Conflict(_))
    ));
    call.version = 2;
    call.live.clear();
    p.put_call("org-1", &call).await.unwrap();

    assert_eq!(
        p.person("org-1", "person-1").await.unwrap(),
        (Some(record.clone()), Some(call.clone()))
    );
    // The poller's load holds its records only.
    let loaded = load_sorted(&env, "org-1").await;
    assert_eq!(loaded, vec![record, rec("person-10", "inactive", 100)]);
    assert_eq!(
        p.calls("org-1", &["person-10", "person-1", "nobody", "person-1"])
            .await
            .unwrap(),
        vec![call.clone()]
    );
    // 150 people, more than one BatchGetItem.
    let ids: Vec<String> = (0..150).map(|i| format!("many-{i}")).collect();
    for id in &ids {
        let c = CallPresence {
            person_id: id.clone(),
            version: 1,
            ..CallPresence::default()
        };
        p.put_call("org-2", &c).await.unwrap();
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(p.calls("org-2", &refs).await.unwrap().len(), 150);
    assert!(p.calls("org-3", &refs).await.unwrap().is_empty());
}
