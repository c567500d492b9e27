//! The delivery worker's integration tests, one binary (each test binary links the AWS SDK).

mod common;

mod aws;
mod backlog;
mod claims;
mod fresh;
mod operational;
mod ordering;
mod secrets;
mod ssrf;
mod stats;
mod traces;
mod verifiers;
mod worker;
