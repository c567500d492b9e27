//! The Webex REST client (`ports::WebexClient`) over reqwest: webhooks management
//! (`/v1/webhooks`, Webex's webhook management API), Webex Calling's webhook interest registrations
//! (`/v1/telephony/webhookInterestRegistrations`), `GET /v1/people/me`, and `GET /v1/people` for
//! the presence poller.
//!
//! - Base URL from `WEBEX_API_BASE_URL` (default `https://webexapis.com/v1`), bearer token from
//!   `WEBEX_TOKEN`; the token is never logged or printed (`Debug` redacts it).
//! - Pagination follows `Link: <…>; rel="next"`, only to the base URL's own origin (the token
//!   must not be sent anywhere else).
//! - `429`/`423` (and `503` with `Retry-After`) are retried after `Retry-After` seconds, at most
//!   `max_retries` times and only when the wait is at most `max_retry_wait`; otherwise the call
//!   returns `WebexApiError::RateLimited` with the advised wait, for the caller to schedule.
//! - `401` → `Unauthorized`; any other non-2xx → `Status` with Webex's `message` and `trackingId`.
//! - Every answer's `TrackingID` header is logged: at WARN with a non-2xx status, else at DEBUG.

mod link;

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

pub use link::next_link;

use crate::ports::{PeoplePage, WebexClient};
use crate::retry::parse_retry_after;
use crate::webex::{tracking_id, Person};
use crate::webex_api::{
    InterestRegistration, InterestRegistrationUpdate, RegistrationCreate, RegistrationUpdate,
    WebexApiError, WebexRegistration,
};

pub const DEFAULT_BASE_URL: &str = "https://webexapis.com/v1";
/// Read by [`crate::config::WebexArgs`].
pub const ENV_BASE_URL: &str = "WEBEX_API_BASE_URL";
pub const ENV_TOKEN: &str = "WEBEX_TOKEN";

/// Page size asked of list endpoints.
const PAGE_MAX: &str = "100";
/// A guard against a server whose `next` links never end.
const MAX_PAGES: usize = 1000;

#[derive(Clone)]
pub struct WebexHttpClient {
    http: reqwest::Client,
    /// Always ends with `/`, so `join("webhooks")` stays under it.
    base: Url,
    token: SecretString,
    max_retries: u32,
    max_retry_wait: Duration,
}

impl std::fmt::Debug for WebexHttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebexHttpClient")
            .field("base", &self.base.as_str())
            .field("token", &self.token)
            .field("max_retries", &self.max_retries)
            .field("max_retry_wait", &self.max_retry_wait)
            .finish()
    }
}

#[derive(Deserialize)]
struct Items<T> {
    #[serde(default = "Vec::new")]
    items: Vec<T>,
}

impl WebexHttpClient {
    /// A client for `base_url` (e.g. `https://webexapis.com/v1`) with a bearer `token`.
    pub fn new(base_url: &str, token: impl Into<SecretString>) -> Result<Self, WebexApiError> {
        let mut base = Url::parse(base_url.trim()).map_err(|e| {
            WebexApiError::Decode(format!("invalid Webex API base URL `{base_url}`: {e}"))
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(WebexApiError::Decode(format!(
                "invalid Webex API base URL `{base_url}`: expected http(s)://host/path"
            )));
        }
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("webex-relay/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| WebexApiError::Transport(e.to_string()))?;
        Ok(Self {
            http,
            base,
            token: token.into(),
            max_retries: 3,
            max_retry_wait: Duration::from_secs(60),
        })
    }

    /// Retries on 429/423 (and 503 with `Retry-After`): at most `max_retries`, each waiting what
    /// `Retry-After` says if that is at most `max_retry_wait` (1 s when the header is absent).
    pub fn with_retries(mut self, max_retries: u32, max_retry_wait: Duration) -> Self {
        self.max_retries = max_retries;
        self.max_retry_wait = max_retry_wait;
        self
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    fn url(&self, path: &str) -> Url {
        self.base
            .join(path.trim_start_matches('/'))
            .expect("relative path joins a base URL")
    }

    /// A pagination link, accepted only on the base URL's origin.
    fn same_origin(&self, link: &str) -> Result<Url, WebexApiError> {
        let url = self
            .base
            .join(link)
            .map_err(|e| WebexApiError::Decode(format!("invalid pagination link: {e}")))?;
        if url.origin() != self.base.origin() {
            return Err(WebexApiError::Decode(format!(
                "refusing to follow a pagination link to another origin ({}) with the Webex token",
                url.origin().ascii_serialization()
            )));
        }
        Ok(url)
    }

    /// Sends with bounded rate-limit retries; returns a 2xx response or the mapped error.
    async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: Url,
        body: Option<&B>,
    ) -> Result<reqwest::Response, WebexApiError> {
        let mut retries = 0;
        loop {
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(self.token.expose_secret())
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req
                .send()
                .await
                .map_err(|e| WebexApiError::Transport(without_url(e)))?;
            let status = resp.status();
            // Webex's tracking id of every answer, for Webex support (success at debug).
            let tracking_id = tracking_id(resp.headers()).unwrap_or("").to_owned();
            if status.is_success() {
                tracing::debug!(
                    %method,
                    path = url.path(),
                    status = status.as_u16(),
                    tracking_id,
                    "Webex response"
                );
                return Ok(resp);
            }
            tracing::warn!(
                %method,
                path = url.path(),
                status = status.as_u16(),
                tracking_id,
                "Webex API error"
            );
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, chrono::Utc::now()))
                // Whole seconds, rounded up so an HTTP-date is never waited for too briefly.
                .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0));
            let limited = status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::LOCKED
                || (status == StatusCode::SERVICE_UNAVAILABLE && retry_after.is_some());
            if limited {
                let wait = retry_after.unwrap_or(1);
                if retries < self.max_retries && Duration::from_secs(wait) <= self.max_retry_wait {
                    retries += 1;
                    tracing::debug!(
                        status = status.as_u16(),
                        wait,
                        retries,
                        "Webex rate limit; retrying"
                    );
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                    continue;
                }
                return Err(WebexApiError::RateLimited {
                    status: status.as_u16(),
                    retry_after_seconds: retry_after,
                });
            }
            if status == StatusCode::UNAUTHORIZED {
                return Err(WebexApiError::Unauthorized);
            }
            let text = resp.text().await.unwrap_or_default();
            return Err(WebexApiError::Status {
                status: status.as_u16(),
                message: error_message(&text),
            });
        }
    }

    async fn json<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, WebexApiError> {
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| WebexApiError::Transport(without_url(e)))?;
        serde_json::from_slice(&bytes).map_err(|e| WebexApiError::Decode(e.to_string()))
    }

    /// Every page of a list endpoint, following `Link: rel="next"`.
    async fn list_all<T: DeserializeOwned>(&self, first: Url) -> Result<Vec<T>, WebexApiError> {
        let mut out = Vec::new();
        let mut url = first;
        for _ in 0..MAX_PAGES {
            let resp = self.send::<()>(Method::GET, url, None).await?;
            let next = next_link(resp.headers());
            let page: Items<T> = Self::json(resp).await?;
            out.extend(page.items);
            match next {
                Some(n) => url = self.same_origin(&n)?,
                None => return Ok(out),
            }
        }
        Err(WebexApiError::Decode(format!(
            "more than {MAX_PAGES} pages; giving up"
        )))
    }
}

