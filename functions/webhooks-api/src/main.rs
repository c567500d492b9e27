//! API Gateway HTTP API function: the subscriptions management API.
//!
//! Builds the state once per cold start (AWS clients from the environment) and serves the same
//! `axum::Router` the local stack serves.

use relay_shared::config::from_process_env;
use webhooks_api::config::FunctionArgs;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    relay_shared::logging::init_json_logging();
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
    lambda_http::run(webhooks_api::router(state)).await
}
