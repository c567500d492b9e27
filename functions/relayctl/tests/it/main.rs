//! relayctl's integration tests, one binary.

mod rotate;
mod seal_secrets;
mod webex_client;
