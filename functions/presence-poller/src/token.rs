//! The Webex token (Secrets Manager on AWS, a plain variable locally) and a `WebexClient` wrapper
//! that re-reads it when Webex answers 401, retrying the call once.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use relay_shared::adapters::aws::secrets::{SecretsManager, WEBEX_TOKEN};
use relay_shared::ports::{PeoplePage, WebexClient};
use relay_shared::webex_api::{
    RegistrationCreate, RegistrationUpdate, WebexApiError, WebexRegistration,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::RwLock;

/// Reads the current Webex token (every call reads it afresh).
#[async_trait]
pub trait TokenSource: Send + Sync {
    async fn token(&self) -> Result<String, String>;
}

/// A fixed token (`WEBEX_TOKEN`).
pub struct StaticToken(pub SecretString);

#[async_trait]
impl TokenSource for StaticToken {
    async fn token(&self) -> Result<String, String> {
        Ok(self.0.expose_secret().to_owned())
    }
}

/// A token kept in Secrets Manager (`WEBEX_TOKEN_SECRET_ARN`): the plain token, or JSON with
/// `token` / `accessToken` / `access_token` / `WEBEX_TOKEN` ([`WEBEX_TOKEN`]).
pub struct SecretsManagerToken {
    secrets: SecretsManager,
    secret_id: String,
}

impl SecretsManagerToken {
    pub fn new(secrets: SecretsManager, secret_id: impl Into<String>) -> Self {
        Self {
            secrets,
            secret_id: secret_id.into(),
        }
    }
}

#[async_trait]
impl TokenSource for SecretsManagerToken {
    async fn token(&self) -> Result<String, String> {
        self.secrets
            .read(&self.secret_id, &WEBEX_TOKEN)
            .await
            .map(|t| t.expose_secret().to_owned())
            .map_err(|e| e.to_string())
    }
}

/// Builds a Webex client for a token.
pub type ClientFactory =
    Arc<dyn Fn(&str) -> Result<Arc<dyn WebexClient>, WebexApiError> + Send + Sync>;

/// A `WebexClient` that obtains its token lazily from a `TokenSource` and, when Webex answers 401,
/// re-reads the token, rebuilds the client and retries the call once.
pub struct RefreshingWebex {
    tokens: Arc<dyn TokenSource>,
    factory: ClientFactory,
    current: RwLock<Option<(u32, Arc<dyn WebexClient>)>>,
    generation: AtomicU32,
    refreshes: AtomicU32,
}

impl RefreshingWebex {
    pub fn new(tokens: Arc<dyn TokenSource>, factory: ClientFactory) -> Self {
        Self {
            tokens,
            factory,
            current: RwLock::new(None),
            generation: AtomicU32::new(0),
            refreshes: AtomicU32::new(0),
        }
    }

    /// Reads the token and builds the client now (cold start) instead of in the first cycle:
    /// building an HTTPS client loads the root certificates, which takes a while.
    pub async fn warm_up(&self) -> Result<(), WebexApiError> {
        self.client().await.map(|_| ())
    }

    /// How many times the token was re-read after a 401.
    pub fn refreshes(&self) -> u32 {
        self.refreshes.load(Ordering::Relaxed)
    }

    async fn client(&self) -> Result<(u32, Arc<dyn WebexClient>), WebexApiError> {
        if let Some(c) = self.current.read().await.as_ref() {
            return Ok(c.clone());
        }
        self.rebuild(None).await
    }

    /// Re-reads the token and builds a new client, unless another task already replaced the one
    /// of generation `stale`.
    async fn rebuild(
        &self,
        stale: Option<u32>,
    ) -> Result<(u32, Arc<dyn WebexClient>), WebexApiError> {
        let mut slot = self.current.write().await;
        if let Some((gen, c)) = slot.as_ref() {
            if Some(*gen) != stale {
                return Ok((*gen, c.clone()));
            }
        }
        let token =
            self.tokens.token().await.map_err(|e| {
                WebexApiError::Transport(format!("cannot read the Webex token: {e}"))
            })?;
        let client = (self.factory)(&token)?;
        let gen = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *slot = Some((gen, client.clone()));
        Ok((gen, client))
    }

    async fn call<T, F, Fut>(&self, f: F) -> Result<T, WebexApiError>
    where
        F: Fn(Arc<dyn WebexClient>) -> Fut,
        Fut: Future<Output = Result<T, WebexApiError>>,
    {
        let (gen, client) = self.client().await?;
        match f(client).await {
            Err(WebexApiError::Unauthorized) => {
                tracing::warn!("Webex answered 401: re-reading the token and retrying once");
                self.refreshes.fetch_add(1, Ordering::Relaxed);
                let (_, client) = self.rebuild(Some(gen)).await?;
                f(client).await
            }
            other => other,
        }
    }
}

#[async_trait]
impl WebexClient for RefreshingWebex {
    async fn list_people(
        &self,
        query: &[(String, String)],
        next: Option<&str>,
    ) -> Result<PeoplePage, WebexApiError> {
        self.call(|c| async move { c.list_people(query, next).await })
            .await
    }
    async fn list_registrations(&self) -> Result<Vec<WebexRegistration>, WebexApiError> {
        self.call(|c| async move { c.list_registrations().await })
            .await
    }
    async fn create_registration(
        &self,
        req: &RegistrationCreate,
    ) -> Result<WebexRegistration, WebexApiError> {
        self.call(|c| async move { c.create_registration(req).await })
            .await
    }
    async fn update_registration(
        &self,
        id: &str,
        req: &RegistrationUpdate,
    ) -> Result<WebexRegistration, WebexApiError> {
        self.call(|c| async move { c.update_registration(id, req).await })
            .await
    }
    async fn get_registration(&self, id: &str) -> Result<WebexRegistration, WebexApiError> {
        self.call(|c| async move { c.get_registration(id).await })
            .await
    }
    async fn delete_registration(&self, id: &str) -> Result<(), WebexApiError> {
        self.call(|c| async move { c.delete_registration(id).await })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Answers 401 unless built with the token "good".
    struct Fake(String);

    #[async_trait]
    impl WebexClient for Fake {
        async fn list_people(
            &self,
            _q: &[(String, String)],
            _n: Option<&str>,
        ) -> Result<PeoplePage, WebexApiError> {
            if self.0 == "good" {
                Ok(PeoplePage {
                    items: vec![],
                    next: None,
                })
            } else {
                Err(WebexApiError::Unauthorized)
            }
        }
        async fn list_registrations(&self) -> Result<Vec<WebexRegistration>, WebexApiError> {
            Err(WebexApiError::Unauthorized)
        }
        async fn create_registration(
            &self,
            _r: &RegistrationCreate,
        ) -> Result<WebexRegistration, WebexApiError> {
            Err(WebexApiError::Unauthorized)
        }
        async fn update_registration(
            &self,
            _i: &str,
            _r: &RegistrationUpdate,
        ) -> Result<WebexRegistration, WebexApiError> {
            Err(WebexApiError::Unauthorized)
        }
        async fn get_registration(&self, _i: &str) -> Result<WebexRegistration, WebexApiError> {
            Err(WebexApiError::Unauthorized)
        }
        async fn delete_registration(&self, _i: &str) -> Result<(), WebexApiError> {
            Err(WebexApiError::Unauthorized)
        }
    }

    /// Returns the queued tokens in order, then the last one forever.
    struct Rotating(Mutex<Vec<&'static str>>);

    #[async_trait]
    impl TokenSource for Rotating {
        async fn token(&self) -> Result<String, String> {
            let mut v = self.0.lock().unwrap();
            Ok(if v.len() > 1 { v.remove(0) } else { v[0] }.to_owned())
        }
    }

    fn wrapper(tokens: Vec<&'static str>) -> RefreshingWebex {
        RefreshingWebex::new(
            Arc::new(Rotating(Mutex::new(tokens))),
            Arc::new(|t: &str| Ok(Arc::new(Fake(t.to_owned())) as Arc<dyn WebexClient>)),
        )
    }

    #[tokio::test]
    async fn a_401_rereads_the_token_once() {
        let w = wrapper(vec!["old", "good"]);
        assert!(w.list_people(&[], None).await.is_ok());
        assert_eq!(w.refreshes(), 1);
        assert!(
            w.list_people(&[], None).await.is_ok(),
            "the new client is kept"
        );
        assert_eq!(w.refreshes(), 1);
    }

    #[tokio::test]
    async fn a_second_401_is_returned() {
        let w = wrapper(vec!["bad"]);
        assert_eq!(
            w.list_people(&[], None).await.unwrap_err(),
            WebexApiError::Unauthorized
        );
        assert_eq!(w.refreshes(), 1);
        assert_eq!(
            w.list_registrations().await.unwrap_err(),
            WebexApiError::Unauthorized
        );
        assert_eq!(w.refreshes(), 2);
    }
}
