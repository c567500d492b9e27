//! Lambda entry point: JSON logs, AWS clients and the webhook secret once per cold start, then
//! `lambda_http::run(router)`.

use std::sync::Arc;

use relay_shared::adapters::aws::{aws_stores, DynamoTable, SqsQueue};
use relay_shared::clock::SystemClock;
use relay_shared::config::{required, ProcessEnv};
use telephony_ingest::config::{secret_from_secret_string, secret_source, SecretSource};
use telephony_ingest::{router, Ingest, IngestConfig, WebhookAuth};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    relay_shared::logging::init_json_logging();

    let env = ProcessEnv;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;

    let auth = match secret_source(&env)? {
        SecretSource::SecretsManager(arn) => {
            let client = aws_sdk_secretsmanager::Client::new(&sdk);
            let out = client
                .get_secret_value()
                .secret_id(&arn)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "reading the Webex webhook secret from Secrets Manager ({arn}): {}",
                        aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                    )
                })?;
            let raw = out
                .secret_string()
                .ok_or_else(|| format!("secret {arn} has no SecretString"))?;
            let secret = secret_from_secret_string(raw);
            if secret.is_empty() {
                return Err(format!("secret {arn} is empty").into());
            }
            WebhookAuth::secret(secret)
        }
        SecretSource::Plain(secret) => WebhookAuth::secret(secret.0),
        SecretSource::InsecureUnsigned => {
            tracing::error!(
                "ALLOW_UNSIGNED_WEBHOOKS=true and no webhook secret: every request is accepted WITHOUT signature \
                 verification. This is for local development only; never deploy it."
            );
            WebhookAuth::InsecureUnsigned
        }
    };
    let config = IngestConfig::from_env(&env, auth)?;

    let table = required(&env, "TABLE_NAME", "the DynamoDB table")?;
    let queue_url = required(&env, "DELIVERY_QUEUE_URL", "the delivery SQS queue URL")?;
    let stores = aws_stores(DynamoTable::new(aws_sdk_dynamodb::Client::new(&sdk), table));
    let queue = Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), queue_url));

    let ingest = Arc::new(Ingest::new(stores, queue, Arc::new(SystemClock), config));
    lambda_http::run(router(ingest)).await
}
