//! The subscriptions API's integration tests, one binary (each test binary links the AWS SDK).

mod common;

mod console;
mod inspection;
mod lambda_events;
mod openapi;
mod operational;
mod ordering;
mod routes;
mod traces;
