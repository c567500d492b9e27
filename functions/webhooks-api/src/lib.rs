//! # webhooks-api
//!
//! The subscriptions management API (`/api/hooks/...`) as an [`axum::Router`]: served by
//! `lambda_http::run` on Lambda (see `main.rs`) and by `axum::serve` in the local stack and in
//! `examples/serve.rs`. Handlers only talk to the ports in [`relay_shared::ports`], so the same
//! router runs on the AWS adapters and the in-memory ones.
//!
//! Layout: one module per resource under [`routes`], [`error::ApiError`] (every failure as
//! `{"error","detail","field"?}`), [`auth::Caller`] (bearer-key extractor), [`extract`] (JSON,
//! query and path extractors that never leak framework rejections), [`idempotency`] (the
//! `Idempotency-Key` middleware).

pub mod auth;
pub mod aws;
pub mod config;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod model;
pub mod quota;
pub mod routes;
pub mod state;
pub mod validate;

pub use auth::{create_api_key, revoke_api_key, revoke_api_key_hash, store_api_key, Caller};
pub use config::ApiConfig;
pub use error::ApiError;
pub use routes::router;
pub use state::AppState;
