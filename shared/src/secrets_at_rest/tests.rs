use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::*;
use crate::ids::SubscriptionId;

fn ctx(org: &str, millis: u64) -> SecretContext {
    SecretContext::new(org, SubscriptionId::new_at(millis))
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

/// Counts the unwraps that reach the key service.
struct Counting {
    inner: LocalKey,
    unwraps: AtomicUsize,
}

#[async_trait]
impl DataKeyUnwrapper for Counting {
    async fn unwrap_data_key(
        &self,
        key_id: &str,
        wrapped: &[u8],
        ctx: &SecretContext,
    ) -> Result<Zeroizing<[u8; 32]>, SealError> {
        self.unwraps.fetch_add(1, Ordering::SeqCst);
        self.inner.unwrap_data_key(key_id, wrapped, ctx).await
    }
}

#[tokio::test]
async fn round_trip_and_nothing_in_the_clear() {
    let key = Arc::new(LocalKey::generate());
    let sealer = SecretSealer::new(key.clone());
    let opener = SecretOpener::new(key);
    let c = ctx("org-a", 1);
    let stored = sealer.seal(&secret("whsec_topsecret"), &c).await.unwrap();
    let json = serde_json::to_string(&stored).unwrap();
    assert!(!json.contains("topsecret"), "{json}");
    assert!(json.contains("\"sealed\":\"v1\""), "{json}");
    let back: StoredSecret = serde_json::from_str(&json).unwrap();
    assert!(back.is_sealed());
    let opened = opener.open(&back, &c).await.unwrap();
    assert_eq!(opened.expose_secret(), "whsec_topsecret");
    assert!(!format!("{back:?}").contains("topsecret"));
}

#[tokio::test]
async fn a_secret_moved_to_another_subscription_or_org_does_not_open() {
    let key = Arc::new(LocalKey::generate());
    let sealer = SecretSealer::new(key.clone());
    let opener = SecretOpener::new(key);
    let stored = sealer.seal(&secret("s"), &ctx("org-a", 1)).await.unwrap();
    for other in [ctx("org-b", 1), ctx("org-a", 2)] {
        let err = opener.open(&stored, &other).await.unwrap_err();
        assert!(matches!(err, SealError::Rejected(_)), "{err}");
    }
}

#[tokio::test]
async fn tampering_and_another_key_are_refused() {
    let key = Arc::new(LocalKey::generate());
    let sealer = SecretSealer::new(key.clone());
    let c = ctx("org-a", 1);
    let StoredSecret::Sealed(sealed) = sealer.seal(&secret("s"), &c).await.unwrap() else {
        panic!("sealed")
    };
    let mut tampered = sealed.clone();
    let mut ct = B64.decode(&tampered.ciphertext).unwrap();
    ct[0] ^= 1;
    tampered.ciphertext = B64.encode(ct);
    let opener = SecretOpener::new(key);
    assert!(opener
        .open(&StoredSecret::Sealed(tampered), &c)
        .await
        .is_err());
    let stranger = SecretOpener::new(Arc::new(LocalKey::generate()));
    let err = stranger
        .open(&StoredSecret::Sealed(sealed), &c)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("sealed under `local:"), "{err}");
}

#[tokio::test]
async fn plain_legacy_secrets_still_open_and_seal_if_plain_seals_them() {
    let key = Arc::new(LocalKey::generate());
    let sealer = SecretSealer::new(key.clone());
    let opener = SecretOpener::new(key);
    let c = ctx("org-a", 1);
    let legacy: StoredSecret = serde_json::from_str("\"whsec_legacy\"").unwrap();
    assert_eq!(legacy, StoredSecret::Plain("whsec_legacy".into()));
    assert_eq!(
        opener.open(&legacy, &c).await.unwrap().expose_secret(),
        "whsec_legacy"
    );
    let sealed = sealer.seal_if_plain(&legacy, &c).await.unwrap();
    assert!(sealed.is_sealed());
    assert_eq!(
        opener.open(&sealed, &c).await.unwrap().expose_secret(),
        "whsec_legacy"
    );
    assert_eq!(sealer.seal_if_plain(&sealed, &c).await.unwrap(), sealed);
}

#[tokio::test]
async fn data_keys_are_unwrapped_once_per_warm_container() {
    let key = Arc::new(LocalKey::generate());
    let sealer = SecretSealer::new(key.clone());
    let counting = Arc::new(Counting {
        inner: LocalKey::from_bytes(*key_bytes(&key)),
        unwraps: AtomicUsize::new(0),
    });
    let opener = SecretOpener::new(counting.clone());
    let c = ctx("org-a", 1);
    let a = sealer.seal(&secret("a"), &c).await.unwrap();
    let b = sealer.seal(&secret("b"), &c).await.unwrap();
    for _ in 0..5 {
        opener.open(&a, &c).await.unwrap();
        opener.open(&b, &c).await.unwrap();
    }
    assert_eq!(counting.unwraps.load(Ordering::SeqCst), 2);
    let uncached = SecretOpener::with_max_age(counting.clone(), std::time::Duration::ZERO);
    uncached.open(&a, &c).await.unwrap();
    uncached.open(&a, &c).await.unwrap();
    assert_eq!(counting.unwraps.load(Ordering::SeqCst), 4);
}

#[test]
fn local_keys_parse_from_base64_with_clear_errors() {
    let k = LocalKey::from_base64(&B64.encode([7u8; 32])).unwrap();
    assert!(k.key_id().starts_with("local:"));
    assert!(LocalKey::from_base64("not base64!")
        .unwrap_err()
        .contains("base64"));
    assert!(LocalKey::from_base64(&B64.encode([7u8; 16]))
        .unwrap_err()
        .contains("32 bytes"));
}

fn key_bytes(k: &LocalKey) -> &[u8; 32] {
    &k.key
}

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
