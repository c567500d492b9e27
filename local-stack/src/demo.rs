//! `--demo`: the whole flow in one command. A verifying receiver on 127.0.0.1, an API key, a
//! subscription created through the API, the captured Webex telephony events signed and POSTed to
//! ingest, and each delivery shown as it arrives.

use std::time::Duration;

use anyhow::{bail, Context};
use relay_shared::signing::SigningSecret;
use relay_shared::webex::webex_signature;
use serde_json::json;

use crate::receiver;
use crate::seeds::seed001_envelopes;

pub const DEMO_API_KEY: &str = "wrk_demo_key_local_only_0000000000";
pub const DEMO_USER: &str = "demo-user";
pub const DEMO_ORG: &str =
    "Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi8xNzExMTdkNi04YjgyLTQ0Y2EtOThlOS1hYzExNTdmMmNkMWQ";

/// Runs the demo against the stack listening at `base` (the key must already be accepted).
pub async fn run(base: &str, webex_secret: &str) -> anyhow::Result<()> {
    let secret = SigningSecret::generate();
    let (receiver_url, mut deliveries) = receiver::start(secret.clone()).await?;
    println!("demo: receiver listening on {receiver_url} (verifies Standard Webhooks, X-Hook-Signature and X-ServiceHook-Signature)");
    let flaky_url = receiver_url.replace("/hook", "/flaky");
    println!(
        "demo: console: {base}/console/ (sign in with the API key: {DEMO_API_KEY})\n      \
         a webhook you create there with the URL {flaky_url} fails each delivery's first attempt (503) and accepts the next"
    );

    let http = reqwest::Client::new();
    let created = http
        .post(format!("{base}/api/hooks/webhooks"))
        .bearer_auth(DEMO_API_KEY)
        .json(&json!({
            "name": "demo receiver",
            "url": receiver_url,
            "eventTypes": ["telephony:created", "telephony:updated", "telephony:deleted"],
            "secret": secret.expose(),
            "rateLimitPerMinute": 100,
        }))
        .send()
        .await
        .context("creating the demo subscription")?;
    let status = created.status();
    let body: serde_json::Value = created.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!("creating the demo subscription failed: {status} {body}");
    }
    println!(
        "demo: POST /api/hooks/webhooks → {status}, subscription {}",
        body["id"].as_str().unwrap_or("?")
    );

    for (name, envelope) in seed001_envelopes() {
        let signature = webex_signature(webex_secret.as_bytes(), envelope.as_bytes());
        let resp = http
            .post(format!("{base}/webex/telephony"))
            .header("content-type", "application/json")
            .header("x-spark-signature", signature)
            .body(envelope)
            .send()
            .await
            .context("posting a seed event to ingest")?;
        println!(
            "demo: Webex `{name}` event (captured telephony webhook, in captured order) → POST /webex/telephony → {}",
            resp.status()
        );
    }

    for n in 1..=3 {
        let got = tokio::time::timeout(Duration::from_secs(15), deliveries.recv())
            .await
            .context("no delivery within 15 s")?
            .context("receiver stopped")?;
        println!(
            "demo: delivery {n}/3 {} webhook-id={} signatures: standard-webhooks={} x-hook={} x-servicehook={}\n      body: {}",
            got.event_type,
            got.delivery_id,
            ok(got.standard_ok),
            ok(got.hook_ok),
            ok(got.service_hook_ok),
            abbreviate(&got.body, 160),
        );
        if !got.all_valid() {
            bail!("delivery {n} failed signature verification");
        }
    }
    println!("demo: all three deliveries arrived and verified. The stack keeps running; press Ctrl-C to stop.");
    println!(
        "demo: open the console: {base}/console/ and sign in with the API key: {DEMO_API_KEY}"
    );
    Ok(())
}

fn ok(b: bool) -> &'static str {
    if b {
        "valid"
    } else {
        "INVALID"
    }
}

fn abbreviate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}
