use chrono::Duration;
use relay_shared::error::StoreError;

use crate::fixtures::{call, now};
use crate::harness::StoreEnv;

pub async fn versioned_puts(env: StoreEnv) {
    let calls = &env.stores.calls;
    let t = now();
    assert_eq!(calls.get("call-1").await.unwrap(), None);

    let v1 = call("call-1", 1, "created", t);
    calls.put(&v1).await.unwrap();
    assert_eq!(calls.get("call-1").await.unwrap(), Some(v1.clone()));

    // Creating it again, skipping a version, or writing version 0 are all conflicts.
    assert!(matches!(calls.put(&v1).await, Err(StoreError::Conflict(_))));
    assert!(matches!(
        calls.put(&call("call-1", 3, "updated", t)).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        calls.put(&call("call-1", 0, "updated", t)).await,
        Err(StoreError::Conflict(_))
    ));

    let v2 = call("call-1", 2, "updated", t + Duration::seconds(1));
    calls.put(&v2).await.unwrap();
    let v3 = call("call-1", 3, "deleted", t + Duration::seconds(2));
    calls.put(&v3).await.unwrap();
    assert_eq!(calls.get("call-1").await.unwrap(), Some(v3));
    assert_eq!(calls.get("call-2").await.unwrap(), None);
}

pub async fn racing_writers_one_wins(env: StoreEnv) {
    let calls = &env.stores.calls;
    let t = now();
    calls.put(&call("call-9", 1, "created", t)).await.unwrap();

    // Two writers read version 1 and both try to write version 2.
    let a = call("call-9", 2, "updated", t + Duration::seconds(1));
    let b = call("call-9", 2, "deleted", t + Duration::seconds(2));
    let (ra, rb) = tokio::join!(calls.put(&a), calls.put(&b));
    let winner = match (ra, rb) {
        (Ok(()), Err(StoreError::Conflict(_))) => a,
        (Err(StoreError::Conflict(_)), Ok(())) => b,
        other => panic!("exactly one writer must win: {other:?}"),
    };
    assert_eq!(calls.get("call-9").await.unwrap(), Some(winner));
}
