//! SQS function: signs and POSTs delivery jobs with retries, attempt log and DLQ.
//!
//! Cold start: read the configuration, build the AWS clients, the secret opener (KMS, its data-key
//! cache shared by every batch of this container), the HTTP client (one connection pool,
//! SSRF-guarded resolver) and the worker once; then serve SQS batches.

use std::sync::Arc;

use delivery_worker::config::FunctionArgs;
use delivery_worker::http_sender::ReqwestSender;
use delivery_worker::{function_handler, Ports, Worker, WorkerConfig};
use lambda_runtime::{service_fn, LambdaEvent};
use relay_shared::adapters::aws::{aws_stores, delivery_queue, DynamoTable, SqsQueue};
use relay_shared::clock::SystemClock;
use relay_shared::config::from_process_env;
use relay_shared::ports::{CorePorts, QueueConsumer};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // JSON logs, and trace export when OTEL_EXPORTER_OTLP_ENDPOINT is set (docs/observability.md).
    let telemetry = relay_shared::logging::init_function("delivery-worker");
    let args: FunctionArgs = from_process_env("delivery-worker")?;
    let config = WorkerConfig::from_args(&args);
    let table = args.resources.table_name()?.to_owned();
    let queue_url = args.resources.delivery_queue_url()?.to_owned();
    let dlq_url = args.resources.dead_letter_queue_url()?.to_owned();
    // The ordered (FIFO) queue, whose batches come from the second event source: a held-back
    // retry changes its message's visibility there (docs/ordering.md).
    let ordered_url = args.resources.ordered_queue_url.clone();
    if ordered_url.is_some() {
        config.check_ordered()?;
    }
    tracing::info!(
        timeout_ms = config.delivery_timeout.as_millis() as u64,
        schedule = ?config.schedule.delays,
        jitter_percent = config.schedule.jitter_percent,
        allow_http = config.targets.allow_http,
        allow_private = config.targets.allow_private,
        allow_cidrs = ?config.targets.allow_cidrs,
        // Which key opens the signing secrets: the KMS key's id, or none (a local key, never logged).
        secrets_kms_key_id = ?args.secrets_key.kms_key_id,
        "delivery-worker starting"
    );

    // One SDK configuration per cold start, for DynamoDB, SQS and KMS alike.
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let secrets = args.secrets_key.key(Some(&sdk))?.opener();
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let http = Arc::new(ReqwestSender::new(
        config.targets.clone(),
        config.max_response_bytes,
    )?);
    let ports = Ports {
        core: CorePorts {
            stores: aws_stores(DynamoTable::new(dynamodb, table)),
            queue: Arc::new(delivery_queue(&sqs, &queue_url, ordered_url.as_deref())),
            clock: Arc::new(SystemClock),
        },
        http,
        dead_letter_sink: Arc::new(SqsQueue::new(sqs.clone(), dlq_url)),
        secrets,
    };
    let ordered: Option<Arc<dyn QueueConsumer>> =
        ordered_url.map(|url| Arc::new(SqsQueue::new(sqs, url)) as Arc<dyn QueueConsumer>);
    let worker = Arc::new(Worker::new(ports, config));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        let (worker, ordered, telemetry) = (worker.clone(), ordered.clone(), telemetry.clone());
        async move {
            let response = function_handler(worker, ordered, event).await;
            // Before the invocation returns: the runtime freezes the process after it.
            telemetry.flush().await;
            response
        }
    }))
    .await
}
