use chrono::Duration;
use relay_shared::error::StoreError;
use relay_shared::ports::IdempotentResponse;

use crate::fixtures::now;
use crate::harness::StoreEnv;

pub async fn put_get_conflict_and_expiry(env: StoreEnv) {
    let idem = &env.stores.idempotency;
    let t = now();
    let first = IdempotentResponse {
        status: 201,
        body: r#"{"id":"wh_1"}"#.into(),
    };
    let second = IdempotentResponse {
        status: 201,
        body: r#"{"id":"wh_2"}"#.into(),
    };

    assert_eq!(idem.get("user-1:key-1", t).await.unwrap(), None);
    idem.put("user-1:key-1", &first, t + Duration::hours(24))
        .await
        .unwrap();
    assert_eq!(
        idem.get("user-1:key-1", t).await.unwrap(),
        Some(first.clone())
    );
    assert!(matches!(
        idem.put("user-1:key-1", &second, t + Duration::hours(24))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        idem.get("user-1:key-1", t).await.unwrap(),
        Some(first.clone())
    );
    // Scopes are independent.
    assert_eq!(idem.get("user-2:key-1", t).await.unwrap(), None);
    // Past its expiry the response is gone, whether or not TTL removed it.
    assert_eq!(
        idem.get("user-1:key-1", t + Duration::hours(25))
            .await
            .unwrap(),
        None
    );

    // An expired response can be replaced.
    idem.put("user-1:key-2", &first, t - Duration::seconds(10))
        .await
        .unwrap();
    assert_eq!(idem.get("user-1:key-2", t).await.unwrap(), None);
    idem.put("user-1:key-2", &second, t + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(idem.get("user-1:key-2", t).await.unwrap(), Some(second));
}
