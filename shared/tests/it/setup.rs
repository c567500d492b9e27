//! Resource creation on the AWS side (no in-memory counterpart): `create_table` and
//! `create_queues` are idempotent, so the local stack's `--create-resources` can re-run.

use relay_shared::adapters::aws::{create_queues, create_table, TTL_ATTRIBUTE};

use crate::harness;

#[tokio::test]
async fn create_table_is_idempotent_and_matches_the_layout() {
    let Some(client) =
        harness::dynamodb("aws::setup::create_table_is_idempotent_and_matches_the_layout").await
    else {
        return;
    };
    let name = harness::unique("relay-setup");
    create_table(&client, &name).await.unwrap();
    create_table(&client, &name).await.unwrap();

    let table = client
        .describe_table()
        .table_name(&name)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let keys: Vec<_> = table
        .key_schema()
        .iter()
        .map(|k| {
            (
                k.attribute_name().to_owned(),
                k.key_type().as_str().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        vec![
            ("pk".to_owned(), "HASH".to_owned()),
            ("sk".to_owned(), "RANGE".to_owned())
        ]
    );
    let mut indexes: Vec<_> = table
        .global_secondary_indexes()
        .iter()
        .map(|g| {
            let keys: Vec<_> = g
                .key_schema()
                .iter()
                .map(|k| k.attribute_name().to_owned())
                .collect();
            let projection = g
                .projection()
                .and_then(|p| p.projection_type())
                .map(|p| p.as_str().to_owned());
            (
                g.index_name().unwrap_or_default().to_owned(),
                keys,
                projection,
            )
        })
        .collect();
    indexes.sort();
    let all = Some("ALL".to_owned());
    assert_eq!(
        indexes,
        vec![
            (
                "gsi1".to_owned(),
                vec!["gsi1pk".to_owned(), "gsi1sk".to_owned()],
                all.clone()
            ),
            (
                "gsi2".to_owned(),
                vec!["gsi2pk".to_owned(), "gsi2sk".to_owned()],
                all
            ),
        ]
    );
    let billing = table
        .billing_mode_summary()
        .and_then(|b| b.billing_mode())
        .map(|m| m.as_str().to_owned());
    assert_eq!(billing.as_deref(), Some("PAY_PER_REQUEST"));
    // TTL where the server implements it (DynamoDB Local does).
    if let Ok(ttl) = client
        .describe_time_to_live()
        .table_name(&name)
        .send()
        .await
    {
        if let Some(d) = ttl.time_to_live_description() {
            assert_eq!(d.attribute_name(), Some(TTL_ATTRIBUTE));
        }
    }
}

#[tokio::test]
async fn create_queues_is_idempotent_and_redrives() {
    let Some(client) = harness::sqs("aws::setup::create_queues_is_idempotent_and_redrives").await
    else {
        return;
    };
    let prefix = harness::unique("relay-setup");
    let first = create_queues(&client, &prefix).await.unwrap();
    let again = create_queues(&client, &prefix).await.unwrap();
    assert_eq!(first, again);
    let attrs = client
        .get_queue_attributes()
        .queue_url(&first.0)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .unwrap();
    let policy = attrs
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy))
        .cloned()
        .unwrap();
    let policy: serde_json::Value = serde_json::from_str(&policy).unwrap();
    assert_eq!(policy["maxReceiveCount"].to_string().trim_matches('"'), "5");
    assert!(policy["deadLetterTargetArn"]
        .as_str()
        .unwrap()
        .ends_with(&format!("{prefix}-dlq")));
}
