//! Local AWS for the tests: DynamoDB Local and SQS and Secrets Manager endpoints (moto server), as
//! `scripts/start-local-aws` starts them and exports `AWS_ENDPOINT_URL_DYNAMODB` /
//! `AWS_ENDPOINT_URL_SQS` / `AWS_ENDPOINT_URL_SECRETS_MANAGER` / `AWS_ENDPOINT_URL_KMS`. A test runs on them when the
//! variables of the services it uses are set, fails when they are not and `RELAY_REQUIRE_AWS=1`,
//! and otherwise skips with a note ([`crate::gate`]). Every test creates its own uniquely named
//! table and queues, so the tests run in parallel and can be re-run against the same servers.

use std::sync::Arc;

use relay_shared::adapters::aws::{aws_stores, create_queues, create_table, DynamoTable, SqsQueue};
use relay_shared::ports::Stores;

/// A service a test needs, named by its endpoint variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    DynamoDb,
    Sqs,
    SecretsManager,
    Kms,
}

impl Service {
    pub fn var(self) -> &'static str {
        match self {
            Service::DynamoDb => "AWS_ENDPOINT_URL_DYNAMODB",
            Service::Sqs => "AWS_ENDPOINT_URL_SQS",
            Service::SecretsManager => "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            Service::Kms => "AWS_ENDPOINT_URL_KMS",
        }
    }

    /// What `scripts/start-local-aws` runs for it.
    pub fn server(self) -> &'static str {
        match self {
            Service::DynamoDb => "DynamoDB Local",
            Service::Sqs => "an SQS endpoint (moto)",
            Service::SecretsManager => "a Secrets Manager endpoint (moto)",
            Service::Kms => "a KMS endpoint (moto)",
        }
    }
}

/// Both services: what a function's scenarios use.
pub const BOTH: &[Service] = &[Service::DynamoDb, Service::Sqs];

/// The configured endpoint of `service` (blank counts as unset).
pub fn endpoint(service: Service) -> Option<String> {
    std::env::var(service.var())
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// The AWS gate: may `test`, which uses `services`, run against local AWS? See the module docs.
pub fn available(test: &str, services: &[Service]) -> bool {
    let missing: Vec<&str> = services
        .iter()
        .filter(|s| endpoint(**s).is_none())
        .map(|s| s.var())
        .collect();
    let needs: Vec<&str> = services.iter().map(|s| s.server()).collect();
    crate::gate(test, &needs.join(" and "), &missing)
}

/// SDK config from the environment, with local-testing defaults: region `us-east-1` and the fake
/// `test`/`test` credentials unless the environment names its own.
pub async fn sdk_config() -> aws_config::SdkConfig {
    let unset = |v: &str| std::env::var_os(v).is_none();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if unset("AWS_REGION") && unset("AWS_DEFAULT_REGION") {
        loader = loader.region(aws_config::Region::new("us-east-1"));
    }
    if unset("AWS_ACCESS_KEY_ID") && unset("AWS_PROFILE") {
        loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "testkit",
        ));
    }
    loader.load().await
}

/// The SDK config for `test` when [`available`] lets it run.
pub async fn local(test: &str, services: &[Service]) -> Option<aws_config::SdkConfig> {
    if available(test, services) {
        Some(sdk_config().await)
    } else {
        None
    }
}

/// A name no other test (or earlier run) uses: `<prefix>-<ulid>`, lower case (a valid table and
/// queue name).
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        ulid::Ulid::new().to_string().to_ascii_lowercase()
    )
}

/// A fresh table with every store on it; panics (naming the table) if it cannot be created.
pub async fn fresh_stores(client: aws_sdk_dynamodb::Client, prefix: &str) -> (Stores, String) {
    let table = unique(prefix);
    if let Err(e) = create_table(&client, &table).await {
        panic!("cannot create table {table}: {e}");
    }
    (aws_stores(DynamoTable::new(client, table.clone())), table)
}

/// A fresh delivery queue and its dead-letter queue: `(queue, dlq)`.
pub async fn fresh_queues(client: aws_sdk_sqs::Client, prefix: &str) -> (SqsQueue, SqsQueue) {
    let prefix = unique(prefix);
    match create_queues(&client, &prefix).await {
        Ok((queue_url, dlq_url)) => (
            SqsQueue::new(client.clone(), queue_url),
            SqsQueue::new(client, dlq_url),
        ),
        Err(e) => panic!("cannot create queues {prefix}: {e}"),
    }
}

/// A fresh Secrets Manager secret named `<prefix>-<unique>` holding `value`: its ARN.
pub async fn fresh_secret(
    client: &aws_sdk_secretsmanager::Client,
    prefix: &str,
    value: &str,
) -> String {
    let name = unique(prefix);
    match client
        .create_secret()
        .name(&name)
        .secret_string(value)
        .send()
        .await
    {
        Ok(out) => out.arn().expect("CreateSecret answers an ARN").to_owned(),
        Err(e) => panic!("cannot create secret {name}: {e}"),
    }
}

/// A fresh symmetric KMS key (moto): its ARN, for `SECRETS_KMS_KEY_ID`.
pub async fn fresh_kms_key(client: &aws_sdk_kms::Client) -> String {
    match client
        .create_key()
        .description(unique("relay-test"))
        .send()
        .await
    {
        Ok(out) => out
            .key_metadata()
            .and_then(|m| m.arn())
            .expect("CreateKey answers an ARN")
            .to_owned(),
        Err(e) => panic!(
            "cannot create a KMS key: {}",
            aws_sdk_kms::error::DisplayErrorContext(&e)
        ),
    }
}

/// Fresh AWS resources for one test: a table with every store, a delivery queue and its DLQ.
pub struct Resources {
    pub stores: Stores,
    pub table: String,
    pub queue: Arc<SqsQueue>,
    pub dlq: Arc<SqsQueue>,
}

impl Resources {
    /// On clients built from `sdk` (use [`Resources::with_clients`] for instrumented clients).
    pub async fn new(sdk: &aws_config::SdkConfig, prefix: &str) -> Self {
        Self::with_clients(
            aws_sdk_dynamodb::Client::new(sdk),
            aws_sdk_sqs::Client::new(sdk),
            prefix,
        )
        .await
    }

    pub async fn with_clients(
        dynamodb: aws_sdk_dynamodb::Client,
        sqs: aws_sdk_sqs::Client,
        prefix: &str,
    ) -> Self {
        let (stores, table) = fresh_stores(dynamodb, prefix).await;
        let (queue, dlq) = fresh_queues(sqs, prefix).await;
        Self {
            stores,
            table,
            queue: Arc::new(queue),
            dlq: Arc::new(dlq),
        }
    }

    /// [`local`] then [`Resources::new`]: `None` when `test` skips.
    pub async fn for_test(test: &str, prefix: &str) -> Option<Self> {
        Some(Self::new(&local(test, BOTH).await?, prefix).await)
    }
}
