use relay_shared::error::StoreError;
use relay_shared::ports::PageRequest;

use crate::fixtures::{millis, now, subscription};
use crate::harness::StoreEnv;

pub async fn create_get_update_delete(env: StoreEnv) {
    let subs = &env.stores.subscriptions;
    let s = subscription("user-1", "org-1", millis(now()));
    subs.create(&s, 10).await.unwrap();
    assert_eq!(subs.get(&s.id).await.unwrap(), Some(s.clone()));

    // Update: version n → n + 1 only.
    let mut renamed = s.clone();
    renamed.name = "renamed".into();
    renamed.version = 2;
    subs.update(&renamed).await.unwrap();
    assert_eq!(subs.get(&s.id).await.unwrap(), Some(renamed.clone()));

    // A writer that read version 1 loses.
    let mut stale = s.clone();
    stale.url = "https://other.example/".into();
    stale.version = 2;
    assert!(matches!(
        subs.update(&stale).await,
        Err(StoreError::Conflict(_))
    ));
    let mut skipping = renamed.clone();
    skipping.version = 5;
    assert!(matches!(
        subs.update(&skipping).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(subs.get(&s.id).await.unwrap(), Some(renamed.clone()));

    // Only the owner deletes.
    assert!(!subs.delete("someone-else", &s.id).await.unwrap());
    assert!(subs.get(&s.id).await.unwrap().is_some());
    assert!(subs.delete("user-1", &s.id).await.unwrap());
    assert_eq!(subs.get(&s.id).await.unwrap(), None);
    assert!(!subs.delete("user-1", &s.id).await.unwrap());

    let mut gone = renamed.clone();
    gone.version = 3;
    assert_eq!(subs.update(&gone).await, Err(StoreError::NotFound));
}

pub async fn failed_create_takes_no_slot(env: StoreEnv) {
    let subs = &env.stores.subscriptions;
    let base = millis(now());
    let a = subscription("user-1", "org-1", base);
    subs.create(&a, 2).await.unwrap();
    // Same id again: a conflict, and the owner's count is unchanged…
    assert!(matches!(
        subs.create(&a, 2).await,
        Err(StoreError::Conflict(_))
    ));
    // …so exactly one more fits.
    subs.create(&subscription("user-1", "org-1", base + 1), 2)
        .await
        .unwrap();
    assert_eq!(
        subs.create(&subscription("user-1", "org-1", base + 2), 2)
            .await,
        Err(StoreError::LimitReached { limit: 2 })
    );
    assert_eq!(
        subs.create(&subscription("user-1", "org-1", base + 3), 0)
            .await,
        Err(StoreError::LimitReached { limit: 0 })
    );
}

pub async fn list_by_owner_paginates(env: StoreEnv) {
    let subs = &env.stores.subscriptions;
    let base = millis(now());
    let mine: Vec<_> = (0..7)
        .map(|i| subscription("user-1", "org-1", base + i))
        .collect();
    // Created out of order: listing is by id (creation time), not insertion order.
    for s in mine.iter().rev() {
        subs.create(s, 100).await.unwrap();
    }
    for i in 0..2 {
        subs.create(&subscription("user-2", "org-1", base + 10 + i), 100)
            .await
            .unwrap();
    }

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor = None;
    loop {
        let page = subs
            .list_by_owner(
                "user-1",
                &PageRequest {
                    limit: 3,
                    cursor: cursor.clone(),
                },
            )
            .await
            .unwrap();
        sizes.push(page.items.len());
        seen.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
        assert!(sizes.len() < 10, "pagination does not end");
    }
    assert_eq!(sizes, vec![3, 3, 1]);
    assert_eq!(seen, mine);

    let all = subs
        .list_by_owner(
            "user-1",
            &PageRequest {
                limit: 7,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(all.items.len(), 7);
    assert_eq!(all.next_cursor, None);

    let none = subs
        .list_by_owner(
            "nobody",
            &PageRequest {
                limit: 3,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert!(none.items.is_empty());
    assert_eq!(none.next_cursor, None);

    let bad = subs
        .list_by_owner(
            "user-1",
            &PageRequest {
                limit: 3,
                cursor: Some("%%% not a cursor".into()),
            },
        )
        .await;
    assert_eq!(bad, Err(StoreError::BadCursor));
}

pub async fn list_by_org_returns_every_binding(env: StoreEnv) {
    let subs = &env.stores.subscriptions;
    let base = millis(now());
    let in_org = vec![
        subscription("user-1", "org-1", base),
        subscription("user-2", "org-1", base + 1),
        subscription("user-1", "org-1", base + 2),
    ];
    for s in &in_org {
        subs.create(s, 10).await.unwrap();
    }
    subs.create(&subscription("user-3", "org-2", base + 3), 10)
        .await
        .unwrap();

    assert_eq!(subs.list_by_org("org-1").await.unwrap(), in_org);
    assert_eq!(subs.list_by_org("org-2").await.unwrap().len(), 1);
    assert!(subs.list_by_org("org-3").await.unwrap().is_empty());

    // Updates are visible to fan-out.
    let mut disabled = in_org[1].clone();
    disabled.enabled = false;
    disabled.version = 2;
    subs.update(&disabled).await.unwrap();
    let listed = subs.list_by_org("org-1").await.unwrap();
    assert_eq!(listed[1], disabled);
}

pub async fn owner_limit_holds_under_racing_creates(env: StoreEnv) {
    let base = millis(now());
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let subs = env.stores.subscriptions.clone();
            tokio::spawn(async move {
                subs.create(&subscription("racer", "org-1", base + i), 10)
                    .await
            })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => created += 1,
            Err(StoreError::LimitReached { limit: 10 }) => {}
            Err(e) => panic!("unexpected error from a racing create: {e:?}"),
        }
    }
    assert_eq!(created, 10);
    let stored = env
        .stores
        .subscriptions
        .list_by_owner(
            "racer",
            &PageRequest {
                limit: 100,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(stored.items.len(), 10);
}

pub async fn delete_frees_a_slot(env: StoreEnv) {
    let subs = &env.stores.subscriptions;
    let base = millis(now());
    let a = subscription("user-1", "org-1", base);
    let b = subscription("user-1", "org-1", base + 1);
    subs.create(&a, 2).await.unwrap();
    subs.create(&b, 2).await.unwrap();
    let c = subscription("user-1", "org-1", base + 2);
    assert_eq!(
        subs.create(&c, 2).await,
        Err(StoreError::LimitReached { limit: 2 })
    );

    // Someone else's delete frees nothing.
    assert!(!subs.delete("user-2", &a.id).await.unwrap());
    assert_eq!(
        subs.create(&c, 2).await,
        Err(StoreError::LimitReached { limit: 2 })
    );

    assert!(subs.delete("user-1", &a.id).await.unwrap());
    subs.create(&c, 2).await.unwrap();
    let d = subscription("user-1", "org-1", base + 3);
    assert_eq!(
        subs.create(&d, 2).await,
        Err(StoreError::LimitReached { limit: 2 })
    );
    // Another owner has their own budget.
    subs.create(&subscription("user-2", "org-1", base + 4), 2)
        .await
        .unwrap();
}

/// `list_all` (the operator sweep of `relayctl seal-secrets`): every owner's and org's
/// subscriptions, each exactly once over the pages, and nothing else the table holds.
pub async fn list_all_pages_through_every_subscription(env: StoreEnv) {
    let subs = &env.stores.subscriptions;
    let first = PageRequest {
        limit: 3,
        cursor: None,
    };
    let empty = subs.list_all(&first).await.unwrap();
    assert!(empty.items.is_empty());
    assert_eq!(empty.next_cursor, None);

    let base = millis(now());
    let mut all: Vec<_> = (0..8)
        .map(|i| {
            subscription(
                &format!("user-{}", i % 3),
                &format!("org-{}", i % 2),
                base + i,
            )
        })
        .collect();
    for s in &all {
        subs.create(s, 100).await.unwrap();
    }
    // Other kinds of items beside them (the owners' counters exist already) are not listed.
    env.stores
        .api_keys
        .put(&crate::fixtures::api_key("key-hash-1", "user-0"))
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut cursor = None;
    for _ in 0..10 {
        let page = subs
            .list_all(&PageRequest {
                limit: 3,
                cursor: cursor.clone(),
            })
            .await
            .unwrap();
        assert!(page.items.len() <= 3, "{} items", page.items.len());
        seen.extend(page.items);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert!(cursor.is_none(), "pagination does not end");
    seen.sort_by_key(|s| s.id);
    all.sort_by_key(|s| s.id);
    assert_eq!(seen, all);

    let one_page = subs
        .list_all(&PageRequest {
            limit: 100,
            cursor: None,
        })
        .await
        .unwrap();
    assert_eq!(one_page.items.len(), 8);
    assert_eq!(one_page.next_cursor, None);

    let bad = subs
        .list_all(&PageRequest {
            limit: 3,
            cursor: Some("%%% not a cursor".into()),
        })
        .await;
    assert_eq!(bad, Err(StoreError::BadCursor));
}
