//! KMS as the key service of `secrets_at_rest`: `GenerateDataKey` for the API, `Decrypt` for the
//! worker, both under the subscription's encryption context (which the key policy or IAM can
//! require, and CloudTrail records).

use async_trait::async_trait;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use zeroize::Zeroizing;

use crate::secrets_at_rest::{DataKey, DataKeySource, DataKeyUnwrapper, SealError, SecretContext};

#[derive(Clone)]
pub struct KmsKeys {
    client: aws_sdk_kms::Client,
    key_id: String,
}

impl KmsKeys {
    /// `key_id`: the key's id, ARN or alias (the template passes the ARN).
    pub fn new(client: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        Self {
            client,
            key_id: key_id.into(),
        }
    }

    /// The key as configured (id, ARN or alias).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn from_sdk_config(sdk: &aws_config::SdkConfig, key_id: impl Into<String>) -> Self {
        Self::new(aws_sdk_kms::Client::new(sdk), key_id)
    }
}

/// Only a ciphertext that is not this key's or not this context's is `Rejected` (retrying will
/// not help: the job is parked as `secret_unreadable`). Everything else is `Unavailable`,
/// including refusals about the key or the grant as a whole (access denied while IAM propagates,
/// a disabled or deleted key): those hit every secret at once, and parking every delivery and
/// marking every webhook failing would be the wrong answer to an operator fixing the key; the
/// jobs stay queued, the `SecretUnavailable` alarm fires, and the queue's redrive policy is the
/// backstop.
fn seal_error<E, R>(op: &str, err: SdkError<E, R>) -> SealError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = err
        .as_service_error()
        .and_then(|e| e.code())
        .map(str::to_owned);
    let about_this_ciphertext = matches!(
        code.as_deref(),
        Some("InvalidCiphertextException" | "IncorrectKeyException")
    );
    let text = match (&code, err.as_service_error().and_then(|e| e.message())) {
        (Some(c), Some(m)) => format!("KMS {op}: {c}: {m}"),
        (Some(c), None) => format!("KMS {op}: {c}"),
        _ => format!(
            "KMS {op}: {}",
            aws_sdk_kms::error::DisplayErrorContext(&err)
        ),
    };
    if about_this_ciphertext {
        SealError::Rejected(text)
    } else {
        SealError::Unavailable(text)
    }
}

/// The 32 key bytes out of KMS's answer, the SDK's copy zeroed.
fn key_bytes(
    blob: Option<aws_sdk_kms::primitives::Blob>,
) -> Result<Zeroizing<[u8; 32]>, SealError> {
    let bytes = Zeroizing::new(
        blob.ok_or_else(|| SealError::Unavailable("KMS returned no plaintext data key".into()))?
            .into_inner(),
    );
    let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        SealError::Rejected(format!("KMS data key is {} bytes, not 32", bytes.len()))
    })?;
    Ok(Zeroizing::new(key))
}

#[async_trait]
impl DataKeySource for KmsKeys {
    async fn new_data_key(&self, ctx: &SecretContext) -> Result<DataKey, SealError> {
        let mut req = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256);
        for (k, v) in ctx.kms_context() {
            req = req.encryption_context(k, v);
        }
        let out = req
            .send()
            .await
            .map_err(|e| seal_error("GenerateDataKey", e))?;
        let plain = out
            .plaintext()
            .ok_or_else(|| SealError::Unavailable("KMS returned no plaintext data key".into()))?;
        let key: [u8; 32] = plain.as_ref().try_into().map_err(|_| {
            SealError::Rejected(format!(
                "KMS data key is {} bytes, not 32",
                plain.as_ref().len()
            ))
        })?;
        let wrapped = out
            .ciphertext_blob()
            .ok_or_else(|| SealError::Unavailable("KMS returned no wrapped data key".into()))?;
        Ok(DataKey {
            plaintext: Zeroizing::new(key),
            wrapped: wrapped.as_ref().to_vec(),
            // The ARN KMS answers with, whatever alias the relay was configured with.
            key_id: out.key_id().unwrap_or(&self.key_id).to_owned(),
        })
    }
}

#[async_trait]
impl DataKeyUnwrapper for KmsKeys {
    async fn unwrap_data_key(
        &self,
        key_id: &str,
        wrapped: &[u8],
        ctx: &SecretContext,
    ) -> Result<Zeroizing<[u8; 32]>, SealError> {
        if key_id.starts_with("local:") {
            return Err(SealError::Rejected(format!(
                "sealed under the local key `{key_id}`, this relay uses KMS"
            )));
        }
        // Configured by ARN (as the template does): a secret sealed under any other key is not
        // this relay's, whatever a writer of the table put in the item.
        if self.key_id.starts_with("arn:") && key_id != self.key_id {
            return Err(SealError::Rejected(format!(
                "sealed under `{key_id}`, this relay uses `{}`",
                self.key_id
            )));
        }
        // Naming the key makes KMS refuse a ciphertext wrapped by any other key.
        let mut req = self
            .client
            .decrypt()
            .key_id(key_id)
            .ciphertext_blob(Blob::new(wrapped));
        for (k, v) in ctx.kms_context() {
            req = req.encryption_context(k, v);
        }
        let out = req.send().await.map_err(|e| seal_error("Decrypt", e))?;
        key_bytes(out.plaintext)
    }
}
