//! Wiring on AWS (or any AWS-compatible endpoint: DynamoDB Local, moto, LocalStack).

use std::sync::Arc;

use relay_shared::adapters::aws::{aws_clients, aws_stores, delivery_queue, DynamoTable, SqsQueue};
use relay_shared::clock::SystemClock;
use relay_shared::config::{ConfigError, Resources};
use relay_shared::ports::{CorePorts, Stores};

use crate::config::{ApiConfig, FunctionArgs};
use crate::state::AppState;

/// The stores on the DynamoDB table named by `TABLE_NAME`.
pub async fn stores(resources: &Resources) -> Result<Stores, ConfigError> {
    let table = resources.table_name()?.to_owned();
    let (ddb, _) = aws_clients().await;
    Ok(aws_stores(DynamoTable::new(ddb, table)))
}

/// The whole state, built once per cold start: `TABLE_NAME`, `DELIVERY_QUEUE_URL`,
/// `ORDERED_QUEUE_URL` (per-call-ordered webhooks' replays and redrives), `DEAD_LETTER_QUEUE_URL`, the secrets key (`SECRETS_KMS_KEY_ID` or `SECRETS_LOCAL_KEY`), plus
/// the limits of [`ApiConfig::from_args`].
pub async fn state(args: &FunctionArgs) -> Result<AppState, ConfigError> {
    let config = ApiConfig::from_args(args)?;
    let table = args.resources.table_name()?.to_owned();
    let queue_url = args.resources.delivery_queue_url()?.to_owned();
    let dlq_url = args.resources.dead_letter_queue_url()?.to_owned();
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let sealer = args.secrets_key.key(Some(&sdk))?.sealer();
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let stores = aws_stores(DynamoTable::new(ddb, table));
    let ordered_url = args.resources.ordered_queue_url.as_deref();
    let queue = Arc::new(delivery_queue(&sqs, &queue_url, ordered_url));
    let dlq = Arc::new(SqsQueue::new(sqs, dlq_url));
    let clock = Arc::new(SystemClock);
    Ok(AppState::new(
        CorePorts {
            stores,
            queue,
            clock,
        },
        dlq,
        sealer,
        config,
    ))
}
