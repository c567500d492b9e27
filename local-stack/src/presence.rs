//! The presence loop, when a Webex token and an org are configured: the real poller, run in
//! back-to-back bounded runs (as the once-a-minute schedule does on AWS).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use presence_poller::{Poller, RunOptions};
use relay_shared::adapters::webex_http::WebexHttpClient;
use relay_shared::ports::{Clock, WebexClient};
use secrecy::ExposeSecret;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::args::Args;
use crate::backend::Backend;

const RUN_LENGTH: Duration = Duration::from_secs(60);

pub async fn spawn(
    args: &Args,
    backend: &Backend,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    let (Some(token), Some(org)) = (&args.webex.token, &args.presence.presence_org) else {
        if args.webex.token.is_some() || args.presence.presence_org.is_some() {
            tracing::warn!("presence loop off: it needs both WEBEX_TOKEN (--webex-token) and PRESENCE_ORG_ID (--presence-org)");
        }
        return Ok(None);
    };
    let mut config = args.presence.config()?;
    // As on Lambda: `orgId` only when the org is not the token's own (`GET /people/me`).
    presence_poller::org::resolve(&mut config, &args.webex.base_url, token.expose_secret())
        .await
        .map_err(anyhow::Error::msg)?;
    // The poller honours Retry-After itself, bounded by its run: no client-side retries.
    let webex: Arc<dyn WebexClient> = Arc::new(
        WebexHttpClient::new(&args.webex.base_url, token.expose_secret())?
            .with_retries(0, Duration::ZERO),
    );
    let poller = Poller::new(&backend.stores, webex, backend.queue.clone(), clock, config);
    println!("presence: polling {} for org {org}", args.webex.base_url);
    Ok(Some(tokio::spawn(async move {
        loop {
            let run = poller.run(RunOptions::until(
                "local-stack",
                Instant::now() + RUN_LENGTH,
            ));
            tokio::select! {
                summary = run => tracing::info!(summary = ?summary, "presence run finished"),
                _ = stop.wait_for(|s| *s) => break,
            }
            if *stop.borrow() {
                break;
            }
        }
    })))
}
