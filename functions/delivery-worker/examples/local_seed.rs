//! Prepares a local AWS-compatible backend (DynamoDB Local / moto / LocalStack) for trying the
//! worker with `cargo lambda watch` + `cargo lambda invoke --data-file events/delivery-job.json`:
//! creates the table and the queues and stores the subscription the sample event refers to,
//! pointing at `<target url>`. Prints the environment the function needs.
//!
//! ```sh
//! AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
//! AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8000 AWS_ENDPOINT_URL_SQS=http://127.0.0.1:5000 \
//! cargo run -p delivery-worker --example local_seed -- http://127.0.0.1:8080/hook
//! ```

use chrono::Utc;
use relay_shared::adapters::aws::{
    aws_clients, aws_stores, create_queues, create_table, DynamoTable,
};
use relay_shared::events::EventType;
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
    let sub = Subscription {
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
    match stores.subscriptions.create(&sub, 100).await {
        Ok(()) | Err(relay_shared::error::StoreError::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }
    println!("TABLE_NAME={table}");
    println!("DELIVERY_QUEUE_URL={queue_url}");
    println!("DEAD_LETTER_QUEUE_URL={dlq_url}");
    Ok(())
}
