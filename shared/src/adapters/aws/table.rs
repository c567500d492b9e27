//! Creating the single table (tests, and the local stack's `--create-resources`). Production
//! creates it from `template.yaml` with the same definition.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;

use super::common::{build_error, error_code, store_error};
use crate::error::StoreError;

/// The table's TTL attribute (Unix seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// How long [`create_table`] waits for the table to become ACTIVE.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);

fn key_element(name: &str, key_type: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(build_error)
}

fn gsi(name: &str) -> Result<GlobalSecondaryIndex, StoreError> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key_element(&format!("{name}pk"), KeyType::Hash)?)
        .key_schema(key_element(&format!("{name}sk"), KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(build_error)
}

/// Creates the table as `docs/architecture-notes.md` lays it out — `pk`/`sk` (S), GSIs `gsi1`
/// (`gsi1pk`/`gsi1sk`) and `gsi2` (`gsi2pk`/`gsi2sk`) projecting ALL, PAY_PER_REQUEST — waits until
/// it and its indexes are ACTIVE, then enables TTL on `expires_at` (a server that does not
/// implement TTL is tolerated: every reader checks `expires_at` anyway).
///
/// An existing table of that name is accepted as is (so a local stack can re-run it).
pub async fn create_table(client: &Client, name: &str) -> Result<(), StoreError> {
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element("pk", KeyType::Hash)?)
        .key_schema(key_element("sk", KeyType::Range)?)
        .global_secondary_indexes(gsi("gsi1")?)
        .global_secondary_indexes(gsi("gsi2")?);
    for attr in ["pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk"] {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attr)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_error)?,
        );
    }
    match req.send().await {
        Ok(_) => {}
        Err(e) if error_code(&e) == Some("ResourceInUseException") => {}
        Err(e) => return Err(store_error("CreateTable", e)),
    }
    wait_until_active(client, name).await?;
    enable_ttl(client, name).await
}

async fn wait_until_active(client: &Client, name: &str) -> Result<(), StoreError> {
    let deadline = Instant::now() + ACTIVE_TIMEOUT;
    loop {
        let res = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| store_error("DescribeTable", e))?;
        let active = res.table().is_some_and(|t| {
            t.table_status() == Some(&TableStatus::Active)
                && t.global_secondary_indexes()
                    .iter()
                    .all(|i| i.index_status() == Some(&IndexStatus::Active))
        });
        if active {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(StoreError::Unavailable(format!(
                "table {name} is not ACTIVE after {ACTIVE_TIMEOUT:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn enable_ttl(client: &Client, name: &str) -> Result<(), StoreError> {
    let spec = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(TTL_ATTRIBUTE)
        .build()
        .map_err(build_error)?;
    match client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(spec)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => {
            let code = error_code(&e).unwrap_or_default().to_owned();
            let message = aws_sdk_dynamodb::error::ProvideErrorMetadata::message(&e)
                .unwrap_or_default()
                .to_ascii_lowercase();
            let tolerated = matches!(
                code.as_str(),
                "UnknownOperationException" | "NotImplemented" | "NotImplementedException"
            ) || message.contains("not supported")
                || message.contains("not implemented")
                || message.contains("already enabled");
            if tolerated {
                tracing::warn!(
                    table = name,
                    code,
                    "TTL not enabled on this server; readers check expires_at themselves"
                );
                Ok(())
            } else {
                Err(store_error("UpdateTimeToLive", e))
            }
        }
    }
}
