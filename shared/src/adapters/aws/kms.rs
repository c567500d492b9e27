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

    pub fn from_sdk_config(sdk: &aws_config::SdkConfig, key_id: impl Into<String>) -> Self {
        Self::new(aws_sdk_kms::Client::new(sdk), key_id)
    }
}

/// Throttling and transport failures are worth retrying; everything else (access denied, a
/// disabled or wrong key, a ciphertext that does not match its context) is not.
fn seal_error<E, R>(op: &str, err: SdkError<E, R>) -> SealError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = err
        .as_service_error()
        .and_then(|e| e.code())
        .map(str::to_owned);
    let retryable = match code.as_deref() {
        None => true,
        Some(c) => matches!(
            c,
            "ThrottlingException"
                | "KMSInternalException"
                | "DependencyTimeoutException"
                | "KeyUnavailableException"
                | "LimitExceededException"
        ),
    };
    let text = match (&code, err.as_service_error().and_then(|e| e.message())) {
        (Some(c), Some(m)) => format!("KMS {op}: {c}: {m}"),
        (Some(c), None) => format!("KMS {op}: {c}"),
        _ => format!(
            "KMS {op}: {}",
            aws_sdk_kms::error::DisplayErrorContext(&err)
        ),
    };
    if retryable {
        SealError::Unavailable(text)
    } else {
        SealError::Rejected(text)
    }
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
        let plain = out
            .plaintext()
            .ok_or_else(|| SealError::Unavailable("KMS returned no plaintext".into()))?;
        let key: [u8; 32] = plain
            .as_ref()
            .try_into()
            .map_err(|_| SealError::Rejected("KMS data key is not 32 bytes".into()))?;
        Ok(Zeroizing::new(key))
    }
}
