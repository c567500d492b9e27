//! The three signature schemes every delivery carries (design: "Contracts").

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::SigningSecret;

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Standard Webhooks: `v1,` + base64 HMAC-SHA256 of `"{id}.{timestamp}.{body}"`.
pub fn standard_webhooks_signature(
    secret: &SigningSecret,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let ts = timestamp.to_string();
    let mac = hmac_sha256(
        secret.standard_key(),
        &[msg_id.as_bytes(), b".", ts.as_bytes(), b".", body],
    );
    format!("v1,{}", STANDARD.encode(mac))
}

/// The OpenWork webhook contract: `X-Hook-Signature: sha256=<hex HMAC-SHA256 of the body>`.
pub fn hook_signature(secret: &SigningSecret, body: &[u8]) -> String {
    format!("sha256={}", service_hook_signature(secret, body))
}

/// The ServiceHook contract: `X-ServiceHook-Signature: <hex HMAC-SHA256 of the body>`.
pub fn service_hook_signature(secret: &SigningSecret, body: &[u8]) -> String {
    hex::encode(hmac_sha256(secret.text_key(), &[body]))
}
