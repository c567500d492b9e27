//! A local key-encryption key for the local stack and tests (`SECRETS_LOCAL_KEY`): the same
//! envelope as KMS, with the data key wrapped by AES-256-GCM under a 32-byte key the operator
//! holds. Not for production: whoever reads the variable reads every secret.

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::envelope::{decrypt, encrypt};
use super::{DataKey, DataKeySource, DataKeyUnwrapper, SealError, SecretContext};

pub struct LocalKey {
    pub(super) key: Zeroizing<[u8; 32]>,
    key_id: String,
}

impl std::fmt::Debug for LocalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl LocalKey {
    /// A key from its base64 form (32 bytes).
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = Zeroizing::new(
            B64.decode(text.trim())
                .map_err(|_| "must be base64 (e.g. `openssl rand -base64 32`)".to_owned())?,
        );
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| format!("must be 32 bytes once decoded (got {})", bytes.len()))?;
        Ok(Self::from_bytes(key))
    }

    pub fn from_bytes(key: [u8; 32]) -> Self {
        // The id names the key without revealing it, so a secret sealed under another local key
        // is reported as such.
        let fingerprint = hex::encode(&Sha256::digest(Sha256::digest(key))[..8]);
        Self {
            key: Zeroizing::new(key),
            key_id: format!("local:{fingerprint}"),
        }
    }

    /// A fresh random key (the local stack's default: secrets live as long as its process).
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self::from_bytes(key)
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

#[async_trait]
impl DataKeySource for LocalKey {
    async fn new_data_key(&self, ctx: &SecretContext) -> Result<DataKey, SealError> {
        let mut plaintext = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(plaintext.as_mut());
        let (nonce, ct) = encrypt(&self.key, plaintext.as_ref(), &ctx.aad());
        let mut wrapped = nonce.to_vec();
        wrapped.extend_from_slice(&ct);
        Ok(DataKey {
            plaintext,
            wrapped,
            key_id: self.key_id.clone(),
        })
    }
}

#[async_trait]
impl DataKeyUnwrapper for LocalKey {
    async fn unwrap_data_key(
        &self,
        key_id: &str,
        wrapped: &[u8],
        ctx: &SecretContext,
    ) -> Result<Zeroizing<[u8; 32]>, SealError> {
        if key_id != self.key_id {
            return Err(SealError::Rejected(format!(
                "sealed under `{key_id}`, this relay holds `{}`",
                self.key_id
            )));
        }
        if wrapped.len() < 12 {
            return Err(SealError::Rejected("wrapped data key too short".into()));
        }
        let (nonce, ct) = wrapped.split_at(12);
        let plain = decrypt(&self.key, nonce, ct, &ctx.aad())?;
        let key: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| SealError::Rejected("data key is not 32 bytes".into()))?;
        Ok(Zeroizing::new(key))
    }
}
