//! # relay-shared
//!
//! The common model of webex-relay: Webex types (`webex`), outbound events (`events`), signatures
//! (`signing`), subscriptions, delivery jobs and attempts, call lifecycle state, API keys, config,
//! and the ports (`ports`) with their adapters (`adapters::memory`, `adapters::aws`).
//! No Lambda types appear here: the function crates translate.

pub mod adapters;
pub mod auth;
pub mod call_events;
pub mod call_presence;
pub mod call_state;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod error;
pub mod events;
pub mod fan_out;
pub mod filters;
pub mod ids;
pub mod logging;
pub mod metrics;
pub mod operational;
pub mod ports;
pub mod retry;
pub mod secrets_at_rest;
pub mod signing;
pub mod stats;
pub mod subscription;
pub mod targets;
pub mod telemetry;
pub mod text;
pub mod webex;
pub mod webex_api;
pub mod webex_registrations;
pub mod webex_token;
