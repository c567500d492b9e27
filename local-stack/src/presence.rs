//! The presence loop, when a Webex token (or a refresh token and its OAuth client) and an org are
//! configured: the real poller, run in back-to-back bounded runs (as the once-a-minute schedule
//! does on AWS).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use presence_poller::health::{HealthCheck, SigningSecret};
use presence_poller::token::{http_clients, RefreshingWebex};
use presence_poller::{Poller, RunOptions};
use relay_shared::adapters::aws::secrets::SecretsManager;
use relay_shared::operational::{OperationalArgs, OperationalEmitter};
use relay_shared::ports::Clock;
use relay_shared::webex_token::{MemoryVault, TokenManager, TokenSource};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::args::Args;
use crate::backend::Backend;

const RUN_LENGTH: Duration = Duration::from_secs(60);

pub async fn spawn(
    args: &Args,
    backend: &Backend,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    let (Some(record), Some(org)) = (args.webex.token_record(), &args.presence.presence_org) else {
        if args.webex.token_record().is_some() || args.presence.presence_org.is_some() {
            tracing::warn!("presence loop off: it needs a Webex token (--webex-token, or --webex-refresh-token with --webex-client-id and --webex-client-secret) and PRESENCE_ORG_ID (--presence-org)");
        }
        return Ok(None);
    };
    let mut config = args.presence.config(&args.retention.retention())?;
    // As on Lambda: the token in a record refreshed at `<base URL>/access_token` ahead of expiry
    // and after a 401 (here the record lives in memory).
    let tokens: Arc<dyn TokenSource> = Arc::new(TokenManager::at_webex(
        &args.webex.base_url,
        Arc::new(MemoryVault::new("--webex-token", record)),
        backend.stores.leases.clone(),
        clock.clone(),
        "local-stack",
    )?);
    let webex = Arc::new(RefreshingWebex::new(
        tokens.clone(),
        http_clients(&args.webex.base_url),
    ));
    // As on Lambda: `orgId` only when the org is not the token's own (`GET /people/me`, a 401
    // refreshing the token).
    presence_poller::org::resolve(&mut config, webex.as_ref())
        .await
        .map_err(anyhow::Error::msg)?;
    if let Some(health) = args.health.config() {
        // The ingest's own secret: --webex-secret, else --webex-health-secret-arn.
        let arn = args
            .health
            .webex_health_secret_arn
            .as_deref()
            .map(str::trim);
        let secret = match (&args.ingest.webex_secret, arn) {
            (Some(s), _) => SigningSecret::Fixed(s.clone()),
            (None, Some(arn)) if !arn.is_empty() => SigningSecret::SecretsManager {
                secrets: SecretsManager::from_env().await,
                arn: arn.to_owned(),
            },
            _ => SigningSecret::None,
        };
        let check = HealthCheck::new(
            webex.clone(),
            backend.stores.leases.clone(),
            clock.clone(),
            health,
        )
        .with_tokens(tokens.clone())
        .with_secret(secret, presence_poller::org::signing_org(&config))
        // As on Lambda: a reactivation is told to the org's subscribers (webex:webhook-reactivated).
        .with_operational(
            OperationalEmitter::new(
                backend.stores.subscriptions.clone(),
                backend.queue.clone(),
                backend.stores.rate_limits.clone(),
                clock.clone(),
                &OperationalArgs::default(),
            ),
            config.org_id.clone(),
        );
        println!(
            "webex health: checking {} every {} min",
            check.config().target_url,
            check.config().interval.num_minutes()
        );
        tokio::spawn(health_loop(check, clock.clone(), stop.clone()));
    }
    // A failed token refresh is told to the org's subscribers (webex:token-refresh-failed).
    let poller = Poller::new(&backend.stores, webex, backend.queue.clone(), clock, config)
        .with_tokens(tokens);
    println!("presence: polling {} for org {org}", args.webex.base_url);
    Ok(Some(tokio::spawn(async move {
        loop {
            // As on Lambda: each run (an invocation there) is one trace.
            let run = poller
                .run(RunOptions::until(
                    "local-stack",
                    Instant::now() + RUN_LENGTH,
                ))
                .instrument(presence_poller::invocation_span(None));
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

/// As the Lambda schedule does: the check at start, then whenever its interval has passed (the
/// lease decides; each attempt is a new holder, as each invocation is on AWS). Each outcome's EMF
/// line goes to stdout.
async fn health_loop(check: HealthCheck, clock: Arc<dyn Clock>, mut stop: watch::Receiver<bool>) {
    for attempt in 0u64.. {
        if let Some(outcome) = check
            .run_if_due(&format!("local-stack-health-{attempt}"))
            .await
        {
            println!("{}", outcome.emf_line(clock.now().timestamp_millis()));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
}
