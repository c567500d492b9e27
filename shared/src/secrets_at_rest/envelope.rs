//! The data-key layer: AES-256-GCM of the secret under its own data key, the context as
//! associated data.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Key, KeyInit, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::{DataKey, SealError, SealedSecret, SecretContext, SEALED_V1};

/// GCM's standard 96-bit nonce; a data key seals one secret, so random nonces never repeat.
const NONCE_LEN: usize = 12;

/// AES-256-GCM of `plain` under `key` with `aad`: the nonce and the ciphertext (with its tag).
pub(crate) fn encrypt(key: &[u8; 32], plain: &[u8], aad: &[u8]) -> ([u8; NONCE_LEN], Vec<u8>) {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
        .expect("AES-GCM encryption of a short message cannot fail");
    (nonce, ct)
}

/// The inverse of [`encrypt`]; any change to the key, nonce, ciphertext or `aad` is refused.
pub(crate) fn decrypt(
    key: &[u8; 32],
    nonce: &[u8],
    ct: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    if nonce.len() != NONCE_LEN {
        return Err(SealError::Rejected("nonce is not 12 bytes".into()));
    }
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map(Zeroizing::new)
        .map_err(|_| SealError::Rejected("authentication failed (wrong key or context)".into()))
}

pub(super) fn seal(key: &DataKey, secret: &SecretString, ctx: &SecretContext) -> SealedSecret {
    let (nonce, ct) = encrypt(
        &key.plaintext,
        secret.expose_secret().as_bytes(),
        &ctx.aad(),
    );
    SealedSecret {
        sealed: SEALED_V1.to_owned(),
        key_id: key.key_id.clone(),
        data_key: B64.encode(&key.wrapped),
        nonce: B64.encode(nonce),
        ciphertext: B64.encode(ct),
    }
}

/// A sealed secret's parts, decoded.
pub(super) struct Parts {
    pub wrapped: Vec<u8>,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

pub(super) fn parts(sealed: &SealedSecret) -> Result<Parts, SealError> {
    if sealed.sealed != SEALED_V1 {
        return Err(SealError::Rejected(format!(
            "unknown sealed-secret version `{}`",
            sealed.sealed
        )));
    }
    let decode = |field: &str, v: &str| {
        B64.decode(v)
            .map_err(|_| SealError::Rejected(format!("`{field}` is not base64")))
    };
    Ok(Parts {
        wrapped: decode("dataKey", &sealed.data_key)?,
        nonce: decode("nonce", &sealed.nonce)?,
        ciphertext: decode("ciphertext", &sealed.ciphertext)?,
    })
}

pub(super) fn open(
    data_key: &[u8; 32],
    nonce: &[u8],
    ct: &[u8],
    ctx: &SecretContext,
) -> Result<SecretString, SealError> {
    let plain = decrypt(data_key, nonce, ct, &ctx.aad())?;
    let text = std::str::from_utf8(&plain)
        .map_err(|_| SealError::Rejected("secret is not UTF-8".into()))?;
    Ok(SecretString::from(text.to_owned()))
}
