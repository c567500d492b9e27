//! The telephony ingest's integration tests, one binary.

mod ingest;
mod rounds;
