//! Outbound signatures: Standard Webhooks, `X-Hook-Signature` (the OpenWork webhook contract) and
//! `X-ServiceHook-*` (the ServiceHook contract), all from one subscription secret; the headers are
//! listed in docs/delivery-worker.md.

mod headers;
mod schemes;
mod secret;

pub use headers::{delivery_headers, recorded_headers, SignatureInput, REDACTED, USER_AGENT};
pub use schemes::{hook_signature, service_hook_signature, standard_webhooks_signature};
pub use secret::{SigningSecret, WHSEC_PREFIX};

#[cfg(test)]
mod tests;
