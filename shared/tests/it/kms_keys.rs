//! Signing secrets sealed under a KMS key (moto): the API's `GenerateDataKey` and the worker's
//! `Decrypt`, bound to the subscription's encryption context. Needs `AWS_ENDPOINT_URL_KMS`
//! (scripts/start-local-aws).

use relay_shared::adapters::aws::kms::KmsKeys;
use relay_shared::ids::SubscriptionId;
use relay_shared::secrets_at_rest::{
    SealError, SecretContext, SecretOpener, SecretSealer, StoredSecret,
};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use testkit::aws::{fresh_kms_key, local, Service};

#[tokio::test]
async fn seals_with_generate_data_key_and_opens_with_decrypt_under_its_context() {
    let Some(sdk) = local(
        "kms_keys::seals_with_generate_data_key_and_opens_with_decrypt_under_its_context",
        &[Service::Kms],
    )
    .await
    else {
        return;
    };
    let client = aws_sdk_kms::Client::new(&sdk);
    let arn = fresh_kms_key(&client).await;
    let keys = Arc::new(KmsKeys::new(client.clone(), arn.clone()));
    let sealer = SecretSealer::new(keys.clone());
    let opener = SecretOpener::new(keys.clone());
    let ctx = SecretContext::new("org-a", SubscriptionId::new_at(1));

    let stored = sealer
        .seal(&SecretString::from("whsec_kms_secret".to_owned()), &ctx)
        .await
        .unwrap();
    let StoredSecret::Sealed(sealed) = &stored else {
        panic!("sealed");
    };
    assert_eq!(sealed.key_id, arn, "the key's ARN is recorded");
    let json = serde_json::to_string(&stored).unwrap();
    assert!(!json.contains("whsec_kms_secret"), "{json}");
    assert_eq!(
        opener.open(&stored, &ctx).await.unwrap().expose_secret(),
        "whsec_kms_secret"
    );

    // KMS itself refuses the data key under another org's context.
    let other = SecretContext::new("org-b", SubscriptionId::new_at(1));
    let err = SecretOpener::new(keys.clone())
        .open(&stored, &other)
        .await
        .unwrap_err();
    assert!(matches!(err, SealError::Rejected(_)), "{err}");
}
