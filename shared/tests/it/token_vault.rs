//! The Webex token record in Secrets Manager (moto) with the refresh lease in DynamoDB Local: read
//! in every accepted form, refreshed, and written back with the rotated refresh token. Needs
//! `AWS_ENDPOINT_URL_SECRETS_MANAGER` and `AWS_ENDPOINT_URL_DYNAMODB` (scripts/start-local-aws).

use std::sync::Arc;

use async_trait::async_trait;
use relay_shared::adapters::aws::secrets::{SecretsManager, SecretsManagerVault};
use relay_shared::clock::SystemClock;
use relay_shared::webex_token::{
    Grant, RefreshError, RefreshGrant, Refresher, TokenManager, TokenSource, TokenVault,
};
use secrecy::ExposeSecret;
use serde_json::Value;
use testkit::aws::{fresh_stores, local, Service};

/// Webex's refresh call, rotating `rt-N` → `rt-N+1`.
struct Rotating;

#[async_trait]
impl Refresher for Rotating {
    async fn refresh(&self, g: &RefreshGrant<'_>) -> Result<Grant, RefreshError> {
        let n: u32 = g.refresh_token.expose_secret()[3..].parse().unwrap();
        Ok(Grant {
            access_token: format!("at-{}", n + 1).into(),
            expires_in: Some(3600),
            refresh_token: Some(format!("rt-{}", n + 1).into()),
            refresh_token_expires_in: Some(7_776_000),
        })
    }
}

#[tokio::test]
async fn the_record_is_read_refreshed_and_written_back() {
    let Some(sdk) = local(
        "token_vault::the_record_is_read_refreshed_and_written_back",
        &[Service::SecretsManager, Service::DynamoDb],
    )
    .await
    else {
        return;
    };
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let secrets = SecretsManager::new(client.clone());
    let create = |value: &str| {
        let (client, value) = (client.clone(), value.to_owned());
        async move { testkit::aws::fresh_secret(&client, "webex-token", &value).await }
    };

    // Today's forms still read: a plain token, JSON with `token`.
    for raw in ["plain-token\n", r#"{"token":"plain-token"}"#] {
        let vault = SecretsManagerVault::new(secrets.clone(), create(raw).await);
        let r = vault.load().await.unwrap();
        assert_eq!(
            r.access_token.as_ref().unwrap().expose_secret(),
            "plain-token"
        );
        assert!(!r.can_refresh());
    }

    // An integration's record: the first use refreshes (no access token yet) and writes back.
    let arn =
        create(r#"{"refreshToken":"rt-0","clientId":"cid","clientSecret":"cs","label":"ops"}"#)
            .await;
    let (stores, _table) = fresh_stores(aws_sdk_dynamodb::Client::new(&sdk), "token").await;
    let manager = TokenManager::new(
        Arc::new(SecretsManagerVault::new(secrets.clone(), arn.clone())),
        Arc::new(Rotating),
        stores.leases.clone(),
        Arc::new(SystemClock),
        "test",
    )
    .with_metrics(Arc::new(|_| {}));
    assert_eq!(manager.token().await.unwrap().expose_secret(), "at-1");
    let raw = client
        .get_secret_value()
        .secret_id(&arn)
        .send()
        .await
        .unwrap()
        .secret_string()
        .unwrap()
        .to_owned();
    let stored: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(stored["accessToken"], "at-1");
    assert_eq!(stored["refreshToken"], "rt-1", "the rotated refresh token");
    assert_eq!(stored["clientId"], "cid");
    assert_eq!(stored["label"], "ops", "unknown keys are kept");
    assert!(stored["expiresAt"].is_string() && stored["refreshTokenExpiresAt"].is_string());

    // A 401: the next refresh spends the stored refresh token.
    let at1 = manager.token().await.unwrap();
    assert_eq!(
        manager.rejected(&at1).await.unwrap().expose_secret(),
        "at-2"
    );
    let r = SecretsManagerVault::new(secrets, arn).load().await.unwrap();
    assert_eq!(r.refresh_token.unwrap().expose_secret(), "rt-2");
    // The lease was released: another refresher can take it at once.
    let now = chrono::Utc::now();
    let term = relay_shared::ports::Term::new(now, now + chrono::Duration::seconds(30));
    assert!(stores
        .leases
        .acquire(&manager.lease_name(), "other", term)
        .await
        .unwrap());
}
