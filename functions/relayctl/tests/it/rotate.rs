//! `relayctl webex-webhooks rotate-secret` against a local Secrets Manager (moto; skipped, with a
//! note, unless `AWS_ENDPOINT_URL_SECRETS_MANAGER` is set, e.g. by `scripts/start-local-aws`).

use testkit::aws::{local, unique, Service};

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
    let arn = client
        .create_secret()
        .name(unique("webex-webhook-secret"))
        .secret_string("old-secret")
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
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

    let out = run("finish").await.unwrap();
    assert!(out.status.success());
    assert_eq!(read().await, serde_json::json!({"secret": new}));
}
