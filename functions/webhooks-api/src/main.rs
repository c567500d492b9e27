//! API Gateway HTTP API function: the subscriptions management API.
//!
//! Builds the state once per cold start (AWS clients from the environment) and serves the same
//! `axum::Router` the local stack serves.

use relay_shared::config::from_process_env;
use webhooks_api::config::FunctionArgs;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    // JSON logs, and trace export when OTEL_EXPORTER_OTLP_ENDPOINT is set (docs/observability.md).
    let telemetry = relay_shared::logging::init_function("webhooks-api");
    let state = match from_process_env::<FunctionArgs>("webhooks-api") {
        Ok(args) => webhooks_api::aws::state(&args).await,
        Err(e) => Err(e),
    };
    let state = match state {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration");
            return Err(e.into());
        }
    };
    lambda_http::run(flushed(webhooks_api::router(state), telemetry)).await
}

/// The router (whose layer gives each request its root span, `routes::request_span`), with the
/// spans flushed before the response goes back: the runtime freezes the process once the
/// invocation returns.
fn flushed(router: axum::Router, telemetry: relay_shared::telemetry::Telemetry) -> axum::Router {
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
