//! AWS adapters: DynamoDB (one table, laid out as in `docs/architecture-notes.md`) and SQS.
//!
//! * [`DynamoTable`] implements every storage port on the single table; [`aws_stores`] wraps it
//!   into [`Stores`]. [`create_table`] creates the table (tests, the local stack's
//!   `--create-resources`).
//! * [`secrets::SecretsManager`] reads the relay's secrets; [`secrets::parse_secret_string`] is
//!   the one `SecretString` rule ([`secrets::parse_webhook_secrets`] adds the webhook secret's
//!   rotation and per-org forms).
//! * [`kms::KmsKeys`] is the key service that wraps signing secrets' data keys
//!   (`crate::secrets_at_rest`).
//! * [`SqsQueue`] implements [`DeliveryQueue`](crate::ports::DeliveryQueue),
//!   [`QueueConsumer`](crate::ports::QueueConsumer) and
//!   [`DeadLetterSink`](crate::ports::DeadLetterSink); [`create_queues`] creates a queue and its
//!   dead-letter queue.
//!
//! Conventions shared by every DynamoDB adapter:
//! * conditional-check failures become [`StoreError::Conflict`](crate::error::StoreError) (or
//!   `LimitReached`, or a `false`/`Claim` answer where the port says so); transport and service
//!   errors become `StoreError::Unavailable` with the SDK's full error context;
//! * `expires_at` (Unix seconds, the table's TTL attribute) is checked by every reader, because TTL
//!   deletion is lazy (hours on AWS, never on DynamoDB Local);
//! * instants that need sub-second precision (lease ends) are stored as Unix milliseconds;
//! * pagination cursors are base64url JSON of the last returned item's key attributes (what
//!   DynamoDB calls `LastEvaluatedKey`); a cursor that does not decode, or that points into another
//!   partition, is `StoreError::BadCursor`.

mod api_keys;
mod attempts;
mod calls;
mod codec;
mod common;
mod dedupe;
mod events;
mod idempotency;
pub mod kms;
mod leases;
mod op_counter;
mod presence;
mod rate_limits;
pub mod secrets;
mod sqs;
mod stats;
mod subscriptions;
mod table;

use std::sync::Arc;

pub use common::{attribute_size, item_size, read_units, write_units};
pub use op_counter::{Capacity, OpCounter, RoundTracker};
pub use sqs::{
    create_fifo_queues, create_queues, delivery_queue, SqsQueue, MAX_HOLD_SECONDS,
    MAX_RECEIVE_COUNT, ORDERED_BATCH_SIZE, ORDERED_MAX_RECEIVE_COUNT,
};
pub use table::{create_table, TTL_ATTRIBUTE};

use crate::ports::Stores;

/// The cursor codec, reachable from the fuzz targets (fuzz/, docs/reliability.md); not an API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use std::collections::HashMap;

    use aws_sdk_dynamodb::types::AttributeValue;

    use crate::error::StoreError;

    pub fn encode_cursor(
        item: &HashMap<String, AttributeValue>,
        key_attrs: &[&str],
    ) -> Result<String, StoreError> {
        super::common::encode_cursor(item, key_attrs)
    }

    pub fn decode_cursor(
        cursor: &str,
        expected: &[(&str, Option<&str>)],
    ) -> Result<HashMap<String, AttributeValue>, StoreError> {
        super::common::decode_cursor(cursor, expected)
    }
}

/// The single DynamoDB table every store lives in. Cheap to clone (the client is an `Arc`).
#[derive(Debug, Clone)]
pub struct DynamoTable {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
}

impl DynamoTable {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

/// Every store, on one DynamoDB table.
pub fn aws_stores(table: DynamoTable) -> Stores {
    Stores {
        subscriptions: Arc::new(table.clone()),
        api_keys: Arc::new(table.clone()),
        calls: Arc::new(table.clone()),
        dedupe: Arc::new(table.clone()),
        presence: Arc::new(table.clone()),
        leases: Arc::new(table.clone()),
        attempts: Arc::new(table.clone()),
        events: Arc::new(table.clone()),
        rate_limits: Arc::new(table.clone()),
        idempotency: Arc::new(table.clone()),
        stats: Arc::new(table),
    }
}

/// The DynamoDB and SQS clients, built once (per cold start) from the environment: region,
/// credentials, and endpoint overrides (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`,
/// `AWS_ENDPOINT_URL_SQS`, honoured by the SDK itself).
pub async fn aws_clients() -> (aws_sdk_dynamodb::Client, aws_sdk_sqs::Client) {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    (
        aws_sdk_dynamodb::Client::new(&config),
        aws_sdk_sqs::Client::new(&config),
    )
}
