//! Wiring on AWS (or any AWS-compatible endpoint: DynamoDB Local, moto, LocalStack).

use std::sync::Arc;

use relay_shared::adapters::aws::{aws_clients, aws_stores, DynamoTable, SqsQueue};
use relay_shared::clock::SystemClock;
use relay_shared::config::{required, ConfigError, Env};
use relay_shared::ports::Stores;

use crate::config::ApiConfig;
use crate::state::AppState;

/// The stores on the DynamoDB table named by `TABLE_NAME`.
pub async fn stores_from_env(env: &dyn Env) -> Result<Stores, ConfigError> {
    let table = required(env, "TABLE_NAME", "the DynamoDB table")?;
    let (ddb, _) = aws_clients().await;
    Ok(aws_stores(DynamoTable::new(ddb, table)))
}

/// The whole state from the environment: `TABLE_NAME`, `DELIVERY_QUEUE_URL`,
/// `DEAD_LETTER_QUEUE_URL`, plus the limits of [`ApiConfig::from_env`].
pub async fn state_from_env(env: &dyn Env) -> Result<AppState, ConfigError> {
    let config = ApiConfig::from_env(env)?;
    let table = required(env, "TABLE_NAME", "the DynamoDB table")?;
    let queue_url = required(env, "DELIVERY_QUEUE_URL", "the SQS delivery queue URL")?;
    let dlq_url = required(
        env,
        "DEAD_LETTER_QUEUE_URL",
        "the SQS dead-letter queue URL",
    )?;
    let (ddb, sqs) = aws_clients().await;
    let stores = aws_stores(DynamoTable::new(ddb, table));
    let queue = Arc::new(SqsQueue::new(sqs.clone(), queue_url));
    let dlq = Arc::new(SqsQueue::new(sqs, dlq_url));
    Ok(AppState::new(
        stores,
        queue,
        dlq,
        Arc::new(SystemClock),
        config,
    ))
}
