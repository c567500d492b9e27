//! `local-stack`: every webex-relay function in one process. The ingest and API routers on one
//! HTTP listener (same paths as API Gateway), the real delivery-worker code consuming the delivery
//! queue in-process, and the presence loop when configured — on the embedded in-memory store or
//! on any AWS-compatible endpoint.

// Allocation-heavy (a JSON body per event, per queue message, per attempt): glibc's malloc cost
// about a quarter of the CPU under bench-e2e.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod args;
mod backend;
mod demo;
mod presence;
mod receiver;
mod seeds;

use std::sync::Arc;

use anyhow::Context;
use delivery_worker::http_sender::ReqwestSender;
use delivery_worker::{run_consumer, run_ordered_consumer, MetricsSink, Ports, Worker};
use relay_shared::auth::Role;
use relay_shared::clock::SystemClock;
use relay_shared::config::{parse_command_line, ConfigError, SecretsKey};
use relay_shared::error::StoreError;
use relay_shared::ports::{Clock, CorePorts};
use relay_shared::webex::WebhookSecrets;
use secrecy::ExposeSecret;
use telephony_ingest::config::SecretSource;
use telephony_ingest::{Ingest, WebhookAuth};
use tokio::sync::watch;
use webhooks_api::{store_api_key, AppState};

use crate::args::{ApiKeySpec, Args, LOCAL_WEBEX_SECRET};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args: Args = parse_command_line();
    let telemetry = init_logging(args.log_json);
    if args.demo {
        args.targets.allow_private_targets = true;
        args.api_keys.push(format!(
            "{}={}:{}",
            demo::DEMO_API_KEY,
            demo::DEMO_USER,
            demo::DEMO_ORG
        ));
    }
    let aws = args.aws || std::env::var_os("AWS_ENDPOINT_URL").is_some();
    // Local receivers are plain http as well as private.
    let mut targets = args.targets.policy();
    if targets.allow_private {
        targets.allow_http = true;
        tracing::warn!(
            "ALLOW_PRIVATE_TARGETS is ON: deliveries may reach loopback and private addresses and plain http URLs. \
             Local use only; the deployed template keeps it off."
        );
    }

    // Each function configured from its own parsed flags, as on Lambda from its variables.
    let retention = args.retention.retention();
    let worker_config = args
        .worker
        .config(targets.clone(), args.rate.per_minute, &retention);
    let api_config = args.api.config(targets, args.rate.per_minute, retention)?;
    let webhook_secret = match args.ingest.secret_source() {
        Err(ConfigError::Missing { .. }) => {
            SecretSource::Plain(WebhookSecrets::single(LOCAL_WEBEX_SECRET.into(), None))
        }
        source => source?,
    };
    let ingest_auth = webhook_secret.load(None).await?;
    let visibility = backend::visibility_seconds(worker_config.delivery_timeout);
    let backend = if aws {
        backend::aws(&args, visibility).await?
    } else {
        backend::memory(args.store_capacity, visibility)
    };
    if backend.ordered_consumer.is_some() {
        // As the Lambda worker with ORDERED_QUEUE_URL: a schedule the ordered queue cannot hold
        // is refused at start (docs/ordering.md).
        worker_config.check_ordered()?;
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let secrets_key = secrets_key(&args, aws).await?;

    for spec in &args.api_keys {
        let spec: ApiKeySpec = spec
            .parse()
            .map_err(|e| anyhow::anyhow!("--api-key: {e}"))?;
        let role = if spec.admin { Role::Admin } else { Role::User };
        match store_api_key(
            &backend.stores,
            &spec.key,
            &spec.user_id,
            &spec.org_id,
            role,
        )
        .await
        {
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e).context("storing an API key"),
        }
    }

    let demo_secret = match &ingest_auth {
        // The demo signs as Webex would for the demo org: with its current secret.
        WebhookAuth::Signed(s) => s
            .signing_secret(Some(demo::DEMO_ORG))
            .map_or(LOCAL_WEBEX_SECRET.to_owned(), |s| {
                s.expose_secret().to_owned()
            }),
        WebhookAuth::InsecureUnsigned => LOCAL_WEBEX_SECRET.to_owned(),
    };
    let ingest_config = args.ingest.config(ingest_auth, &retention);
    // The ports every function core shares in this one process.
    let core = CorePorts {
        stores: backend.stores.clone(),
        queue: backend.queue.clone(),
        clock: clock.clone(),
    };
    let ingest = Ingest::new(core.clone(), ingest_config);
    // Its EMF lines (one per request) only with --log-json, as the worker's below.
    let ingest = Arc::new(if args.log_json {
        ingest
    } else {
        ingest.with_metrics(Arc::new(|_| {}))
    });
    // The key that wraps signing secrets at rest: the API seals with it, the worker opens.
    let api_state = AppState::new(
        core.clone(),
        backend.dead_letter_source.clone(),
        secrets_key.sealer(),
        api_config,
    );
    let app = telephony_ingest::router(ingest).merge(webhooks_api::router(api_state));

    let http = Arc::new(ReqwestSender::new(
        worker_config.targets.clone(),
        worker_config.max_response_bytes,
    )?);
    // CloudWatch EMF metric lines on stdout as on Lambda with --log-json; they would only clutter
    // the human-readable output otherwise.
    let metrics = if args.log_json {
        MetricsSink::Stdout
    } else {
        MetricsSink::Off
    };
    let worker = Arc::new(Worker::with_metrics(
        Ports {
            core,
            http,
            dead_letter_sink: backend.dead_letter_sink.clone(),
            secrets: secrets_key.opener(),
        },
        worker_config,
        Arc::new(metrics),
    ));

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    for _ in 0..args.consumers.max(1) {
        let mut rx = stop_rx.clone();
        tasks.push(tokio::spawn(run_consumer(
            worker.clone(),
            backend.consumer.clone(),
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            },
        )));
    }
    // The ordered queue's consumer (the second event source on Lambda): one loop, its batch's
    // groups run concurrently (docs/ordering.md). One, not `--consumers`: SQS FIFO hands no
    // consumer a group another has in flight, but moto (the `--aws` tests) was seen to hand a
    // group's later messages to a second consumer while the first still held the group.
    if let Some(ordered) = backend.ordered_consumer.clone() {
        let mut rx = stop_rx.clone();
        tasks.push(tokio::spawn(run_ordered_consumer(
            worker.clone(),
            ordered,
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            },
        )));
    }
    if let Some(handle) = presence::spawn(&args, &backend, clock.clone(), stop_rx.clone()).await? {
        tasks.push(handle);
    }

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!(
        "listening on http://{addr} ({}; ingest POST /webex/telephony, API /api/hooks/...)",
        backend.description
    );

    if args.demo {
        let base = format!("http://{addr}");
        let secret = demo_secret;
        tokio::spawn(async move {
            if let Err(e) = demo::run(&base, &secret).await {
                eprintln!("demo failed: {e:#}");
            }
        });
    }

    let mut rx = stop_rx.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = rx.wait_for(|stop| *stop).await;
    });
    tokio::spawn(async move {
        shutdown_signal().await;
        println!("shutting down: finishing in-flight deliveries…");
        let _ = stop_tx.send(true);
    });
    server.await?;
    for t in tasks {
        let _ = t.await;
    }
    // The last batch of spans (export on: OTEL_EXPORTER_OTLP_ENDPOINT).
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    println!("stopped");
    Ok(())
}

