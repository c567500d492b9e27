//! relayctl's integration tests, one binary.

mod rotate;
mod webex_client;
