use relay_shared::auth::hash_api_key;
use relay_shared::error::StoreError;

use crate::fixtures::api_key;
use crate::harness::StoreEnv;

pub async fn put_get_delete_and_duplicate(env: StoreEnv) {
    let keys = &env.stores.api_keys;
    let hash = hash_api_key("wrk_conformance");
    let record = api_key(&hash, "user-1");
    assert_eq!(keys.get(&hash).await.unwrap(), None);
    keys.put(&record).await.unwrap();
    assert_eq!(keys.get(&hash).await.unwrap(), Some(record.clone()));

    let dup = api_key(&hash, "user-2");
    assert!(matches!(keys.put(&dup).await, Err(StoreError::Conflict(_))));
    assert_eq!(keys.get(&hash).await.unwrap(), Some(record));

    assert!(keys.delete(&hash).await.unwrap());
    assert_eq!(keys.get(&hash).await.unwrap(), None);
    assert!(!keys.delete(&hash).await.unwrap());
    // Free again.
    keys.put(&dup).await.unwrap();
}
