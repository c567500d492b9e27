use relay_shared::ports::PresenceRecord;

use crate::harness::{Backend, StoreEnv};

fn rec(person: &str, fingerprint: &str, version: u64) -> PresenceRecord {
    PresenceRecord {
        person_id: person.into(),
        fingerprint: fingerprint.into(),
        version,
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
