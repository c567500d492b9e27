//! Serves the webhooks API on 127.0.0.1 with in-memory adapters and a known admin API key
//! (schemathesis, manual poking). Not for production.
//!
//! ```text
//! RELAY_API_KEY=wrk_local_test_key PORT=8787 cargo run -p webhooks-api --example serve
//! ```
//!
//! Env: `PORT` (0 = any free port; the chosen address is printed as `listening on http://…`),
//! `RELAY_API_KEY` (default `wrk_local_admin_key_for_tests_only_000000`), `RELAY_API_USER`,
//! `RELAY_API_ORG`, plus every setting of `webhooks_api::config::FunctionArgs` (e.g. `MAX_WEBHOOKS_PER_USER`).

use std::sync::Arc;
use std::time::Duration;

use relay_shared::adapters::memory::{memory_stores, MemoryQueue};
use relay_shared::auth::Role;
use relay_shared::clock::SystemClock;
use relay_shared::config::{parse_command_line, ConfigError};
use relay_shared::ports::CorePorts;
use relay_shared::secrets_at_rest::{LocalKey, SecretSealer};
use webhooks_api::config::FunctionArgs;
use webhooks_api::{router, store_api_key, ApiConfig, AppState};

pub const DEFAULT_KEY: &str = "wrk_local_admin_key_for_tests_only_000000";

#[derive(clap::Parser)]
struct Serve {
    /// 0 = any free port.
    #[arg(long, env = "PORT", default_value_t = 8787)]
    port: u16,
    /// The admin API key to accept.
    #[arg(long, env = "RELAY_API_KEY", default_value = DEFAULT_KEY, hide_env_values = true)]
    key: String,
    #[arg(long, env = "RELAY_API_USER", default_value = "local-user")]
    user: String,
    #[arg(long, env = "RELAY_API_ORG", default_value = "local-org")]
    org: String,
    #[command(flatten)]
    api: FunctionArgs,
}

#[tokio::main]
async fn main() {
    let Serve {
        port,
        key,
        user,
        org,
        api,
    } = parse_command_line();
    let config = ApiConfig::from_args(&api).unwrap_or_else(|e| panic!("{e}"));
    // `SECRETS_LOCAL_KEY` when given; otherwise a fresh local key (secrets live as long as the
    // process, like the in-memory stores).
    let sealer = match api.secrets_key.key(None) {
        Ok(key) => key.sealer(),
        Err(ConfigError::Missing { .. }) => {
            println!("no SECRETS_LOCAL_KEY: sealing signing secrets with a fresh local key");
            SecretSealer::new(Arc::new(LocalKey::generate()))
        }
        Err(e) => panic!("{e}"),
    };

    let stores = memory_stores();
    store_api_key(&stores, &key, &user, &org, Role::Admin)
        .await
        .expect("storing the key");
    let dlq = Arc::new(MemoryQueue::new(Duration::from_secs(30)));
    let queue = Arc::new(MemoryQueue::new(Duration::from_secs(30)));
    let state = AppState::new(
        CorePorts {
            stores,
            queue,
            clock: Arc::new(SystemClock),
        },
        dlq,
        sealer,
        config,
    );

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("binding 127.0.0.1");
    println!(
        "listening on http://{}",
        listener.local_addr().expect("bound address")
    );
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .expect("serving");
}
