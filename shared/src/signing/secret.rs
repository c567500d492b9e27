use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;

/// Prefix of Standard Webhooks secrets; the rest is base64 of the key bytes.
pub const WHSEC_PREFIX: &str = "whsec_";

/// A subscription's signing secret. One string serves all three schemes: Standard Webhooks uses the
/// base64-decoded bytes after `whsec_` (as its official libraries do); the two hex schemes
/// (`X-ServiceHook-Signature`, `X-Hook-Signature`) use the whole string's UTF-8 bytes. A secret
/// without the prefix (or whose remainder is not base64) is used as UTF-8 bytes by every scheme.
/// Zeroed on drop: the worker makes one per delivery from the opened secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    text: String,
    standard_key: Vec<u8>,
}

impl Drop for SigningSecret {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.text.zeroize();
        self.standard_key.zeroize();
    }
}

impl SigningSecret {
    pub fn new(text: impl Into<String>) -> Self {
        let text = text.into();
        let standard_key = text
            .strip_prefix(WHSEC_PREFIX)
            .and_then(|b64| STANDARD.decode(b64).ok())
            .unwrap_or_else(|| text.as_bytes().to_vec());
        Self { text, standard_key }
    }

    /// `whsec_` + base64 of 32 random bytes.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self::new(format!("{WHSEC_PREFIX}{}", STANDARD.encode(bytes)))
    }

    /// The secret as the user sees it (only ever returned on create and rotate).
    pub fn expose(&self) -> &str {
        &self.text
    }

    pub(crate) fn standard_key(&self) -> &[u8] {
        &self.standard_key
    }

    pub(crate) fn text_key(&self) -> &[u8] {
        self.text.as_bytes()
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(<redacted>)")
    }
}
