//! The presence poller's integration tests, one binary (each test binary links the AWS SDK).

mod common;

mod aws;
mod call_presence;
mod handler;
mod health;
mod operational;
mod poller;
mod ticker;
mod token;
mod traces;
