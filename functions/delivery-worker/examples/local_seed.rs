//! Prepares a local AWS-compatible backend (DynamoDB Local / moto / LocalStack) for trying the
//! worker with `cargo lambda watch` + `cargo lambda invoke --data-file events/delivery-job.json`:
//! creates the table and the queues and stores the subscription the sample event refers to,
//! pointing at `<target url>`, its secret sealed under a fresh local key (as the API stores it).
//! Prints the environment the function needs, that key (`SECRETS_LOCAL_KEY`) included.
//!
//! ```sh
//! AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
//! AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8000 AWS_ENDPOINT_URL_SQS=http://127.0.0.1:5000 \
//! cargo run -p delivery-worker --example local_seed -- http://127.0.0.1:8080/hook
//! ```

use std::sync::Arc;

use base64::Engine as _;
use chrono::Utc;
use rand::RngCore;
use relay_shared::adapters::aws::{
    aws_clients, aws_stores, create_queues, create_table, DynamoTable,
};
use relay_shared::events::EventType;
use relay_shared::secrets_at_rest::{LocalKey, SecretSealer};
use relay_shared::subscription::Subscription;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = std::env::args()
        .nth(1)
        .ok_or("usage: local_seed <target url> [table] [queue prefix]")?;
    let table = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "webex-relay-local".into());
    let prefix = std::env::args()
        .nth(3)
        .unwrap_or_else(|| "webex-relay-local-delivery".into());
    let event: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/delivery-job.json"
    ))?)?;
    let body = event["Records"][0]["body"]
        .as_str()
        .ok_or("no body in events/delivery-job.json")?;
    let job: relay_shared::delivery::DeliveryJob = serde_json::from_str(body)?;

    let (dynamodb, sqs) = aws_clients().await;
    create_table(&dynamodb, &table).await?;
    let (queue_url, dlq_url) = create_queues(&sqs, &prefix).await?;
    let stores = aws_stores(DynamoTable::new(dynamodb, table.clone()));
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let sealer = SecretSealer::new(Arc::new(LocalKey::from_bytes(key)));
    let mut sub = Subscription {
        id: job.subscription_id,
        name: "local demo".into(),
        ..Subscription::new(
            "local-user",
            job.org_id.clone(),
            target,
            EventType::ALL.to_vec(),
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            Utc::now(),
        )
    };
    sub.secret = sealer
        .seal_if_plain(&sub.secret, &sub.secret_context())
        .await?;
    match stores.subscriptions.create(&sub, 100).await {
        Ok(()) => {}
        // Seeded by an earlier run, sealed under that run's key: store it under this one.
        Err(relay_shared::error::StoreError::Conflict(_)) => {
            if let Some(old) = stores.subscriptions.get(&sub.id).await? {
                sub.version = old.version + 1;
                stores.subscriptions.update(&sub).await?;
            }
        }
        Err(e) => return Err(e.into()),
    }
    println!("TABLE_NAME={table}");
    println!("DELIVERY_QUEUE_URL={queue_url}");
    println!("DEAD_LETTER_QUEUE_URL={dlq_url}");
    // A local key for a local demo only: on AWS the template's KMS key does this.
    println!(
        "SECRETS_LOCAL_KEY={}",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    Ok(())
}