/// The key both functions use (they share it, as on AWS): `--secrets-kms-key-id` (with the AWS
/// backend), `--secrets-local-key`, or else a local key generated for this run, which the log
/// says (never the key itself).
async fn secrets_key(args: &Args, aws: bool) -> anyhow::Result<SecretsKey> {
    let sdk = if aws && args.secrets_key.kms_key_id.is_some() {
        Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
    } else {
        None
    };
    match args.secrets_key.key(sdk.as_ref()) {
        Err(ConfigError::Missing { .. }) => {
            let key = relay_shared::secrets_at_rest::LocalKey::generate();
            tracing::warn!(
                key_id = key.key_id(),
                "no --secrets-local-key (SECRETS_LOCAL_KEY) or --secrets-kms-key-id: signing secrets are sealed \
                 with a local key generated for this run, so a later run cannot open what this one stores"
            );
            Ok(SecretsKey::Local(Arc::new(key)))
        }
        key => Ok(key?),
    }
}

/// Logs, and trace export as the `OTEL_*` variables say (docs/observability.md, "Tracing").
fn init_logging(json: bool) -> relay_shared::telemetry::Telemetry {
    use relay_shared::logging::{init, LogFormat};
    let format = if json {
        LogFormat::Json
    } else {
        LogFormat::Compact
    };
    init(format, "warn,local_stack=info", "local-stack")
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
