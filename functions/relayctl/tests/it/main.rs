//! relayctl's integration tests, one binary.

mod webex_client;
