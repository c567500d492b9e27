//! A `WebexClient` that takes its token from a [`TokenSource`] on every call (a refreshing source,
//! `relay_shared::webex_token::TokenManager`, refreshes it ahead of expiry) and, when Webex answers
//! 401, asks the source for another (re-read or refreshed) and retries the call once.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use relay_shared::adapters::webex_http::WebexHttpClient;
use relay_shared::ports::{PeoplePage, WebexClient};
use relay_shared::webex::Person;
use relay_shared::webex_api::{
    InterestRegistration, InterestRegistrationUpdate, RegistrationCreate, RegistrationUpdate,
    WebexApiError, WebexRegistration,
};
pub use relay_shared::webex_token::{StaticToken, TokenError, TokenSource};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::RwLock;

/// Builds a Webex client for a token.
pub type ClientFactory =
    Arc<dyn Fn(&str) -> Result<Arc<dyn WebexClient>, WebexApiError> + Send + Sync>;

/// Clients of the Webex REST API at `base_url` as the poller uses them: no client-side retries (the
/// poller honours Retry-After itself, bounded by its run).
pub fn http_clients(base_url: &str) -> ClientFactory {
    let base = base_url.to_owned();
    Arc::new(move |token: &str| {
        Ok(
            Arc::new(WebexHttpClient::new(&base, token)?.with_retries(0, Duration::ZERO))
                as Arc<dyn WebexClient>,
        )
    })
}

/// A `WebexClient` over the current token of a `TokenSource`; the client is rebuilt whenever the
/// token changes, and a 401 gets one retry with the token the source gives instead.
pub struct RefreshingWebex {
    tokens: Arc<dyn TokenSource>,
    factory: ClientFactory,
    current: RwLock<Option<(SecretString, Arc<dyn WebexClient>)>>,
    /// Whether Webex has answered a call with the current token (told to the source once).
    confirmed: AtomicBool,
    refreshes: AtomicU32,
}

impl RefreshingWebex {
    pub fn new(tokens: Arc<dyn TokenSource>, factory: ClientFactory) -> Self {
        Self {
            tokens,
            factory,
            current: RwLock::new(None),
            confirmed: AtomicBool::new(false),
            refreshes: AtomicU32::new(0),
        }
    }

    /// Reads the token and builds the client now (cold start) instead of in the first cycle:
    /// building an HTTPS client loads the root certificates, which takes a while.
    pub async fn warm_up(&self) -> Result<(), WebexApiError> {
        self.client().await.map(|_| ())
    }

    /// How many times Webex answered 401 and another token was asked for.
    pub fn refreshes(&self) -> u32 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// The token source (the health check reads the record's refresh-token expiry from it).
    pub fn tokens(&self) -> &Arc<dyn TokenSource> {
        &self.tokens
    }

    async fn client(&self) -> Result<(SecretString, Arc<dyn WebexClient>), WebexApiError> {
        let token = self.tokens.token().await.map_err(unavailable)?;
        self.client_for(token).await
    }

    /// The client of `token`: the current one if it was built for it, else a new one.
    async fn client_for(
        &self,
        token: SecretString,
    ) -> Result<(SecretString, Arc<dyn WebexClient>), WebexApiError> {
        if let Some((t, c)) = self.current.read().await.as_ref() {
            if t.expose_secret() == token.expose_secret() {
                return Ok((token, c.clone()));
            }
        }
        let mut slot = self.current.write().await;
        let client = (self.factory)(token.expose_secret())?;
        *slot = Some((token.clone(), client.clone()));
        self.confirmed.store(false, Ordering::Relaxed);
        Ok((token, client))
    }

    async fn call<T, F, Fut>(&self, f: F) -> Result<T, WebexApiError>
    where
        F: Fn(Arc<dyn WebexClient>) -> Fut,
        Fut: Future<Output = Result<T, WebexApiError>>,
    {
        let (token, client) = self.client().await?;
        let (token, result) = match f(client).await {
            Err(WebexApiError::Unauthorized) => {
                tracing::warn!("Webex answered 401: asking for another token and retrying once");
                self.refreshes.fetch_add(1, Ordering::Relaxed);
                let other = match self.tokens.rejected(&token).await {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::error!(error = %e, "no other Webex token after a 401");
                        return Err(WebexApiError::Unauthorized);
                    }
                };
                let (other, client) = self.client_for(other).await?;
                (other, f(client).await)
            }
            other => (token, other),
        };
        // Webex took this token: a fresh one that works ends a run of refused ones.
        if result.is_ok() && !self.confirmed.swap(true, Ordering::Relaxed) {
            self.tokens.accepted(&token).await;
        }
        result
    }
}

/// A token that cannot be had is a transport-class failure of the call (retried next cycle).
fn unavailable(e: TokenError) -> WebexApiError {
    WebexApiError::Transport(format!("cannot get the Webex token: {e}"))
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
    async fn me(&self) -> Result<Person, WebexApiError> {
        self.call(|c| async move { c.me().await }).await
    }
    async fn get_interest_registration(
        &self,
    ) -> Result<Option<InterestRegistration>, WebexApiError> {
        self.call(|c| async move { c.get_interest_registration().await })
            .await
    }
    async fn put_interest_registration(
        &self,
        req: &InterestRegistrationUpdate,
    ) -> Result<(), WebexApiError> {
        self.call(|c| async move { c.put_interest_registration(req).await })
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

    /// Returns the queued tokens in order, then the last one forever; records the accepted.
    struct Rotating(Mutex<Vec<&'static str>>, Mutex<Vec<String>>);

    #[async_trait]
    impl TokenSource for Rotating {
        async fn token(&self) -> Result<SecretString, TokenError> {
            let mut v = self.0.lock().unwrap();
            Ok(if v.len() > 1 { v.remove(0) } else { v[0] }.into())
        }
        async fn accepted(&self, token: &SecretString) {
            self.1
                .lock()
                .unwrap()
                .push(token.expose_secret().to_owned());
        }
    }

    fn wrapper(tokens: Vec<&'static str>) -> RefreshingWebex {
        wrapper_of(Arc::new(Rotating(Mutex::new(tokens), Mutex::default())))
    }

    fn wrapper_of(tokens: Arc<Rotating>) -> RefreshingWebex {
        RefreshingWebex::new(
            tokens,
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
    async fn the_source_hears_once_that_webex_took_a_new_token() {
        let tokens = Arc::new(Rotating(Mutex::new(vec!["old", "good"]), Mutex::default()));
        let w = wrapper_of(tokens.clone());
        for _ in 0..3 {
            w.list_people(&[], None).await.unwrap();
        }
        assert_eq!(*tokens.1.lock().unwrap(), ["good"]);
        let bad = Arc::new(Rotating(Mutex::new(vec!["bad"]), Mutex::default()));
        let _ = wrapper_of(bad.clone()).list_people(&[], None).await;
        assert!(
            bad.1.lock().unwrap().is_empty(),
            "a refused token is not accepted"
        );
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
