//! No log level lets a secret, an API key or a body out (relay_shared::logging): the stack at
//! its most verbose (`RUST_LOG=trace`, `--log-json`) goes through create, rotate, a signed
//! ingest and its delivery, and nothing it printed may contain what it was given or handed out.
//! On the AWS adapters the table must not hold either signing secret in the clear either: every
//! item, the subscription's and the idempotency record of its create among them
//! (docs/security.md).

use std::time::Duration;

use relay_shared::signing::SigningSecret;
use serde_json::json;

use crate::support::*;

async fn most_verbose_logs_carry_no_secret(aws: bool) {
    let receiver = Receiver::start(Behaviour::Ok).await;
    let stack = Stack::start_with_env(
        &["--log-json", "--retry-schedule", "0,1,1,1,1"],
        &[("RUST_LOG", "trace")],
        aws,
    )
    .await;
    let created_secret = SigningSecret::generate();
    // Created with an Idempotency-Key, so the table also holds the stored answer.
    let created = stack
        .http
        .post(format!("{}/api/hooks/webhooks", stack.base))
        .bearer_auth(USER_KEY)
        .header("Idempotency-Key", "secret-logs-create")
        .json(&json!({
            "name": "secret logs",
            "url": receiver.url,
            "eventTypes": ["telephony:created", "telephony:updated", "telephony:deleted"],
            "secret": created_secret.expose(),
            "rateLimitPerMinute": 1000000
        }))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status().as_u16(), 201, "create");
    let created: serde_json::Value = created.json().await.expect("create answer");
    let id = created["id"].as_str().expect("created id").to_owned();
    let (status, rotated) = stack
        .api(
            reqwest::Method::POST,
            &format!("/api/hooks/webhooks/{id}/rotate-secret"),
            USER_KEY,
            Some(json!({"gracePeriodSeconds": 3600})),
        )
        .await;
    assert_eq!(status, 200, "rotate: {rotated}");
    let rotated_secret = rotated["secret"]
        .as_str()
        .expect("rotated secret")
        .to_owned();
    let (status, _) = stack
        .api(reqwest::Method::GET, "/api/hooks/webhooks", ADMIN_KEY, None)
        .await;
    assert_eq!(status, 200, "the admin key is used too");

    let (envelope, _) = seed_envelopes().remove(0);
    assert_eq!(stack.ingest(&envelope).await, 200);
    assert_eq!(
        receiver
            .wait_for_successes(1, Duration::from_secs(30))
            .await,
        1,
        "delivered; log:\n{}",
        stack.log(30)
    );

    let output = stack.output();
    assert!(
        output
            .lines()
            .any(|l| l.starts_with('{') && l.contains("\"level\"")),
        "JSON log lines were captured:\n{output}"
    );
    // No secrets key given: the stack generated one and says so, naming it by its id only (the
    // key itself is nowhere to compare against: it never leaves the process).
    assert!(
        output
            .lines()
            .any(|l| l.contains("generated for this run") && l.contains("local:")),
        "the generated secrets key is announced:\n{output}"
    );
    let secrets = [
        (
            "the created signing secret",
            created_secret.expose().to_owned(),
        ),
        ("the rotated signing secret", rotated_secret),
        ("the Webex webhook secret", WEBEX_SECRET.to_owned()),
        ("the user API key", USER_KEY.to_owned()),
        ("the admin API key", ADMIN_KEY.to_owned()),
    ];
    for (what, secret) in &secrets {
        // The key material without its `whsec_` prefix too (a store may keep it so).
        let bare = secret.strip_prefix("whsec_").unwrap_or(secret);
        if let Some(line) = output.lines().find(|l| l.contains(bare)) {
            panic!("{what} is in the stack's output (RUST_LOG=trace):\n{line}");
        }
    }
    if let Some(table) = &stack.table {
        let items = table_items(table).await;
        // Read in full: the subscription's stored document (its target URL) is in the text.
        assert!(
            items
                .iter()
                .any(|i| i.contains(&id) && i.contains(&receiver.url)),
            "the subscription is among the {} items read",
            items.len()
        );
        for (what, secret) in &secrets[..2] {
            let bare = secret.strip_prefix("whsec_").unwrap_or(secret);
            if let Some(item) = items.iter().find(|i| i.contains(bare)) {
                panic!("{what} is stored in the clear in table {table}:\n{item}");
            }
        }
    }
    stack.stop().await;
}

/// Every item of `table`, each as its debug text (a scan on the stack's DynamoDB Local).
async fn table_items(table: &str) -> Vec<String> {
    let sdk = testkit::aws::sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan the stack's table");
        items.extend(page.items().iter().map(|i| format!("{i:?}")));
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return items;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn most_verbose_logs_carry_no_secret_in_memory() {
    most_verbose_logs_carry_no_secret(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn most_verbose_logs_carry_no_secret_on_aws_adapters() {
    if aws_available("most_verbose_logs_carry_no_secret_on_aws_adapters") {
        most_verbose_logs_carry_no_secret(true).await;
    }
}
