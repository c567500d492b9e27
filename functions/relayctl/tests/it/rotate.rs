//! `relayctl webex-webhooks rotate-secret` and `ensure --secret-from arn:…` against a local
//! Secrets Manager (moto; skipped, with a note, unless `AWS_ENDPOINT_URL_SECRETS_MANAGER` is set,
//! e.g. by `scripts/start-local-aws`) and the shared fake Webex.

use testkit::aws::{local, Service};
use testkit::fake_webex::FakeWebex;

const TARGET: &str = "https://abc.execute-api.us-east-1.amazonaws.com/webex/telephony";

fn relayctl(args: Vec<String>, base: &str) -> tokio::task::JoinHandle<std::process::Output> {
    let base = base.to_owned();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_relayctl"))
            .args(args)
            .env("WEBEX_TOKEN", "t")
            .env("WEBEX_API_BASE_URL", base)
            .output()
            .unwrap()
    })
}

fn ensure_args(arn: &str) -> Vec<String> {
    [
        "webex-webhooks",
        "ensure",
        "--target-url",
        TARGET,
        "--secret-from",
        arn,
    ]
    .map(str::to_owned)
    .to_vec()
}

async fn create(client: &aws_sdk_secretsmanager::Client, value: &str) -> String {
    testkit::aws::fresh_secret(client, "webex-webhook-secret", value).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn begin_keeps_the_old_secret_as_previous_and_finish_drops_it() {
    let Some(sdk) = local(
        "rotate::begin_keeps_the_old_secret_as_previous_and_finish_drops_it",
        &[Service::SecretsManager],
    )
    .await
    else {
        return;
    };
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let arn = create(&client, "old-secret").await;
    let fake = FakeWebex::start(vec![]).await;
    let read = || async {
        let v = client
            .get_secret_value()
            .secret_id(&arn)
            .send()
            .await
            .unwrap();
        serde_json::from_str::<serde_json::Value>(v.secret_string().unwrap()).unwrap()
    };
    let run = |stage: &'static str| {
        let arn = arn.clone();
        tokio::task::spawn_blocking(move || {
            // No WEBEX_TOKEN: rotating touches Secrets Manager only.
            std::process::Command::new(env!("CARGO_BIN_EXE_relayctl"))
                .args([
                    "webex-webhooks",
                    "rotate-secret",
                    stage,
                    "--secret-arn",
                    &arn,
                ])
                .env_remove("WEBEX_TOKEN")
                .output()
                .unwrap()
        })
    };

    let out = run("begin").await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let begun = read().await;
    assert_eq!(begun["previous"], "old-secret");
    let new = begun["secret"].as_str().unwrap().to_owned();
    assert_eq!(new.len(), 64);
    assert!(
        stdout.contains("ensure") && !stdout.contains(&new),
        "{stdout}"
    );

    // A second begin would lose the old secret: refused.
    let out = run("begin").await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("under way"));

    // Webex gets the new current secret from the same ARN.
    let out = relayctl(ensure_args(&arn), &fake.base_url).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fake.webhooks()[0]["secret"], new.as_str());

    let out = run("finish").await.unwrap();
    assert!(out.status.success());
    assert_eq!(read().await, serde_json::json!({"secret": new}));
}

/// With one secret per org, `ensure` gives Webex the token's org's current secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_takes_the_token_orgs_secret_from_the_per_org_form() {
    let Some(sdk) = local(
        "rotate::ensure_takes_the_token_orgs_secret_from_the_per_org_form",
        &[Service::SecretsManager],
    )
    .await
    else {
        return;
    };
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let fake = FakeWebex::start(vec![]).await;
    fake.set_org("org-1");
    let arn = create(
        &client,
        r#"{"orgs": {"org-0": "other", "org-1": {"secret": "org-1-new", "previous": "org-1-old"}}}"#,
    )
    .await;
    let out = relayctl(ensure_args(&arn), &fake.base_url).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fake.webhooks()[0]["secret"], "org-1-new");

    fake.set_org("org-9");
    let out = relayctl(ensure_args(&arn), &fake.base_url).await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no current secret for org org-9"));
}
