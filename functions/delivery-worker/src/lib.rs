//! # delivery-worker
//!
//! Takes delivery jobs off the delivery queue (SQS), signs them and POSTs them to the
//! subscriber, with retries on a schedule, a per-subscription rate limit, an SSRF guard, an
//! attempt log and a dead-letter queue. See `docs/delivery-worker.md`.
//!
//! The core is [`Worker::process_message`]: one raw queue message in, one [`DeliveryOutcome`]
//! out. The Lambda handler ([`handler::function_handler`]) and the local stack's in-process
//! consumer loop ([`handler::run_consumer`]) both drive it; neither owns any delivery logic.
//!
//! Layout: [`worker`] (the pipeline and its [`Ports`]), [`outcome`] (what became of a message),
//! `attempt` (one signed POST, the classification of its result, its attempt-log row),
//! `subscriptions` (the warm subscription cache and health updates), [`schedule`] (retry delays),
//! [`ssrf`] and [`http_sender`] (the guarded reqwest sender), [`handler`] (the two drivers),
//! [`config`], [`metrics`].

mod attempt;
pub mod config;
pub mod handler;
pub mod http_sender;
pub mod metrics;
pub mod outcome;
pub mod schedule;
pub mod ssrf;
mod subscriptions;
pub mod worker;

pub use config::WorkerConfig;
pub use handler::{function_handler, run_consumer, run_ordered_consumer};
pub use metrics::{Metric, MetricsSink};
pub use outcome::{DeferReason, DeliveryOutcome};
pub use worker::{Ports, Worker};
