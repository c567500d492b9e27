//! Scheduled function: polls Webex presence and emits change-only user-presence events.
//! Clients are built once per cold start; every invocation runs `Poller::run` until its deadline.

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{service_fn, LambdaEvent};
use presence_poller::config::{FunctionArgs, TokenConfig};
use presence_poller::health::HealthCheck;
use presence_poller::org;
use presence_poller::token::{http_clients, RefreshingWebex, TokenSource};
use presence_poller::{handler, Poller};
use relay_shared::adapters::aws::secrets::{SecretsManager, SecretsManagerVault};
use relay_shared::adapters::aws::{aws_stores, DynamoTable, SqsQueue};
use relay_shared::adapters::memory::{memory_stores, MemoryQueue};
use relay_shared::adapters::webex_http::WebexHttpClient;
use relay_shared::clock::SystemClock;
use relay_shared::config::from_process_env;
use relay_shared::operational::{OperationalArgs, OperationalEmitter};
use relay_shared::ports::{DeliveryQueue, Stores};
use relay_shared::webex_token::{MemoryVault, TokenManager, TokenVault};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // JSON logs, and trace export when OTEL_EXPORTER_OTLP_ENDPOINT is set (docs/observability.md).
    let telemetry = relay_shared::logging::init_function("presence-poller");
    let args: FunctionArgs = from_process_env("presence-poller")?;
    let mut config = args.poller.config(&args.retention.retention())?;
    let rt = args.runtime.config()?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;

    let (stores, queue): (Stores, Arc<dyn DeliveryQueue>) =
        match (rt.memory, &rt.table_name, &rt.queue_url) {
            (false, Some(table), Some(queue_url)) => (
                aws_stores(DynamoTable::new(aws_sdk_dynamodb::Client::new(&sdk), table)),
                Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), queue_url)),
            ),
            _ => {
                tracing::warn!(
                    "PRESENCE_MEMORY_STORES=true: state and queue are in memory (local use only)"
                );
                (
                    memory_stores(),
                    Arc::new(MemoryQueue::new(Duration::from_secs(30))),
                )
            }
        };

    // The token record, refreshed ahead of expiry and after a 401 (one refresher at a time across
    // functions: the lease store's lease) and written back to its secret.
    let vault: Arc<dyn TokenVault> = match &rt.token {
        TokenConfig::Secret(arn) => Arc::new(SecretsManagerVault::new(
            SecretsManager::from_sdk_config(&sdk),
            arn,
        )),
        TokenConfig::Local(record) => Arc::new(MemoryVault::new("WEBEX_TOKEN", record.clone())),
    };
    let tokens: Arc<dyn TokenSource> = Arc::new(TokenManager::at_webex(
        &rt.webex_base_url,
        vault,
        stores.leases.clone(),
        Arc::new(SystemClock),
        "presence-poller",
    )?);
    // Fail the cold start on a bad base URL rather than every cycle.
    WebexHttpClient::new(&rt.webex_base_url, "")?;
    let webex = Arc::new(RefreshingWebex::new(
        tokens.clone(),
        http_clients(&rt.webex_base_url),
    ));
    if let Err(e) = webex.warm_up().await {
        // Not fatal: every cycle tries again (and logs).
        tracing::error!(error = %e, "could not read the Webex token or build the client at start-up");
    }

    // The token's own org: the org to poll when PRESENCE_ORG_ID is empty, and no `orgId` for it
    // (through the refreshing client: a 401 refreshes the token and retries).
    // Boxed: the HTTP future nested in `main`'s overflows rustc's layout depth limit.
    Box::pin(org::resolve(&mut config, webex.as_ref())).await?;
    tracing::info!(
        org_id = %config.org_id,
        token_org_id = ?config.token_org_id,
        location_id = ?config.location_id,
        interval_ms = config.poll_interval.as_millis() as u64,
        page_max = config.page_max(),
        calls_per_minute = config.webex_calls_per_minute,
        diff_fields = %config.diff_fields.names(),
        extra_fields = %config.extra_fields.names(),
        "presence poller ready"
    );
    // The Webex-side health check (WEBEX_HEALTH_TARGET_URL set), at most every interval.
    let health = args.health.config().map(|c| {
        tracing::info!(target_url = %c.target_url, interval_minutes = c.interval.num_minutes(), "Webex health check on");
        Arc::new(
            HealthCheck::new(webex.clone(), stores.leases.clone(), Arc::new(SystemClock), c)
                .with_secret(args.health.signing_secret(&sdk), org::signing_org(&config))
                .with_tokens(tokens.clone())
                // A reactivation is told to the watched org's subscribers (docs/operational-events.md).
                .with_operational(
                    OperationalEmitter::new(
                        stores.subscriptions.clone(),
                        queue.clone(),
                        stores.rate_limits.clone(),
                        Arc::new(SystemClock),
                        &OperationalArgs::default(),
                    ),
                    config.org_id.clone(),
                ),
        )
    });
    // A failed token refresh is told to the org's subscribers (webex:token-refresh-failed).
    let poller = Arc::new(
        Poller::new(&stores, webex, queue, Arc::new(SystemClock), config).with_tokens(tokens),
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (poller, health, telemetry) = (poller.clone(), health.clone(), telemetry.clone());
        // Boxed: inlined, the invocation's future (polling loop and health check side by side)
        // makes `main`'s too deep a type for clippy's layout pass (query depth overflow).
        Box::pin(async move {
            // One root span per invocation: what it queues carries its trace context.
            let span = presence_poller::invocation_span(Some(&event.context.request_id));
            let summary = tracing::Instrument::instrument(
                handler::handle_with_health(&poller, health.as_deref(), event),
                span,
            )
            .await;
            // Before the invocation returns: the runtime freezes the process after it.
            telemetry.flush().await;
            summary
        })
    }))
    .await
}
