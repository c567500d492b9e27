//! API Gateway HTTP API function: the subscriptions management API.
//!
//! Builds the state once per cold start (AWS clients from the environment) and serves the same
//! `axum::Router` the local stack serves.

use relay_shared::config::ProcessEnv;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    relay_shared::logging::init_json_logging();
    let state = match webhooks_api::aws::state_from_env(&ProcessEnv).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration");
            return Err(e.into());
        }
    };
    lambda_http::run(webhooks_api::router(state)).await
}