#[async_trait]
impl WebexClient for WebexHttpClient {
    async fn list_people(
        &self,
        query: &[(String, String)],
        next: Option<&str>,
    ) -> Result<PeoplePage, WebexApiError> {
        let url = match next {
            Some(n) => self.same_origin(n)?,
            None => {
                let mut url = self.url("people");
                {
                    let mut q = url.query_pairs_mut();
                    for (k, v) in query {
                        q.append_pair(k, v);
                    }
                }
                if url.query() == Some("") {
                    url.set_query(None);
                }
                url
            }
        };
        let resp = self.send::<()>(Method::GET, url, None).await?;
        let next = next_link(resp.headers());
        let page: Items<Person> = Self::json(resp).await?;
        Ok(PeoplePage {
            items: page.items,
            next,
        })
    }

    async fn list_registrations(&self) -> Result<Vec<WebexRegistration>, WebexApiError> {
        let mut url = self.url("webhooks");
        url.query_pairs_mut().append_pair("max", PAGE_MAX);
        self.list_all(url).await
    }

    async fn create_registration(
        &self,
        req: &RegistrationCreate,
    ) -> Result<WebexRegistration, WebexApiError> {
        let resp = self
            .send(Method::POST, self.url("webhooks"), Some(req))
            .await?;
        Self::json(resp).await
    }

    async fn update_registration(
        &self,
        id: &str,
        req: &RegistrationUpdate,
    ) -> Result<WebexRegistration, WebexApiError> {
        let resp = self
            .send(Method::PUT, self.webhook_url(id)?, Some(req))
            .await?;
        Self::json(resp).await
    }

    async fn get_registration(&self, id: &str) -> Result<WebexRegistration, WebexApiError> {
        let resp = self
            .send::<()>(Method::GET, self.webhook_url(id)?, None)
            .await?;
        Self::json(resp).await
    }

    async fn delete_registration(&self, id: &str) -> Result<(), WebexApiError> {
        self.send::<()>(Method::DELETE, self.webhook_url(id)?, None)
            .await?;
        Ok(())
    }

    async fn me(&self) -> Result<Person, WebexApiError> {
        let resp = self
            .send::<()>(Method::GET, self.url("people/me"), None)
            .await?;
        Self::json(resp).await
    }

