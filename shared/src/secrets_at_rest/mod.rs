//! Signing secrets at rest: envelope encryption, so that the table never holds a subscription's
//! secret in the clear (docs/security.md).
//!
//! Each secret gets its own 256-bit data key; the secret is sealed with AES-256-GCM under that
//! key and the data key is stored wrapped by a key-encryption key the relay never sees: a KMS key
//! the template creates (`adapters/aws/kms.rs`) or, in the local stack and tests, a local key
//! (`local_key.rs`). The org and subscription id are bound into both layers (the GCM associated
//! data and the KMS encryption context), so a sealed secret copied onto another subscription
//! does not open.
//!
//! The two sides are separate ports because they are separate IAM grants: the API seals
//! (`kms:GenerateDataKey`), the worker opens (`kms:Decrypt`), ingest and the poller do neither.
//! Items written before sealing existed hold the secret as a plain JSON string
//! ([`StoredSecret::Plain`]); they keep working and `relayctl seal-secrets` migrates them.

mod envelope;
mod local_key;
mod opener;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use local_key::LocalKey;
pub use opener::SecretOpener;

use crate::ids::SubscriptionId;

/// The version tag of the sealed form; a future format gets a new one.
pub const SEALED_V1: &str = "v1";

/// What a sealed secret is bound to: opening it under any other context fails.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretContext {
    pub org_id: String,
    pub subscription_id: SubscriptionId,
}

impl SecretContext {
    pub fn new(org_id: impl Into<String>, subscription_id: SubscriptionId) -> Self {
        Self {
            org_id: org_id.into(),
            subscription_id,
        }
    }

    /// The KMS encryption context (also logged by CloudTrail with every `Decrypt`).
    pub fn kms_context(&self) -> [(&'static str, String); 2] {
        [
            ("relay:org", self.org_id.clone()),
            ("relay:subscription", self.subscription_id.to_string()),
        ]
    }

    /// The associated data of both AES-GCM layers: the format tag and the context,
    /// length-prefixed so that no two contexts encode alike.
    pub(crate) fn aad(&self) -> Vec<u8> {
        let mut aad = Vec::new();
        for part in [
            "webex-relay/secret/".to_owned() + SEALED_V1,
            self.org_id.clone(),
            self.subscription_id.to_string(),
        ] {
            aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }
}

/// A secret as the table stores it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StoredSecret {
    /// Sealed (every item the API writes).
    Sealed(SealedSecret),
    /// An item written before sealing existed: the secret itself. Read, never written by the API.
    Plain(String),
}

/// A plain secret (tests and legacy items; the API stores only sealed ones).
impl From<&str> for StoredSecret {
    fn from(s: &str) -> Self {
        Self::Plain(s.to_owned())
    }
}

impl From<String> for StoredSecret {
    fn from(s: String) -> Self {
        Self::Plain(s)
    }
}

impl StoredSecret {
    pub fn is_sealed(&self) -> bool {
        matches!(self, Self::Sealed(_))
    }
}

impl fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sealed(s) => f
                .debug_struct("Sealed")
                .field("key_id", &s.key_id)
                .finish_non_exhaustive(),
            Self::Plain(_) => f.write_str("Plain(<redacted>)"),
        }
    }
}

/// The envelope: the wrapped data key, the GCM nonce and the ciphertext (with its tag), base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SealedSecret {
    /// Always [`SEALED_V1`].
    pub sealed: String,
    /// Which key-encryption key wrapped the data key: a KMS key ARN or `local:<fingerprint>`.
    pub key_id: String,
    pub data_key: String,
    pub nonce: String,
    pub ciphertext: String,
}

/// A fresh data key: its plaintext (zeroed on drop) and its wrapped form.
pub struct DataKey {
    pub plaintext: Zeroizing<[u8; 32]>,
    pub wrapped: Vec<u8>,
    pub key_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The key service failed (throttled, unreachable): retry later.
    #[error("key service unavailable: {0}")]
    Unavailable(String),
    /// Not permitted, wrong key or context, tampered or malformed: retrying will not help.
    #[error("secret cannot be opened: {0}")]
    Rejected(String),
}

/// The sealing side's key service: a new data key per secret (`kms:GenerateDataKey`).
#[async_trait]
pub trait DataKeySource: Send + Sync {
    async fn new_data_key(&self, ctx: &SecretContext) -> Result<DataKey, SealError>;
}

/// The opening side's key service: unwraps a data key (`kms:Decrypt`).
#[async_trait]
pub trait DataKeyUnwrapper: Send + Sync {
    async fn unwrap_data_key(
        &self,
        key_id: &str,
        wrapped: &[u8],
        ctx: &SecretContext,
    ) -> Result<Zeroizing<[u8; 32]>, SealError>;
}

/// Seals secrets for storage (the API, `relayctl seal-secrets`).
#[derive(Clone)]
pub struct SecretSealer {
    keys: Arc<dyn DataKeySource>,
}

impl SecretSealer {
    pub fn new(keys: Arc<dyn DataKeySource>) -> Self {
        Self { keys }
    }

    pub async fn seal(
        &self,
        secret: &SecretString,
        ctx: &SecretContext,
    ) -> Result<StoredSecret, SealError> {
        let key = self.keys.new_data_key(ctx).await?;
        Ok(StoredSecret::Sealed(envelope::seal(&key, secret, ctx)))
    }

    /// `stored` sealed: a plain legacy secret is sealed, a sealed one returned as it is.
    pub async fn seal_if_plain(
        &self,
        stored: &StoredSecret,
        ctx: &SecretContext,
    ) -> Result<StoredSecret, SealError> {
        match stored {
            StoredSecret::Sealed(_) => Ok(stored.clone()),
            StoredSecret::Plain(p) => self.seal(&SecretString::from(p.clone()), ctx).await,
        }
    }
}

#[cfg(test)]
mod tests;
