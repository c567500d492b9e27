//! The subscriptions API's integration tests, one binary (each test binary links the AWS SDK).

mod common;

mod lambda_events;
mod openapi;
mod ordering;
mod routes;
