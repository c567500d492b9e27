//! Opens stored secrets (the worker), caching unwrapped data keys per warm container: a KMS
//! `Decrypt` per delivery would cost more than the delivery ($0.03 per 10 000), while a data key
//! never changes (a rotation seals the new secret under a new one). The cache is bounded in size
//! and age, so a disabled KMS key stops deliveries within `max_age`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use zeroize::Zeroizing;

use super::{envelope, DataKeyUnwrapper, SealError, SecretContext, StoredSecret};

/// Beyond this many cached data keys the cache starts over (one per live secret).
const MAX_CACHED: usize = 10_000;
/// How long an unwrapped data key is trusted without asking the key service again.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(15 * 60);

type CacheKey = (Vec<u8>, SecretContext);
type Cache = HashMap<CacheKey, (Instant, Zeroizing<[u8; 32]>)>;

#[derive(Clone)]
pub struct SecretOpener {
    keys: Arc<dyn DataKeyUnwrapper>,
    max_age: Duration,
    cache: Arc<Mutex<Cache>>,
}

impl SecretOpener {
    pub fn new(keys: Arc<dyn DataKeyUnwrapper>) -> Self {
        Self::with_max_age(keys, DEFAULT_MAX_AGE)
    }

    /// `max_age` zero turns the cache off.
    pub fn with_max_age(keys: Arc<dyn DataKeyUnwrapper>, max_age: Duration) -> Self {
        Self {
            keys,
            max_age,
            cache: Arc::default(),
        }
    }

    /// The secret itself; a plain legacy secret is returned as it is.
    pub async fn open(
        &self,
        stored: &StoredSecret,
        ctx: &SecretContext,
    ) -> Result<SecretString, SealError> {
        let sealed = match stored {
            StoredSecret::Plain(p) => return Ok(SecretString::from(p.clone())),
            StoredSecret::Sealed(s) => s,
        };
        let parts = envelope::parts(sealed)?;
        let cache_key = (parts.wrapped, ctx.clone());
        let cached = self
            .cache
            .lock()
            .unwrap()
            .get(&cache_key)
            .filter(|(at, _)| at.elapsed() < self.max_age)
            .map(|(_, k)| k.clone());
        let data_key = match cached {
            Some(k) => k,
            None => {
                let k = self
                    .keys
                    .unwrap_data_key(&sealed.key_id, &cache_key.0, ctx)
                    .await?;
                if !self.max_age.is_zero() {
                    let mut cache = self.cache.lock().unwrap();
                    if cache.len() >= MAX_CACHED {
                        cache.clear();
                    }
                    cache.insert(cache_key, (Instant::now(), k.clone()));
                }
                k
            }
        };
        envelope::open(&data_key, &parts.nonce, &parts.ciphertext, ctx)
    }
}