    async fn get_interest_registration(
        &self,
    ) -> Result<Option<InterestRegistration>, WebexApiError> {
        match self
            .send::<()>(Method::GET, self.url(INTEREST_REGISTRATIONS), None)
            .await
        {
            Ok(resp) => Self::json(resp).await.map(Some),
            // A successful answer always holds at least one interest: none registered is a 404.
            Err(WebexApiError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn put_interest_registration(
        &self,
        req: &InterestRegistrationUpdate,
    ) -> Result<(), WebexApiError> {
        self.send(Method::POST, self.url(INTEREST_REGISTRATIONS), Some(req))
            .await?;
        Ok(())
    }
}

/// The People page parser of `list_people` and the pagination-link rule, reachable from the fuzz
/// targets (fuzz/, docs/reliability.md); not an API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
impl WebexHttpClient {
    pub fn fuzz_people_page(bytes: &[u8]) -> Result<Vec<Person>, serde_json::Error> {
        serde_json::from_slice::<Items<Person>>(bytes).map(|page| page.items)
    }

    pub fn fuzz_follow_link(&self, link: &str) -> Result<Url, WebexApiError> {
        self.same_origin(link)
    }
}

/// Webex Calling's webhook interest registrations (one per user + client of the token).
const INTEREST_REGISTRATIONS: &str = "telephony/webhookInterestRegistrations";

impl WebexHttpClient {
    fn webhook_url(&self, id: &str) -> Result<Url, WebexApiError> {
        if id.is_empty() || id.len() > 512 {
            return Err(WebexApiError::Decode("invalid webhook id".into()));
        }
        let mut url = self.url("webhooks");
        url.path_segments_mut()
            .map_err(|_| WebexApiError::Decode("base URL cannot take a path".into()))?
            .pop_if_empty()
            .push(id);
        Ok(url)
    }
}

/// Webex's error body `{"message": …, "trackingId": …}`, else the first bytes of the text.
fn error_message(text: &str) -> String {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct WebexError {
        message: Option<String>,
        tracking_id: Option<String>,
    }
    let msg = match serde_json::from_str::<WebexError>(text) {
        Ok(WebexError {
            message: Some(m),
            tracking_id: Some(t),
        }) => format!("{m} (trackingId {t})"),
        Ok(WebexError {
            message: Some(m), ..
        }) => m,
        _ => text.to_owned(),
    };
    msg.chars().take(500).collect()
}

/// reqwest errors may name the URL (with a pagination cursor); keep just the cause.
fn without_url(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    match std::error::Error::source(&e) {
        Some(src) => format!("{kind}: {src}"),
        None => kind.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_normalised_and_paths_join_under_it() {
        let c = WebexHttpClient::new("https://webexapis.com/v1", "t").unwrap();
        assert_eq!(
            c.url("webhooks").as_str(),
            "https://webexapis.com/v1/webhooks"
        );
        assert_eq!(
            c.webhook_url("a/b c").unwrap().as_str(),
            "https://webexapis.com/v1/webhooks/a%2Fb%20c"
        );
        let c = WebexHttpClient::new("http://127.0.0.1:9/v1/", "t").unwrap();
        assert_eq!(c.url("/people").as_str(), "http://127.0.0.1:9/v1/people");
        assert!(WebexHttpClient::new("ftp://x", "t").is_err());
        assert!(!format!("{c:?}").contains("\"t\""));
    }

    #[test]
    fn pagination_stays_on_origin() {
        let c = WebexHttpClient::new("https://webexapis.com/v1", "t").unwrap();
        assert!(c
            .same_origin("https://webexapis.com/v1/people?cursor=x")
            .is_ok());
        assert!(c.same_origin("https://evil.example/v1/people").is_err());
        assert!(c.same_origin("http://webexapis.com/v1/people").is_err());
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            error_message(r#"{"message":"bad","trackingId":"T1"}"#),
            "bad (trackingId T1)"
        );
        assert_eq!(error_message("plain"), "plain");
    }

    /// A server answering each connection with the next of `answers` (status line, body), every
    /// answer carrying `TrackingID: T<n>`.
    async fn answering(answers: Vec<(&'static str, &'static str)>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        tokio::spawn(async move {
            for (n, (status, body)) in answers.into_iter().enumerate() {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    let got = sock.read(&mut buf).await.unwrap();
                    req.extend_from_slice(&buf[..got]);
                }
                let answer = format!(
                    "HTTP/1.1 {status}\r\nTrackingID: T{n}\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                sock.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        base
    }

    #[tokio::test]
    async fn every_answers_tracking_id_is_logged() {
        let logs = testkit::logs::capture();
        let base = answering(vec![
            ("200 OK", r#"{"items":[]}"#),
            ("404 Not Found", r#"{"message":"gone"}"#),
        ])
        .await;
        let c = WebexHttpClient::new(&base, "t").unwrap();
        c.list_registrations().await.unwrap();
        assert!(c.get_registration("w1").await.is_err());
        let ok = logs.with_message("Webex response");
        assert_eq!(ok.len(), 1, "{ok:?}");
        assert_eq!(ok[0]["level"], "DEBUG");
        assert_eq!(ok[0]["fields"]["tracking_id"], "T0");
        let err = logs.with_message("Webex API error");
        assert_eq!(err.len(), 1, "{err:?}");
        assert_eq!(err[0]["level"], "WARN");
        assert_eq!(err[0]["fields"]["tracking_id"], "T1");
        assert_eq!(err[0]["fields"]["status"], 404);
        assert_eq!(err[0]["fields"]["path"], "/v1/webhooks/w1");
    }
}
