//! Lambda entry point: JSON logs, AWS clients and the webhook secret once per cold start, then
//! `lambda_http::run(router)`.

use std::sync::Arc;

use relay_shared::adapters::aws::{aws_stores, delivery_queue, DynamoTable};
use relay_shared::clock::SystemClock;
use relay_shared::config::from_process_env;
use relay_shared::ports::CorePorts;
use telephony_ingest::config::FunctionArgs;
use telephony_ingest::{router, Ingest};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    // JSON logs, and trace export when OTEL_EXPORTER_OTLP_ENDPOINT is set (docs/observability.md).
    let telemetry = relay_shared::logging::init_function("telephony-ingest");

    let args: FunctionArgs = from_process_env("telephony-ingest")?;
    let table = args.resources.table_name()?.to_owned();
    let queue_url = args.resources.delivery_queue_url()?.to_owned();
    // One SDK configuration per cold start, for Secrets Manager, DynamoDB and SQS alike.
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let auth = args.ingest.secret_source()?.load(Some(&sdk)).await?;
    let config = args.ingest.config(auth, &args.retention.retention());
    let stores = aws_stores(DynamoTable::new(aws_sdk_dynamodb::Client::new(&sdk), table));
    // Per-call-ordered webhooks' jobs go to the ordered (FIFO) queue (docs/ordering.md).
    let ordered_url = args.resources.ordered_queue_url.as_deref();
    let queue = Arc::new(delivery_queue(
        &aws_sdk_sqs::Client::new(&sdk),
        &queue_url,
        ordered_url,
    ));

    let ingest = Arc::new(Ingest::new(
        CorePorts {
            stores,
            queue,
            clock: Arc::new(SystemClock),
        },
        config,
    ));
    lambda_http::run(flush_after_each_request(router(ingest), telemetry)).await
}

/// Flushes the request's spans before its response goes back: the runtime freezes the process
/// once the invocation returns (a no-op with trace export off).
fn flush_after_each_request(
    router: axum::Router,
    telemetry: relay_shared::telemetry::Telemetry,
) -> axum::Router {
    router.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let telemetry = telemetry.clone();
            async move {
                let response = next.run(req).await;
                telemetry.flush().await;
                response
            }
        },
    ))
}
