//! Outbound signatures: Standard Webhooks, `X-Hook-Signature` (seed 004) and `X-ServiceHook-*`
//! (seed 003), all from one subscription secret.

mod headers;
mod schemes;
mod secret;

pub use headers::{delivery_headers, SignatureInput, USER_AGENT};
pub use schemes::{hook_signature, service_hook_signature, standard_webhooks_signature};
pub use secret::{SigningSecret, WHSEC_PREFIX};

#[cfg(test)]
mod tests;
