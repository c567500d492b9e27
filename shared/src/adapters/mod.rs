//! Implementations of the ports: in memory, and on AWS (DynamoDB, SQS).

pub mod aws;
pub mod memory;
pub mod webex_http;
