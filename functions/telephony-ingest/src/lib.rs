//! # telephony-ingest
//!
//! The endpoint Webex calls for `telephony_calls` webhooks (`POST /webex/telephony`, API Gateway
//! HTTP API payload v2). In order: size limit (413) → signature (401) → parse (400; other
//! resources 202) → freshness (200 `stale`, not relayed) → call lifecycle state (and the derived
//! call events it implies) with the outbound event's log append and the org's subscriptions
//! (cached, [`subscriptions`]) read concurrently → one delivery job per matching subscription →
//! 200 `queued`, or `duplicate` for a redelivery (queued again: the worker's attempt claims
//! collapse it). Any storage or queue failure answers 503 with `Retry-After`, so Webex's retry
//! succeeds: never a 200 for an event that is not durably queued.
//!
//! Layout: [`ingest::Ingest`] is the core, over the ports; [`http::router`] is the
//! `axum::Router` that Lambda serves with `lambda_http::run` and the local stack with
//! `axum::serve`; [`envelope`] parses bodies and derives the dedupe key; `relay_shared::fan_out` picks the
//! subscriptions of an event (type and payload filter); [`response`] is the
//! answer and its outcome; [`config`] the settings.

pub mod config;
pub mod envelope;
pub mod http;
pub mod ingest;
pub mod response;
pub mod subscriptions;

pub use config::{IngestConfig, WebhookAuth, MAX_BODY_BYTES};
pub use http::{router, ROUTE};
pub use ingest::Ingest;
pub use response::{IngestOutcome, IngestResponse};
