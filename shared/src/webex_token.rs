//! The Webex access token's lifecycle, shared by every function that calls Webex (the presence
//! poller, its scheduled health check, the local stack).
//!
//! - [`TokenRecord`]: what the token secret holds (docs/configuration.md, "Webex token"): the
//!   access token and, for an integration or a Service App, its expiry, refresh token and OAuth
//!   client. A plain token string is a record without refresh.
//! - [`TokenVault`]: where the record lives (Secrets Manager on AWS,
//!   `adapters::aws::secrets::SecretsManagerVault`; memory in the local stack).
//! - [`Refresher`]: Webex's refresh call, `POST <base>/access_token` with the form
//!   `grant_type=refresh_token, client_id, client_secret, refresh_token` ([`HttpRefresher`]).
//! - [`TokenManager`]: hands out the access token, refreshes it ahead of expiry
//!   ([`RefreshPolicy`]) and after a 401, one refresher at a time across functions (a
//!   [`LeaseStore`] lease, the record re-read once it is held: someone else may have refreshed),
//!   always storing the refresh token Webex returns (it may rotate on every refresh). A failed
//!   refresh is a metric and one structured log line, then a backoff, never a tight loop.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use crate::adapters::aws::secrets::WEBEX_TOKEN;
use crate::config::WebexArgs;
use crate::metrics::{Emf, Unit};
use crate::ports::{Clock, LeaseStore, Term};
use crate::retry::Backoff;

/// The metric of a failed refresh (Count; the template's alarm watches it).
pub const METRIC_REFRESH_FAILED: &str = "WebexTokenRefreshFailed";
/// The metric of a successful refresh (Count).
pub const METRIC_REFRESHED: &str = "WebexTokenRefreshed";
/// Webex answered with a rate limit (Count; also emitted by the presence poller for its own
/// calls, so one metric shows every Webex 429 of a function).
pub const METRIC_RATE_LIMITED: &str = "WebexRateLimited";
/// The structured log event of a failed refresh (until operational events exist).
pub const EVENT_REFRESH_FAILED: &str = "webex:token-refresh-failed";

/// A token Webex refuses within this long of its issue is refreshed at once only the first time
/// (clocks disagree, a one-off); then [`TokenError::RejectedAfterRefresh`]: the backoff and the
/// failure metric apply, instead of one refresh per call forever.
pub const FRESH: Duration = Duration::from_secs(60);

/// The bound of Webex's refresh call ([`HttpRefresher`]).
pub const REFRESH_TIMEOUT: Duration = Duration::from_secs(30);
/// The bound of each vault read or write made while holding the refresh lease.
pub const VAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Keys of the record, as written back (camelCase), with the other spellings accepted on read.
const ACCESS_TOKEN: &str = "accessToken";
const EXPIRES_AT: (&str, &[&str]) = ("expiresAt", &["expires_at"]);
const REFRESH_TOKEN: (&str, &[&str]) = ("refreshToken", &["refresh_token"]);
const REFRESH_EXPIRES_AT: (&str, &[&str]) =
    ("refreshTokenExpiresAt", &["refresh_token_expires_at"]);
const CLIENT_ID: (&str, &[&str]) = ("clientId", &["client_id"]);
const CLIENT_SECRET: (&str, &[&str]) = ("clientSecret", &["client_secret"]);
const ISSUED_AT: (&str, &[&str]) = ("issuedAt", &["issued_at"]);

/// Why a token could not be had. Messages name the secret, never a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The record is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The vault (Secrets Manager) could not be read or written.
    #[error("{0}")]
    Vault(String),
    /// The lease store failed.
    #[error("the token refresh lease: {0}")]
    Lease(String),
    /// The record cannot be refreshed (no refresh token or OAuth client) and Webex refused it.
    #[error("Webex refused the token and {0} holds no refreshToken, clientId and clientSecret to refresh it")]
    NotRefreshable(String),
    /// Webex's refresh call failed.
    #[error(transparent)]
    Refresh(#[from] RefreshError),
    /// A recent refresh failed; the next attempt waits until `until`.
    #[error("the last Webex token refresh failed; the next attempt is at {until}")]
    Backoff { until: DateTime<Utc> },
    /// Another function held the refresh lease for longer than we waited.
    #[error("another function is refreshing the Webex token")]
    Busy,
    /// The token has expired and could not be refreshed.
    #[error("the Webex access token expired at {0}")]
    Expired(DateTime<Utc>),
    /// The record holds no access token and could not be refreshed.
    #[error("{0} holds no access token")]
    NoAccessToken(String),
    /// Webex refused access tokens issued moments ago (within [`FRESH`]) twice in a row:
    /// refreshing again at once would most likely be refused too, so it counts as a failed
    /// refresh.
    #[error("Webex refused the access token refreshed {0} s ago")]
    RejectedAfterRefresh(i64),
    /// A bot token (see [`refuse_bot`]).
    #[error("the Webex token belongs to a bot: bots cannot list an organization's people (GET /people needs an admin); use an integration or a Service App token of a full or read-only admin (docs/configuration.md, \"Webex token\")")]
    Bot,
}

impl TokenError {
    /// Webex answered the refresh with a rate limit (429, or 423 as its other APIs do).
    pub fn is_rate_limited(&self) -> bool {
        matches!(
            self,
            TokenError::Refresh(RefreshError::Refused {
                status: 429 | 423,
                ..
            })
        )
    }

    /// A short, stable reason for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid-record",
            Self::Vault(_) => "vault",
            Self::Lease(_) => "lease",
            Self::NotRefreshable(_) => "not-refreshable",
            Self::Refresh(RefreshError::Refused { .. }) => "refused",
            Self::Refresh(_) => "transport",
            Self::Backoff { .. } => "backoff",
            Self::Busy => "busy",
            Self::Expired(_) => "expired",
            Self::NoAccessToken(_) => "no-access-token",
            Self::RejectedAfterRefresh(_) => "rejected-after-refresh",
            Self::Bot => "bot",
        }
    }
}

/// Bot tokens cannot list an org's people (Webex: "Admin users can omit these fields and list all
/// users in their organization"; a bot is never an admin): refuse them with a clear error.
/// `person_type` is the `type` of `GET /people/me` (`person`, `bot`, `appuser`).
pub fn refuse_bot(person_type: Option<&str>) -> Result<(), TokenError> {
    match person_type {
        Some(t) if t.eq_ignore_ascii_case("bot") => Err(TokenError::Bot),
        _ => Ok(()),
    }
}

/// What the token secret holds. `Debug` shows no token (every secret is a `SecretString`).
#[derive(Debug, Clone, Default)]
pub struct TokenRecord {
    pub access_token: Option<SecretString>,
    /// When the access token expires (`expires_in` of the last refresh).
    pub expires_at: Option<DateTime<Utc>>,
    pub refresh_token: Option<SecretString>,
    /// When the refresh token expires (`refresh_token_expires_in`): the health check warns ahead.
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
    /// The integration's (or Service App's) OAuth client.
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    /// When the access token was issued: with `expires_at`, its lifetime.
    pub issued_at: Option<DateTime<Utc>>,
    /// Keys the relay does not know, kept when the record is written back.
    pub other: Map<String, Value>,
}

impl TokenRecord {
    /// A fixed access token (no refresh).
    pub fn fixed(token: SecretString) -> Self {
        Self {
            access_token: Some(token),
            ..Self::default()
        }
    }

    /// The secret's text: a plain token, or a JSON object (see the module docs). `what` names the
    /// secret in errors.
    pub fn parse(raw: &str, what: &str) -> Result<Self, TokenError> {
        let raw = raw.trim();
        if !raw.starts_with('{') {
            return crate::adapters::aws::secrets::parse_secret_string(raw, &WEBEX_TOKEN)
                .map(Self::fixed)
                .map_err(|e| TokenError::Invalid(e.0));
        }
        let mut map = match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(TokenError::Invalid(format!(
                    "{what} is JSON but not an object"
                )))
            }
            Err(e) => {
                return Err(TokenError::Invalid(format!(
                    "{what} is not valid JSON: {e}"
                )))
            }
        };
        // The first non-empty spelling wins; every spelling is consumed (not kept in `other`).
        let mut take = |(key, others): (&str, &[&str])| -> Option<Value> {
            let mut found = None;
            for k in std::iter::once(key).chain(others.iter().copied()) {
                match map.remove(k) {
                    Some(Value::Null) | None => {}
                    Some(Value::String(s)) if s.trim().is_empty() => {}
                    Some(v) => {
                        found.get_or_insert(v);
                    }
                }
            }
            found
        };
        let text = |v: Option<Value>, key: &str| -> Result<Option<String>, TokenError> {
            match v {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
                Some(_) => Err(TokenError::Invalid(format!(
                    "{what}: `{key}` is not a string"
                ))),
            }
        };
        let time = |v: Option<Value>, key: &str| -> Result<Option<DateTime<Utc>>, TokenError> {
            let bad = || {
                TokenError::Invalid(format!(
                    "{what}: `{key}` is not an RFC 3339 time or epoch milliseconds"
                ))
            };
            match v {
                None => Ok(None),
                Some(Value::String(s)) => DateTime::parse_from_rfc3339(s.trim())
                    .map(|t| Some(t.with_timezone(&Utc)))
                    .map_err(|_| bad()),
                Some(Value::Number(n)) => n
                    .as_i64()
                    .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
                    .map(Some)
                    .ok_or_else(bad),
                Some(_) => Err(bad()),
            }
        };
        let secret = |v: Option<String>| v.map(SecretString::from);

        // The access token keeps the spellings the relay has always read (`WEBEX_TOKEN`).
        let (first, rest) = WEBEX_TOKEN
            .json_keys
            .split_first()
            .expect("the access token has keys");
        let access_token = secret(text(take((first, rest)), ACCESS_TOKEN)?);
        let record = Self {
            access_token,
            expires_at: time(take(EXPIRES_AT), EXPIRES_AT.0)?,
            refresh_token: secret(text(take(REFRESH_TOKEN), REFRESH_TOKEN.0)?),
            refresh_token_expires_at: time(take(REFRESH_EXPIRES_AT), REFRESH_EXPIRES_AT.0)?,
            client_id: text(take(CLIENT_ID), CLIENT_ID.0)?,
            client_secret: secret(text(take(CLIENT_SECRET), CLIENT_SECRET.0)?),
            issued_at: time(take(ISSUED_AT), ISSUED_AT.0)?,
            other: map,
        };
        if record.access_token.is_none() && !record.can_refresh() {
            return Err(TokenError::Invalid(format!(
                "{what} is JSON without an `{ACCESS_TOKEN}` (or `{}`), and without `refreshToken`, `clientId` and `clientSecret` to obtain one",
                WEBEX_TOKEN.json_keys.join("`/`")
            )));
        }
        Ok(record)
    }

    /// The canonical JSON written back (camelCase keys, RFC 3339 times, unknown keys kept).
    pub fn to_json(&self) -> String {
        let mut map = self.other.clone();
        let time =
            |t: &DateTime<Utc>| Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true));
        let mut put = |key: &str, v: Option<Value>| {
            if let Some(v) = v {
                map.insert(key.to_owned(), v);
            }
        };
        let secret = |s: &Option<SecretString>| {
            s.as_ref()
                .map(|s| Value::String(s.expose_secret().to_owned()))
        };
        put(ACCESS_TOKEN, secret(&self.access_token));
        put(EXPIRES_AT.0, self.expires_at.as_ref().map(time));
        put(REFRESH_TOKEN.0, secret(&self.refresh_token));
        put(
            REFRESH_EXPIRES_AT.0,
            self.refresh_token_expires_at.as_ref().map(time),
        );
        put(CLIENT_ID.0, self.client_id.clone().map(Value::String));
        put(CLIENT_SECRET.0, secret(&self.client_secret));
        put(ISSUED_AT.0, self.issued_at.as_ref().map(time));
        Value::Object(map).to_string()
    }

    /// Whether the record holds what a refresh needs.
    pub fn can_refresh(&self) -> bool {
        self.grant().is_some()
    }

    /// The refresh call's form fields.
    pub fn grant(&self) -> Option<RefreshGrant<'_>> {
        Some(RefreshGrant {
            client_id: self.client_id.as_deref().filter(|c| !c.is_empty())?,
            client_secret: self.client_secret.as_ref()?,
            refresh_token: self.refresh_token.as_ref()?,
        })
    }

    /// The access token, if it has not expired at `now`.
    pub fn usable(&self, now: DateTime<Utc>) -> Option<&SecretString> {
        match self.expires_at {
            Some(at) if at <= now => None,
            _ => self.access_token.as_ref(),
        }
    }

    /// Whether this record carries `token` as its access token.
    fn holds(&self, token: &SecretString) -> bool {
        same(self.access_token.as_ref(), Some(token))
    }

    /// The record after a successful refresh at `now`: Webex's refresh token whenever it returns
    /// one (it may rotate), the old one otherwise.
    pub fn refreshed(&self, grant: Grant, now: DateTime<Utc>) -> Self {
        // Capped at a century: chrono's durations are bounded.
        let after =
            |secs: u64| now + chrono::Duration::seconds(secs.min(100 * 365 * 86_400) as i64);
        let rotated = grant.refresh_token.is_some();
        Self {
            access_token: Some(grant.access_token),
            expires_at: grant.expires_in.map(after),
            issued_at: Some(now),
            refresh_token: grant.refresh_token.or_else(|| self.refresh_token.clone()),
            refresh_token_expires_at: match grant.refresh_token_expires_in {
                Some(secs) => Some(after(secs)),
                // A new refresh token without a stated lifetime: the old expiry no longer applies.
                None if rotated => None,
                None => self.refresh_token_expires_at,
            },
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            other: self.other.clone(),
        }
    }
}

fn same(a: Option<&SecretString>, b: Option<&SecretString>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.expose_secret() == b.expose_secret(),
        (None, None) => true,
        _ => false,
    }
}

/// When to refresh ahead of expiry: once less than `margin` or `fraction` of the lifetime
/// remains, whichever is longer, but never in the first half of the lifetime (so short-lived
/// tokens are not refreshed on every call). Without a known lifetime, `margin` alone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefreshPolicy {
    pub margin: Duration,
    pub fraction: f64,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            margin: Duration::from_secs(10 * 60),
            fraction: 0.1,
        }
    }
}

impl RefreshPolicy {
    /// Whether `record` should be refreshed at `now` (a record without an access token always).
    pub fn due(&self, record: &TokenRecord, now: DateTime<Utc>) -> bool {
        if record.access_token.is_none() {
            return true;
        }
        let Some(expires) = record.expires_at else {
            return false;
        };
        let margin_ms = i64::try_from(self.margin.as_millis()).unwrap_or(i64::MAX);
        let lead_ms = match record.issued_at.filter(|i| *i < expires) {
            Some(issued) => {
                let life = (expires - issued).num_milliseconds();
                margin_ms
                    .max((life as f64 * self.fraction) as i64)
                    .min(life / 2)
            }
            None => margin_ms,
        };
        (expires - now).num_milliseconds() <= lead_ms
    }
}

/// The form fields of a refresh.
#[derive(Debug, Clone, Copy)]
pub struct RefreshGrant<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a SecretString,
    pub refresh_token: &'a SecretString,
}

/// A successful refresh (Webex's `access_token`, `expires_in`, `refresh_token`,
/// `refresh_token_expires_in`).
#[derive(Debug, Clone)]
pub struct Grant {
    pub access_token: SecretString,
    pub expires_in: Option<u64>,
    pub refresh_token: Option<SecretString>,
    pub refresh_token_expires_in: Option<u64>,
}

/// The response body as Webex sends it (moved into `SecretString`s at once).
#[derive(serde::Deserialize)]
struct GrantBody {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    refresh_token_expires_in: Option<u64>,
}

impl From<GrantBody> for Grant {
    fn from(b: GrantBody) -> Self {
        Self {
            access_token: b.access_token.into(),
            expires_in: b.expires_in,
            refresh_token: b.refresh_token.filter(|r| !r.is_empty()).map(Into::into),
            refresh_token_expires_in: b.refresh_token_expires_in,
        }
    }
}

/// Why Webex's refresh call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// Webex answered non-2xx (e.g. 400 `invalid_grant`: the refresh token expired, was revoked
    /// or was already used).
    #[error("Webex refused the token refresh: HTTP {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("the token refresh could not reach Webex: {0}")]
    Transport(String),
    #[error("unexpected token refresh response: {0}")]
    Decode(String),
}

/// Webex's refresh call (a port, so tests drive it).
#[async_trait]
pub trait Refresher: Send + Sync {
    async fn refresh(&self, grant: &RefreshGrant<'_>) -> Result<Grant, RefreshError>;
}

/// `POST <base>/access_token`, form-encoded, as Webex's integrations guide describes.
#[derive(Debug, Clone)]
pub struct HttpRefresher {
    http: reqwest::Client,
    url: url::Url,
}

impl HttpRefresher {
    /// For the Webex API base URL (`WEBEX_API_BASE_URL`, e.g. `https://webexapis.com/v1`).
    pub fn new(base_url: &str) -> Result<Self, TokenError> {
        let bad = |e: String| {
            TokenError::Invalid(format!("invalid Webex API base URL `{base_url}`: {e}"))
        };
        let base = url::Url::parse(&format!("{}/", base_url.trim().trim_end_matches('/')))
            .map_err(|e| bad(e.to_string()))?;
        let url = base.join("access_token").map_err(|e| bad(e.to_string()))?;
        let http = reqwest::Client::builder()
            .timeout(REFRESH_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("webex-relay/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok(Self { http, url })
    }
}

#[async_trait]
impl Refresher for HttpRefresher {
    async fn refresh(&self, grant: &RefreshGrant<'_>) -> Result<Grant, RefreshError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("client_id", grant.client_id)
            .append_pair("client_secret", grant.client_secret.expose_secret())
            .append_pair("refresh_token", grant.refresh_token.expose_secret())
            .finish();
        let resp = self
            .http
            .post(self.url.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| RefreshError::Transport(e.without_url().to_string()))?;
        let status = resp.status();
        let tracking = resp
            .headers()
            .get("trackingid")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = resp
            .text()
            .await
            .map_err(|e| RefreshError::Transport(e.without_url().to_string()))?;
        if !status.is_success() {
            return Err(RefreshError::Refused {
                status: status.as_u16(),
                message: refusal_message(&text, tracking.as_deref()),
            });
        }
        serde_json::from_str::<GrantBody>(&text)
            .map(Grant::from)
            // Not serde's message: it may quote the body, which holds tokens.
            .map_err(|e| {
                RefreshError::Decode(format!(
                    "not the expected JSON ({:?} at line {}, column {})",
                    e.classify(),
                    e.line(),
                    e.column()
                ))
            })
    }
}

/// The OAuth error (`error`, `error_description`) or Webex's `message`, and the tracking id.
fn refusal_message(body: &str, tracking: Option<&str>) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let field = |k: &str| v.get(k).and_then(Value::as_str);
    let mut parts: Vec<&str> = ["error", "error_description", "message"]
        .into_iter()
        .filter_map(field)
        .collect();
    if parts.is_empty() {
        parts.push("(no error in the body)");
    }
    let mut msg = parts.join(": ");
    if let Some(t) = field("trackingId").or(tracking) {
        msg.push_str(&format!(" (trackingId {t})"));
    }
    msg
}

/// Where the record lives.
#[async_trait]
pub trait TokenVault: Send + Sync {
    /// Names the record in logs and in the refresh lease (an ARN or name, never a secret).
    fn id(&self) -> &str;
    async fn load(&self) -> Result<TokenRecord, TokenError>;
    async fn store(&self, record: &TokenRecord) -> Result<(), TokenError>;
}

/// A record kept in memory (the local stack; tests).
#[derive(Debug)]
pub struct MemoryVault {
    id: String,
    record: std::sync::Mutex<TokenRecord>,
    stores: std::sync::atomic::AtomicU32,
}

impl MemoryVault {
    pub fn new(id: impl Into<String>, record: TokenRecord) -> Self {
        Self {
            id: id.into(),
            record: std::sync::Mutex::new(record),
            stores: Default::default(),
        }
    }

    /// The record as stored now.
    pub fn record(&self) -> TokenRecord {
        self.record.lock().unwrap().clone()
    }

    /// How many times a record was stored.
    pub fn stores(&self) -> u32 {
        self.stores.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[async_trait]
impl TokenVault for MemoryVault {
    fn id(&self) -> &str {
        &self.id
    }
    async fn load(&self) -> Result<TokenRecord, TokenError> {
        Ok(self.record())
    }
    async fn store(&self, record: &TokenRecord) -> Result<(), TokenError> {
        *self.record.lock().unwrap() = record.clone();
        self.stores
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

impl WebexArgs {
    /// The record the flags describe (`--webex-token`, `--webex-refresh-token`,
    /// `--webex-client-id`, `--webex-client-secret`), if any. Its expiry is unknown, so the
    /// access token is used until Webex refuses it (or refreshed first when only a refresh token
    /// is given).
    pub fn token_record(&self) -> Option<TokenRecord> {
        let record = TokenRecord {
            access_token: self.token.clone(),
            refresh_token: self.refresh_token.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            ..TokenRecord::default()
        };
        (record.access_token.is_some() || record.can_refresh()).then_some(record)
    }
}

/// Reads the current Webex token.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// The access token to use now (a refreshing source refreshes it first when it is due).
    async fn token(&self) -> Result<SecretString, TokenError>;

    /// Webex answered 401 to `rejected`: a different token if there is one (by default, read
    /// the token again).
    async fn rejected(&self, rejected: &SecretString) -> Result<SecretString, TokenError> {
        let _ = rejected;
        self.token().await
    }

    /// Webex answered a call made with `token` (the first answer after it changed): a fresh
    /// token that worked ends a run of refused fresh tokens (see [`FRESH`]).
    async fn accepted(&self, token: &SecretString) {
        let _ = token;
    }

    /// The current record, if this source has one (the health check reads the refresh token's
    /// expiry from it).
    async fn record(&self) -> Option<TokenRecord> {
        None
    }

    /// The last failed refresh not taken yet (the presence poller turns it into the operational
    /// event `webex:token-refresh-failed`, docs/operational-events.md); `None` by default.
    fn take_refresh_failure(&self) -> Option<RefreshFailure> {
        None
    }
}

/// A failed refresh, as the operational event `webex:token-refresh-failed` reports it: its class
/// (never a token or Webex's text), failures in a row, and the next try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshFailure {
    pub reason: &'static str,
    pub failures: u32,
    pub retry_at: Option<DateTime<Utc>>,
}

/// A fixed token (`WEBEX_TOKEN`).
pub struct StaticToken(pub SecretString);

#[async_trait]
impl TokenSource for StaticToken {
    async fn token(&self) -> Result<SecretString, TokenError> {
        Ok(self.0.clone())
    }
}

/// Where EMF lines go (stdout on Lambda; tests collect them).
pub type MetricSink = Arc<dyn Fn(String) + Send + Sync>;

/// Lease timing of a refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long a refresher holds the lease at most (a crashed holder frees it after this).
    pub term: Duration,
    /// How long to wait for another holder before giving up this time.
    pub wait: Duration,
    /// How often to look again while waiting.
    pub poll: Duration,
}

impl Default for LeaseTiming {
    fn default() -> Self {
        Self {
            // Longer than what is done holding it: a read and a write of the vault
            // (`VAULT_TIMEOUT` each) and Webex's refresh call (`REFRESH_TIMEOUT`), so the lease
            // cannot lapse mid-refresh and let a second refresher spend the same refresh token.
            term: Duration::from_secs(2 * 60),
            wait: Duration::from_secs(10),
            poll: Duration::from_millis(250),
        }
    }
}

#[derive(Default)]
struct State {
    /// The record in use (loaded on first use).
    record: Option<TokenRecord>,
    /// Consecutive failed refreshes, and when the next may be tried.
    failures: u32,
    retry_at: Option<DateTime<Utc>>,
    /// A refreshed record that could not be written back: the next refresh starts from it (its
    /// refresh token is the newest) and stores it.
    unsaved: bool,
    /// Fresh tokens Webex refused in a row (see [`FRESH`]); past the first, each is a failure
    /// and a successful refresh does not reset the count (the next fresh token may be refused
    /// too): a token that works (`accepted`) or lasts does.
    refused_fresh: u32,
    /// The last token that cannot be refreshed and no longer works (expired, or refused with
    /// nothing to refresh it), reported once (the alarm's metric) rather than on every call.
    reported_dead: Option<SecretString>,
    refreshes: u32,
}

/// The refreshing [`TokenSource`] (see the module docs).
///
/// Each `token()`/`rejected()` runs in a task of its own, awaited by the caller: a caller that
/// gives up (a `timeout_at` around a Webex call) cannot cancel a refresh halfway, between Webex
/// answering with a rotated refresh token (the old one is spent) and its write-back, nor leave
/// the refresh lease held.
pub struct TokenManager {
    inner: Arc<Inner>,
}

struct Inner {
    vault: Arc<dyn TokenVault>,
    refresher: Arc<dyn Refresher>,
    leases: Arc<dyn LeaseStore>,
    clock: Arc<dyn Clock>,
    function: String,
    holder: String,
    policy: RefreshPolicy,
    backoff: Backoff,
    lease: LeaseTiming,
    metrics: MetricSink,
    state: tokio::sync::Mutex<State>,
    /// The last failed refresh, until taken ([`TokenSource::take_refresh_failure`]).
    last_failure: std::sync::Mutex<Option<RefreshFailure>>,
}

impl TokenManager {
    /// `function` is the metrics' `Function` dimension (e.g. `presence-poller`).
    pub fn new(
        vault: Arc<dyn TokenVault>,
        refresher: Arc<dyn Refresher>,
        leases: Arc<dyn LeaseStore>,
        clock: Arc<dyn Clock>,
        function: impl Into<String>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                vault,
                refresher,
                leases,
                clock,
                function: function.into(),
                holder: format!("token-{}", ulid::Ulid::new()),
                policy: RefreshPolicy::default(),
                backoff: Backoff::new(Duration::from_secs(5)).capped(Duration::from_secs(5 * 60)),
                lease: LeaseTiming::default(),
                metrics: Arc::new(|line| println!("{line}")),
                state: Default::default(),
                last_failure: Default::default(),
            }),
        }
    }

    /// A manager refreshing at Webex's `<base_url>/access_token` ([`HttpRefresher`]).
    pub fn at_webex(
        base_url: &str,
        vault: Arc<dyn TokenVault>,
        leases: Arc<dyn LeaseStore>,
        clock: Arc<dyn Clock>,
        function: impl Into<String>,
    ) -> Result<Self, TokenError> {
        let refresher = Arc::new(HttpRefresher::new(base_url)?);
        Ok(Self::new(vault, refresher, leases, clock, function))
    }

    pub fn with_policy(mut self, policy: RefreshPolicy) -> Self {
        self.configure().policy = policy;
        self
    }

    /// The wait after consecutive failed refreshes (5 s doubling to 5 min by default).
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.configure().backoff = backoff;
        self
    }

    pub fn with_lease_timing(mut self, lease: LeaseTiming) -> Self {
        self.configure().lease = lease;
        self
    }

    pub fn with_metrics(mut self, sink: MetricSink) -> Self {
        self.configure().metrics = sink;
        self
    }

    fn configure(&mut self) -> &mut Inner {
        Arc::get_mut(&mut self.inner).expect("a TokenManager is configured before its first use")
    }

    /// The lease that serializes refreshes of this record.
    pub fn lease_name(&self) -> String {
        self.inner.lease_name()
    }

    /// Successful refresh calls made by this manager.
    pub async fn refreshes(&self) -> u32 {
        self.inner.state.lock().await.refreshes
    }

    /// Consecutive failed refreshes.
    pub async fn failures(&self) -> u32 {
        self.inner.state.lock().await.failures
    }

    /// Runs `op` on a task of its own and waits for it (see the type's docs).
    async fn detached<F, Fut>(&self, op: F) -> Result<SecretString, TokenError>
    where
        F: FnOnce(Arc<Inner>) -> Fut,
        Fut: std::future::Future<Output = Result<SecretString, TokenError>> + Send + 'static,
    {
        match tokio::spawn(op(self.inner.clone())).await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(TokenError::Vault(format!("the token task stopped: {e}"))),
        }
    }
}

impl Inner {
    fn lease_name(&self) -> String {
        format!("webex-token#{}", self.vault.id())
    }

    async fn loaded<'a>(&self, st: &'a mut State) -> Result<&'a TokenRecord, TokenError> {
        if st.record.is_none() {
            st.record = Some(self.vault.load().await?);
        }
        Ok(st.record.as_ref().expect("loaded"))
    }

    fn access(&self, record: &TokenRecord) -> Result<SecretString, TokenError> {
        let now = self.clock.now();
        match (record.usable(now), record.expires_at) {
            (Some(t), _) => Ok(t.clone()),
            (None, Some(at)) if record.access_token.is_some() => Err(TokenError::Expired(at)),
            _ => Err(TokenError::NoAccessToken(self.vault.id().to_owned())),
        }
    }

    /// Refreshes (one refresher at a time across functions). `rejected`: the token Webex
    /// refused, which must not be handed out again.
    async fn refresh(
        &self,
        st: &mut State,
        rejected: Option<&SecretString>,
    ) -> Result<SecretString, TokenError> {
        let now = self.clock.now();
        if let Some(until) = st.retry_at.filter(|at| now < *at) {
            return Err(TokenError::Backoff { until });
        }
        let name = self.lease_name();
        let give_up = tokio::time::Instant::now() + self.lease.wait;
        loop {
            let now = self.clock.now();
            let term = Term::new(now, now + chrono_of(self.lease.term));
            match self.leases.acquire(&name, &self.holder, term).await {
                Ok(true) => break,
                Ok(false) => {
                    // Another function is refreshing: its record lands in the vault.
                    if tokio::time::Instant::now() >= give_up {
                        return Err(TokenError::Busy);
                    }
                    tokio::time::sleep(self.lease.poll).await;
                    if let Some(t) = self.adopt(st, rejected).await {
                        return Ok(t);
                    }
                }
                Err(e) => return Err(self.failed(st, TokenError::Lease(e.to_string()))),
            }
        }
        let result = self.refresh_holding_lease(st, rejected).await;
        if let Err(e) = self.leases.release(&name, &self.holder).await {
            // It expires by itself after its term.
            tracing::warn!(lease = %name, error = %e, "could not release the token refresh lease");
        }
        match result {
            Ok(t) => {
                if st.refused_fresh <= 1 {
                    st.failures = 0;
                }
                st.retry_at = None;
                Ok(t)
            }
            Err(e) => Err(self.failed(st, e)),
        }
    }

    /// Takes the vault's record if someone else refreshed it (a usable token, neither ours nor
    /// `rejected`, not yet due).
    async fn adopt(&self, st: &mut State, rejected: Option<&SecretString>) -> Option<SecretString> {
        let fresh = self.bounded(self.vault.load()).await.ok()?;
        let now = self.clock.now();
        let token = fresh.usable(now)?.clone();
        let ours = st.record.as_ref().is_some_and(|r| r.holds(&token));
        let refused = rejected.is_some_and(|r| fresh.holds(r));
        // An unsaved record holds the newest refresh token: only a later refresh replaces it.
        let older = st.unsaved
            && !matches!(
                (fresh.issued_at, st.record.as_ref().and_then(|r| r.issued_at)),
                (Some(theirs), Some(mine)) if theirs > mine
            );
        if ours || refused || older || self.policy.due(&fresh, now) {
            return None;
        }
        tracing::info!(
            secret = self.vault.id(),
            "using the Webex token another function refreshed"
        );
        st.record = Some(fresh);
        st.unsaved = false;
        Some(token)
    }

    async fn refresh_holding_lease(
        &self,
        st: &mut State,
        rejected: Option<&SecretString>,
    ) -> Result<SecretString, TokenError> {
        let base = if st.unsaved {
            st.record.clone().expect("an unsaved record exists")
        } else {
            // Re-read now that the lease is ours: another function may have refreshed meanwhile.
            if let Some(t) = self.adopt(st, rejected).await {
                return Ok(t);
            }
            self.bounded(self.vault.load()).await?
        };
        let Some(grant) = base.grant() else {
            st.record = Some(base);
            return Err(TokenError::NotRefreshable(self.vault.id().to_owned()));
        };
        let grant = self.refresher.refresh(&grant).await?;
        let now = self.clock.now();
        let next = base.refreshed(grant, now);
        let token = next
            .access_token
            .clone()
            .expect("a refreshed record has a token");
        st.refreshes += 1;
        st.record = Some(next.clone());
        (self.metrics)(
            Emf::new(&self.function)
                .metric(METRIC_REFRESHED, Unit::Count, 1)
                .property("secret", self.vault.id())
                .line(now.timestamp_millis()),
        );
        match self.bounded(self.vault.store(&next)).await {
            Ok(()) => {
                st.unsaved = false;
                tracing::info!(
                    secret = self.vault.id(),
                    expires_at = ?next.expires_at,
                    refresh_token_expires_at = ?next.refresh_token_expires_at,
                    "refreshed the Webex token"
                );
            }
            Err(e) => {
                // The token works; the rotated refresh token lives in memory until a later
                // call writes it back (`save_unsaved`). Other functions reading the vault may
                // fail meanwhile.
                st.unsaved = true;
                self.report(&e, 0, None);
            }
        }
        Ok(token)
    }

    /// `call` of the vault, bounded by [`VAULT_TIMEOUT`] (see [`LeaseTiming`]'s term).
    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, TokenError>>,
    ) -> Result<T, TokenError> {
        tokio::time::timeout(VAULT_TIMEOUT, call)
            .await
            .unwrap_or_else(|_| {
                Err(TokenError::Vault(format!(
                    "{} did not answer within {} s",
                    self.vault.id(),
                    VAULT_TIMEOUT.as_secs()
                )))
            })
    }

    /// Writes back a refreshed record the vault refused (see `State::unsaved`), under the
    /// refresh lease; with the lease busy or the write failing, the next call tries again.
    async fn save_unsaved(&self, st: &mut State) {
        let Some(record) = st.record.clone().filter(|_| st.unsaved) else {
            return;
        };
        let name = self.lease_name();
        let now = self.clock.now();
        let term = Term::new(now, now + chrono_of(self.lease.term));
        match self.leases.acquire(&name, &self.holder, term).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(lease = %name, error = %e, "could not take the token lease to write back the refreshed Webex token");
                return;
            }
        }
        match self.bounded(self.vault.store(&record)).await {
            Ok(()) => {
                st.unsaved = false;
                tracing::info!(
                    secret = self.vault.id(),
                    "wrote back the refreshed Webex token"
                );
            }
            Err(e) => tracing::warn!(
                secret = self.vault.id(),
                error = %e,
                "the refreshed Webex token is still not written back; the next call tries again"
            ),
        }
        if let Err(e) = self.leases.release(&name, &self.holder).await {
            tracing::warn!(lease = %name, error = %e, "could not release the token refresh lease");
        }
    }

    /// `e` about `token`, which cannot be refreshed: reported (metric + log, as a failed
    /// refresh: someone must put a new token into the secret) once per token.
    fn dead_end(&self, st: &mut State, token: Option<&SecretString>, e: TokenError) -> TokenError {
        let reported = st.reported_dead.as_ref();
        if !reported.is_some_and(|r| same(Some(r), token)) {
            self.report(&e, 0, None);
            st.reported_dead = token.cloned();
        }
        e
    }

    /// Counts a failure, schedules the next attempt, and reports it (metric + log).
    fn failed(&self, st: &mut State, e: TokenError) -> TokenError {
        st.failures += 1;
        let wait = self.backoff.delay(st.failures - 1);
        let at = self.clock.now() + chrono_of(wait);
        st.retry_at = Some(at);
        self.report(&e, st.failures, Some(at));
        e
    }

    fn report(&self, e: &TokenError, failures: u32, retry_at: Option<DateTime<Utc>>) {
        tracing::error!(
            event = EVENT_REFRESH_FAILED,
            secret = self.vault.id(),
            reason = e.reason(),
            failures,
            retry_at = ?retry_at,
            error = %e,
            "the Webex token refresh failed"
        );
        *self.last_failure.lock().unwrap() = Some(RefreshFailure {
            reason: e.reason(),
            failures,
            retry_at,
        });
        let mut doc = Emf::new(&self.function).metric(METRIC_REFRESH_FAILED, Unit::Count, 1);
        if e.is_rate_limited() {
            // Counted with the poller's own 429s: the dashboard's Webex rate-limit widget.
            doc = doc.metric(METRIC_RATE_LIMITED, Unit::Count, 1);
        }
        (self.metrics)(
            doc.property("secret", self.vault.id())
                .property("reason", e.reason())
                .line(self.clock.now().timestamp_millis()),
        );
    }
}

/// Whether `record`'s access token was issued less than `within` before `now`.
fn issued_within(record: &TokenRecord, now: DateTime<Utc>, within: Duration) -> bool {
    record
        .issued_at
        .is_some_and(|at| now >= at && now - at < chrono_of(within))
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[async_trait]
impl TokenSource for TokenManager {
    async fn token(&self) -> Result<SecretString, TokenError> {
        self.detached(|m| async move { m.token().await }).await
    }

    async fn rejected(&self, rejected: &SecretString) -> Result<SecretString, TokenError> {
        let rejected = rejected.clone();
        self.detached(|m| async move { m.rejected(&rejected).await })
            .await
    }

    async fn accepted(&self, token: &SecretString) {
        let mut st = self.inner.state.lock().await;
        if st.record.as_ref().is_some_and(|r| r.holds(token)) {
            if st.refused_fresh > 1 {
                st.failures = 0;
            }
            st.refused_fresh = 0;
        }
    }

    async fn record(&self) -> Option<TokenRecord> {
        let mut st = self.inner.state.lock().await;
        self.inner.loaded(&mut st).await.ok().cloned()
    }

    fn take_refresh_failure(&self) -> Option<RefreshFailure> {
        self.inner.last_failure.lock().unwrap().take()
    }
}

impl Inner {
    async fn token(&self) -> Result<SecretString, TokenError> {
        let mut st = self.state.lock().await;
        self.save_unsaved(&mut st).await;
        self.loaded(&mut st).await?;
        let now = self.clock.now();
        let record = st.record.as_ref().expect("loaded");
        if st.refused_fresh > 0 && !issued_within(record, now, FRESH) {
            // The last refreshed token has lasted: Webex takes fresh tokens again.
            if st.refused_fresh > 1 {
                st.failures = 0;
            }
            st.refused_fresh = 0;
        }
        let record = st.record.as_ref().expect("loaded");
        if record.can_refresh() && self.policy.due(record, now) {
            let current = self.access(record);
            return match self.refresh(&mut st, None).await {
                Ok(t) => Ok(t),
                // Refreshing ahead failed: the old token serves until it expires.
                Err(e) => current.map_err(|_| e),
            };
        }
        match self.access(record) {
            Err(e @ TokenError::Expired(_)) if !record.can_refresh() => {
                let token = record.access_token.clone();
                Err(self.dead_end(&mut st, token.as_ref(), e))
            }
            r => r,
        }
    }

    async fn rejected(&self, rejected: &SecretString) -> Result<SecretString, TokenError> {
        let mut st = self.state.lock().await;
        self.save_unsaved(&mut st).await;
        let record = self.loaded(&mut st).await?;
        // Another caller of this process may already have replaced it.
        if !record.holds(rejected) {
            if let Ok(t) = self.access(record) {
                return Ok(t);
            }
        }
        if !record.can_refresh() {
            // A fixed token: someone may have put a new one into the secret.
            let fresh = self.vault.load().await?;
            if !fresh.can_refresh() {
                let token = fresh.usable(self.clock.now()).cloned();
                st.record = Some(fresh);
                return match token {
                    Some(t) if !t.expose_secret().eq(rejected.expose_secret()) => Ok(t),
                    _ => {
                        let e = TokenError::NotRefreshable(self.vault.id().to_owned());
                        Err(self.dead_end(&mut st, Some(rejected), e))
                    }
                };
            }
            st.record = Some(fresh);
        }
        let now = self.clock.now();
        let record = st.record.as_ref().expect("loaded");
        let issued = record.issued_at;
        if record.holds(rejected) && issued_within(record, now, FRESH) {
            let first = st.refused_fresh == 0;
            st.refused_fresh += 1;
            match st.retry_at {
                Some(until) if now < until => return Err(TokenError::Backoff { until }),
                // The backoff is over: the refresh below is its retry.
                Some(_) => {}
                None if first => {}
                None => {
                    let age = issued.map_or(0, |at| (now - at).num_seconds());
                    return Err(self.failed(&mut st, TokenError::RejectedAfterRefresh(age)));
                }
            }
        }
        self.refresh(&mut st, Some(rejected)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryLeases;
    use crate::clock::ManualClock;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
    }

    fn s(v: &str) -> SecretString {
        SecretString::from(v)
    }

    fn expose(t: &SecretString) -> &str {
        t.expose_secret()
    }

    /// Webex's refresh endpoint: every refresh issues `at-N`/`rt-N` (valid `life`), accepts
    /// each refresh token once, and can be told to fail or to hold its answer.
    struct FakeRefresher {
        life: u64,
        state: Mutex<(u32, Vec<String>, String)>,
        fail: AtomicU32,
        gate: tokio::sync::Semaphore,
    }

    impl FakeRefresher {
        fn new(first_refresh_token: &str, life: u64) -> Arc<Self> {
            Arc::new(Self {
                life,
                state: Mutex::new((0, vec![], first_refresh_token.into())),
                fail: AtomicU32::new(0),
                gate: tokio::sync::Semaphore::new(1000),
            })
        }
        fn calls(&self) -> u32 {
            self.state.lock().unwrap().0
        }
        fn used(&self) -> Vec<String> {
            self.state.lock().unwrap().1.clone()
        }
    }

    #[async_trait]
    impl Refresher for FakeRefresher {
        async fn refresh(&self, g: &RefreshGrant<'_>) -> Result<Grant, RefreshError> {
            let _held = self.gate.acquire().await.unwrap();
            let mut st = self.state.lock().unwrap();
            st.0 += 1;
            st.1.push(expose(g.refresh_token).to_owned());
            assert_eq!((g.client_id, expose(g.client_secret)), ("cid", "csecret"));
            if self
                .fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
                || expose(g.refresh_token) != st.2
            {
                return Err(RefreshError::Refused {
                    status: 400,
                    message: "invalid_grant".into(),
                });
            }
            let n = st.0;
            st.2 = format!("rt-{n}");
            Ok(Grant {
                access_token: s(&format!("at-{n}")),
                expires_in: Some(self.life),
                refresh_token: Some(s(&format!("rt-{n}"))),
                refresh_token_expires_in: Some(90 * 86_400),
            })
        }
    }

    fn integration(
        access: &str,
        expires_at: DateTime<Utc>,
        issued_at: DateTime<Utc>,
    ) -> TokenRecord {
        TokenRecord {
            access_token: Some(s(access)),
            expires_at: Some(expires_at),
            issued_at: Some(issued_at),
            refresh_token: Some(s("rt-0")),
            client_id: Some("cid".into()),
            client_secret: Some(s("csecret")),
            ..TokenRecord::default()
        }
    }

    /// The vault as the manager sees it: the memory vault, whose writes can be told to fail or
    /// to wait.
    struct Flaky {
        mem: Arc<MemoryVault>,
        fail: AtomicU32,
        gate: tokio::sync::Semaphore,
    }

    #[async_trait]
    impl TokenVault for Flaky {
        fn id(&self) -> &str {
            self.mem.id()
        }
        async fn load(&self) -> Result<TokenRecord, TokenError> {
            self.mem.load().await
        }
        async fn store(&self, record: &TokenRecord) -> Result<(), TokenError> {
            let _held = self.gate.acquire().await.unwrap();
            if self
                .fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(TokenError::Vault("PutSecretValue: throttled".into()));
            }
            self.mem.store(record).await
        }
    }

    struct Rig {
        clock: Arc<ManualClock>,
        vault: Arc<MemoryVault>,
        flaky: Arc<Flaky>,
        leases: Arc<MemoryLeases>,
        webex: Arc<FakeRefresher>,
        lines: Arc<Mutex<Vec<String>>>,
    }

    impl Rig {
        fn new(record: TokenRecord, life: u64) -> Self {
            let vault = Arc::new(MemoryVault::new("arn:token", record));
            Self {
                clock: Arc::new(ManualClock::new(t0())),
                flaky: Arc::new(Flaky {
                    mem: vault.clone(),
                    fail: AtomicU32::new(0),
                    gate: tokio::sync::Semaphore::new(1000),
                }),
                vault,
                leases: Arc::new(MemoryLeases::default()),
                webex: FakeRefresher::new("rt-0", life),
                lines: Default::default(),
            }
        }
        fn manager(&self) -> TokenManager {
            let lines = self.lines.clone();
            TokenManager::new(
                self.flaky.clone(),
                self.webex.clone(),
                self.leases.clone(),
                self.clock.clone(),
                "presence-poller",
            )
            .with_metrics(Arc::new(move |l| lines.lock().unwrap().push(l)))
        }
        fn metrics(&self, name: &str) -> usize {
            self.lines
                .lock()
                .unwrap()
                .iter()
                .filter(|l| {
                    serde_json::from_str::<Value>(l)
                        .unwrap()
                        .get(name)
                        .is_some()
                })
                .count()
        }
    }

    #[test]
    fn record_parses_every_form_and_writes_camel_case() {
        let r = TokenRecord::parse(" plain \n", "the secret").unwrap();
        assert_eq!(expose(r.access_token.as_ref().unwrap()), "plain");
        assert!(!r.can_refresh());
        for key in ["token", "accessToken", "access_token", "WEBEX_TOKEN"] {
            let r = TokenRecord::parse(&format!(r#"{{"{key}":"t"}}"#), "s").unwrap();
            assert_eq!(expose(r.access_token.as_ref().unwrap()), "t", "{key}");
        }
        let raw = r#"{"accessToken":"a","expiresAt":"2026-12-01T13:00:00Z","refresh_token":"r",
            "refreshTokenExpiresAt":1796040000000,"client_id":"c","clientSecret":"cs","note":"kept"}"#;
        let r = TokenRecord::parse(raw, "s").unwrap();
        assert!(r.can_refresh());
        assert_eq!(r.expires_at, Some(t0() + chrono::Duration::hours(1)));
        assert_eq!(
            r.refresh_token_expires_at,
            Some(Utc.timestamp_millis_opt(1_796_040_000_000).unwrap())
        );
        let written: Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(
            written,
            serde_json::json!({"accessToken":"a","expiresAt":"2026-12-01T13:00:00.000Z",
                "refreshToken":"r","refreshTokenExpiresAt":"2026-11-30T12:00:00.000Z",
                "clientId":"c","clientSecret":"cs","note":"kept"})
        );
        let again = TokenRecord::parse(&r.to_json(), "s").unwrap();
        assert_eq!(again.to_json(), r.to_json(), "round trip");
        // Only refresh credentials: the first use refreshes.
        let r = TokenRecord::parse(
            r#"{"refreshToken":"r","clientId":"c","clientSecret":"x"}"#,
            "s",
        )
        .unwrap();
        assert!(r.access_token.is_none() && r.can_refresh());
    }

    #[test]
    fn record_errors_name_the_field_never_a_token() {
        for (raw, needle) in [
            (r#"{"refreshToken":"hunter2"}"#, "without an `accessToken`"),
            (
                r#"{"accessToken":"hunter2","expiresAt":"soon"}"#,
                "`expiresAt`",
            ),
            (r#"{"accessToken":7}"#, "not a string"),
            (
                r#"{"accessToken":"hunter2","expiresAt":true}"#,
                "`expiresAt`",
            ),
            ("{hunter2", "not valid JSON"),
            ("  ", "empty"),
        ] {
            let e = TokenRecord::parse(raw, "the Webex token secret")
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{raw}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        let r =
            TokenRecord::parse(r#"{"accessToken":"hunter2","clientSecret":"pw"}"#, "s").unwrap();
        let debug = format!("{r:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("\"pw\""),
            "{debug}"
        );
    }

    #[test]
    fn refresh_is_due_near_the_end_of_the_lifetime() {
        let p = RefreshPolicy::default();
        let at = |mins: i64| t0() + chrono::Duration::minutes(mins);
        // 14 days: 10 % (33.6 h) is longer than 10 min.
        let r = integration("a", at(14 * 24 * 60), t0());
        assert!(!p.due(&r, at(14 * 24 * 60 - 34 * 60)));
        assert!(p.due(&r, at(14 * 24 * 60 - 33 * 60)));
        // 1 hour (a Service App token): 10 minutes ahead.
        let r = integration("a", at(60), t0());
        assert!(!p.due(&r, at(49)));
        assert!(p.due(&r, at(50)));
        // 20 seconds: never in the first half.
        let r = integration("a", t0() + chrono::Duration::seconds(20), t0());
        assert!(!p.due(&r, t0() + chrono::Duration::seconds(9)));
        assert!(p.due(&r, t0() + chrono::Duration::seconds(10)));
        // Unknown lifetime: the margin; unknown expiry: never; no token: always.
        let mut r = integration("a", at(60), t0());
        r.issued_at = None;
        assert!(!p.due(&r, at(49)) && p.due(&r, at(50)));
        r.expires_at = None;
        assert!(!p.due(&r, at(10_000)));
        r.access_token = None;
        assert!(p.due(&r, t0()));
    }

    #[tokio::test]
    async fn refreshes_ahead_of_expiry_and_stores_the_rotated_refresh_token() {
        let rig = Rig::new(
            integration("at-0", t0() + chrono::Duration::hours(1), t0()),
            3600,
        );
        let m = rig.manager();
        assert_eq!(expose(&m.token().await.unwrap()), "at-0");
        rig.clock.advance(chrono::Duration::minutes(51));
        assert_eq!(expose(&m.token().await.unwrap()), "at-1");
        assert_eq!(rig.webex.used(), ["rt-0"]);
        let stored = rig.vault.record();
        assert_eq!(expose(stored.refresh_token.as_ref().unwrap()), "rt-1");
        assert_eq!(
            stored.expires_at,
            Some(rig.clock.now() + chrono::Duration::hours(1))
        );
        assert_eq!(stored.issued_at, Some(rig.clock.now()));
        assert_eq!(
            stored.refresh_token_expires_at,
            Some(rig.clock.now() + chrono::Duration::days(90))
        );
        assert_eq!(stored.client_id.as_deref(), Some("cid"));
        // Three more expiries: each refresh uses the previous refresh token once.
        for _ in 0..3 {
            rig.clock.advance(chrono::Duration::minutes(51));
            m.token().await.unwrap();
            assert_eq!(
                expose(&m.token().await.unwrap()),
                expose(rig.vault.record().access_token.as_ref().unwrap())
            );
        }
        assert_eq!(rig.webex.used(), ["rt-0", "rt-1", "rt-2", "rt-3"]);
        assert_eq!(m.refreshes().await, 4);
        assert_eq!(rig.metrics(METRIC_REFRESHED), 4);
        assert_eq!(rig.metrics(METRIC_REFRESH_FAILED), 0);
        assert!(m.record().await.unwrap().refresh_token_expires_at.is_some());
    }

    #[tokio::test]
    async fn a_401_refreshes_once_and_a_record_without_an_access_token_refreshes_first() {
        let rig = Rig::new(
            integration("at-0", t0() + chrono::Duration::days(14), t0()),
            3600,
        );
        let m = rig.manager();
        let old = m.token().await.unwrap();
        assert_eq!(expose(&m.rejected(&old).await.unwrap()), "at-1");
        // A second caller that still holds the old token gets the new one without a refresh.
        assert_eq!(expose(&m.rejected(&old).await.unwrap()), "at-1");
        assert_eq!(rig.webex.calls(), 1);

        let mut only_refresh = integration("x", t0(), t0());
        only_refresh.access_token = None;
        only_refresh.expires_at = None;
        let rig = Rig::new(only_refresh, 3600);
        assert_eq!(expose(&rig.manager().token().await.unwrap()), "at-1");
    }

    #[tokio::test]
    async fn a_fixed_token_rereads_the_secret_after_a_401() {
        let rig = Rig::new(TokenRecord::fixed(s("one")), 3600);
        let m = rig.manager();
        let one = m.token().await.unwrap();
        for _ in 0..3 {
            let e = m.rejected(&one).await.unwrap_err();
            assert!(matches!(e, TokenError::NotRefreshable(_)), "{e}");
        }
        rig.vault
            .store(&TokenRecord::fixed(s("two")))
            .await
            .unwrap();
        assert_eq!(expose(&m.rejected(&one).await.unwrap()), "two");
        assert_eq!(rig.webex.calls(), 0);
        // Nothing can refresh it: the alarm's metric, once per refused token.
        assert_eq!(rig.metrics(METRIC_REFRESH_FAILED), 1);
        let line: Value = serde_json::from_str(&rig.lines.lock().unwrap()[0]).unwrap();
        assert_eq!(line["reason"], "not-refreshable");
        assert_eq!(expose(&m.token().await.unwrap()), "two");
        assert!(m.rejected(&s("two")).await.is_err());
        assert_eq!(
            rig.metrics(METRIC_REFRESH_FAILED),
            2,
            "another token refused"
        );
    }

    #[tokio::test]
    async fn an_expired_fixed_token_is_reported_once() {
        let mut record = TokenRecord::fixed(s("one"));
        record.expires_at = Some(t0() + chrono::Duration::hours(1));
        let rig = Rig::new(record, 3600);
        let m = rig.manager();
        assert_eq!(expose(&m.token().await.unwrap()), "one");
        rig.clock.advance(chrono::Duration::hours(2));
        for _ in 0..5 {
            let e = m.token().await.unwrap_err();
            assert!(matches!(e, TokenError::Expired(_)), "{e}");
        }
        assert_eq!(rig.metrics(METRIC_REFRESH_FAILED), 1);
        let line: Value = serde_json::from_str(&rig.lines.lock().unwrap()[0]).unwrap();
        assert_eq!(line["reason"], "expired");
        // What the presence poller reports as `webex:token-refresh-failed`, taken once.
        let failure = m
            .take_refresh_failure()
            .expect("the failure is kept until taken");
        assert_eq!(failure.reason, "expired");
        assert_eq!(m.take_refresh_failure(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn two_functions_refresh_once_between_them() {
        let rig = Rig::new(
            integration("at-0", t0() + chrono::Duration::hours(1), t0()),
            3600,
        );
        let (a, b) = (rig.manager(), rig.manager());
        rig.clock.advance(chrono::Duration::minutes(55));
        // Hold Webex's answer so that both are refreshing at once.
        let permits = rig.webex.gate.acquire_many(1000).await.unwrap();
        let (ta, tb, ()) = tokio::join!(a.token(), b.token(), async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            drop(permits);
        });
        assert_eq!(expose(&ta.unwrap()), "at-1");
        assert_eq!(expose(&tb.unwrap()), "at-1");
        assert_eq!(rig.webex.calls(), 1, "one refresh call");
        assert_eq!(rig.vault.stores(), 1);
        // A 401 elsewhere with the old token after the refresh: re-read, no second refresh.
        let c = rig.manager();
        assert_eq!(expose(&c.rejected(&s("at-0")).await.unwrap()), "at-1");
        assert_eq!(rig.webex.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_giving_up_does_not_cancel_a_refresh_halfway() {
        let rig = Rig::new(
            integration("at-0", t0() + chrono::Duration::hours(1), t0()),
            3600,
        );
        let m = rig.manager();
        rig.clock.advance(chrono::Duration::minutes(55));
        // Webex has answered (rt-0 is spent, rt-1 issued) and the write-back is slow.
        let permits = rig.flaky.gate.acquire_many(1000).await.unwrap();
        let gave_up = tokio::time::timeout(Duration::from_secs(1), m.token()).await;
        assert!(gave_up.is_err(), "the caller's deadline fired mid-refresh");
        assert_eq!(rig.webex.used(), ["rt-0"]);
        drop(permits);
        // The refresh finishes without its caller: the rotated pair is stored, the lease freed.
        assert_eq!(expose(&m.token().await.unwrap()), "at-1");
        assert_eq!(
            expose(rig.vault.record().refresh_token.as_ref().unwrap()),
            "rt-1"
        );
        let now = rig.clock.now();
        assert!(rig
            .leases
            .acquire(
                &m.lease_name(),
                "other",
                Term::new(now, now + chrono::Duration::seconds(1))
            )
            .await
            .unwrap());
        assert_eq!(rig.webex.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_write_back_is_retried_by_the_next_call_and_never_clobbered() {
        let rig = Rig::new(
            integration("at-0", t0() + chrono::Duration::days(14), t0()),
            3600,
        );
        let m = rig.manager();
        rig.flaky.fail.store(100, Ordering::SeqCst);
        rig.clock.advance(chrono::Duration::minutes(1));
        assert_eq!(expose(&m.rejected(&s("at-0")).await.unwrap()), "at-1");
        assert_eq!(
            expose(rig.vault.record().refresh_token.as_ref().unwrap()),
            "rt-0",
            "the write-back failed"
        );
        // Webex refuses at-1 (a minute on) while another function holds the lease: the older
        // record in the vault (at-0, still valid) must not replace the unsaved one.
        rig.clock.advance(chrono::Duration::minutes(1));
        let now = rig.clock.now();
        let term = Term::new(now, now + chrono::Duration::minutes(5));
        assert!(rig
            .leases
            .acquire(&m.lease_name(), "other", term)
            .await
            .unwrap());
        let e = m.rejected(&s("at-1")).await.unwrap_err();
        assert!(matches!(e, TokenError::Busy), "{e}");
        let kept = m.record().await.unwrap();
        assert_eq!(expose(kept.refresh_token.as_ref().unwrap()), "rt-1");
        // The lease freed and the vault writable again: the next call writes the pair back.
        rig.leases.release(&m.lease_name(), "other").await.unwrap();
        rig.flaky.fail.store(0, Ordering::SeqCst);
        assert_eq!(expose(&m.token().await.unwrap()), "at-1");
        let stored = rig.vault.record();
        assert_eq!(expose(stored.refresh_token.as_ref().unwrap()), "rt-1");
        assert_eq!(expose(stored.access_token.as_ref().unwrap()), "at-1");
        assert_eq!(rig.webex.calls(), 1);
    }

    #[tokio::test]
    async fn webex_refusing_fresh_tokens_backs_off_instead_of_refreshing_every_call() {
        let rig = Rig::new(
            integration("at-0", t0() + chrono::Duration::days(14), t0()),
            3600,
        );
        let m = rig.manager();
        rig.clock.advance(chrono::Duration::hours(1));
        assert_eq!(expose(&m.rejected(&s("at-0")).await.unwrap()), "at-1");
        // Webex refuses at-1 a second after its issue: one refresh at once (clocks may
        // disagree); it refuses at-2 as well, and every token after that.
        rig.clock.advance(chrono::Duration::seconds(1));
        assert_eq!(expose(&m.rejected(&s("at-1")).await.unwrap()), "at-2");
        rig.clock.advance(chrono::Duration::seconds(1));
        let e = m.rejected(&s("at-2")).await.unwrap_err();
        assert!(matches!(e, TokenError::RejectedAfterRefresh(1)), "{e}");
        assert_eq!(rig.metrics(METRIC_REFRESH_FAILED), 1);
        let last: Value = serde_json::from_str(rig.lines.lock().unwrap().last().unwrap()).unwrap();
        assert_eq!(last["reason"], "rejected-after-refresh");
        for _ in 0..20 {
            let e = m.rejected(&s("at-2")).await.unwrap_err();
            assert!(matches!(e, TokenError::Backoff { .. }), "{e}");
        }
        assert_eq!(rig.webex.calls(), 2, "no refresh within the backoff");
        // After the backoff (5 s) one refresh; its token refused too: the wait doubles.
        rig.clock.advance(chrono::Duration::seconds(5));
        assert_eq!(expose(&m.rejected(&s("at-2")).await.unwrap()), "at-3");
        rig.clock.advance(chrono::Duration::seconds(1));
        assert!(m.rejected(&s("at-3")).await.is_err());
        assert_eq!(m.failures().await, 2);
        rig.clock.advance(chrono::Duration::seconds(5));
        assert!(matches!(
            m.rejected(&s("at-3")).await.unwrap_err(),
            TokenError::Backoff { .. }
        ));
        assert_eq!(rig.webex.calls(), 3);
        rig.clock.advance(chrono::Duration::seconds(5));
        assert_eq!(expose(&m.rejected(&s("at-3")).await.unwrap()), "at-4");
        assert_eq!(rig.metrics(METRIC_REFRESH_FAILED), 2);
        // A fresh token that worked ends the run: its refusal refreshes at once.
        m.accepted(&s("at-4")).await;
        assert_eq!(m.failures().await, 0);
        rig.clock.advance(chrono::Duration::seconds(1));
        assert_eq!(expose(&m.rejected(&s("at-4")).await.unwrap()), "at-5");
        rig.clock.advance(chrono::Duration::seconds(1));
        assert!(m.rejected(&s("at-5")).await.is_err(), "the second in a row");
        rig.clock.advance(chrono::Duration::seconds(5));
        assert_eq!(expose(&m.rejected(&s("at-5")).await.unwrap()), "at-6");
        // A token that lasts clears the count; a refusal after a minute refreshes at once.
        rig.clock.advance(chrono::Duration::minutes(2));
        assert_eq!(expose(&m.token().await.unwrap()), "at-6");
        assert_eq!(m.failures().await, 0);
        assert_eq!(expose(&m.rejected(&s("at-6")).await.unwrap()), "at-7");
    }

    #[tokio::test(start_paused = true)]
    async fn the_refresh_lease_outlasts_everything_done_holding_it() {
        let term = LeaseTiming::default().term;
        assert!(term >= Duration::from_secs(120));
        assert!(term > REFRESH_TIMEOUT + 2 * VAULT_TIMEOUT, "{term:?}");
        let rig = Rig::new(
            integration("at-0", t0() + chrono::Duration::hours(1), t0()),
            3600,
        );
        let m = rig.manager();
        rig.clock.advance(chrono::Duration::minutes(55));
        // Secrets Manager hangs on the write-back: bounded, the refresh ends within the term.
        let _hung = rig.flaky.gate.acquire_many(1000).await.unwrap();
        let started = tokio::time::Instant::now();
        let t = tokio::time::timeout(term, m.token())
            .await
            .expect("bounded");
        assert_eq!(expose(&t.unwrap()), "at-1");
        assert_eq!(started.elapsed(), VAULT_TIMEOUT);
        assert_eq!(
            rig.metrics(METRIC_REFRESH_FAILED),
            1,
            "the write-back failure"
        );
    }

    #[tokio::test]
    async fn a_failed_refresh_backs_off_and_reports() {
        let rig = Rig::new(
            integration("at-0", t0() + chrono::Duration::hours(1), t0()),
            3600,
        );
        let m = rig.manager();
        rig.webex.fail.store(2, Ordering::SeqCst);
        rig.clock.advance(chrono::Duration::minutes(55));
        // Ahead of expiry a failure still serves the old token.
        assert_eq!(expose(&m.token().await.unwrap()), "at-0");
        assert_eq!((rig.webex.calls(), m.failures().await), (1, 1));
        assert_eq!(rig.metrics(METRIC_REFRESH_FAILED), 1);
        let line: Value = serde_json::from_str(&rig.lines.lock().unwrap()[0]).unwrap();
        assert_eq!(line["reason"], "refused");
        assert_eq!(line["Function"], "presence-poller");
        assert!(!line.to_string().contains("rt-0") && !line.to_string().contains("csecret"));
        // Within the backoff (5 s) no call reaches Webex, however often we ask.
        for _ in 0..50 {
            m.token().await.unwrap();
        }
        let e = m.rejected(&s("at-0")).await.unwrap_err();
        assert!(matches!(e, TokenError::Backoff { .. }), "{e}");
        assert_eq!(rig.webex.calls(), 1);
        // After it, one more try (fails: the wait doubles), then success.
        rig.clock.advance(chrono::Duration::seconds(5));
        m.token().await.unwrap();
        assert_eq!((rig.webex.calls(), m.failures().await), (2, 2));
        rig.clock.advance(chrono::Duration::seconds(9));
        m.token().await.unwrap();
        assert_eq!(rig.webex.calls(), 2, "10 s after the second failure");
        rig.clock.advance(chrono::Duration::seconds(1));
        assert_eq!(expose(&m.token().await.unwrap()), "at-3");
        assert_eq!(m.failures().await, 0);
        assert_eq!(rig.metrics(METRIC_REFRESH_FAILED), 2);
        // Expired and unrefreshable: an error, not the dead token.
        rig.webex.fail.store(100, Ordering::SeqCst);
        rig.clock.advance(chrono::Duration::hours(2));
        assert!(matches!(
            m.token().await.unwrap_err(),
            TokenError::Refresh(_)
        ));
        assert!(matches!(
            m.token().await.unwrap_err(),
            TokenError::Backoff { .. }
        ));
    }

    #[test]
    fn bots_are_refused() {
        assert_eq!(refuse_bot(Some("bot")), Err(TokenError::Bot));
        assert!(TokenError::Bot
            .to_string()
            .contains("integration or a Service App"));
        assert!(refuse_bot(Some("person")).is_ok());
        assert!(refuse_bot(Some("appuser")).is_ok());
        assert!(refuse_bot(None).is_ok());
    }

    #[test]
    fn flags_make_a_record() {
        let args = |token: Option<&str>, refresh: Option<&str>| WebexArgs {
            base_url: "http://x/v1".into(),
            token: token.map(s),
            client_id: Some("cid".into()),
            client_secret: Some(s("csecret")),
            refresh_token: refresh.map(s),
        };
        assert!(args(None, None).token_record().is_none());
        let r = args(Some("t"), None).token_record().unwrap();
        assert!(!r.can_refresh());
        let r = args(None, Some("r")).token_record().unwrap();
        assert!(r.can_refresh() && r.access_token.is_none());
    }

    #[test]
    fn refusals_carry_the_oauth_error_and_tracking_id() {
        assert_eq!(
            refusal_message(
                r#"{"error":"invalid_grant","error_description":"expired"}"#,
                Some("T1")
            ),
            "invalid_grant: expired (trackingId T1)"
        );
        assert_eq!(
            refusal_message(r#"{"message":"bad","trackingId":"T2"}"#, None),
            "bad (trackingId T2)"
        );
        assert_eq!(refusal_message("<html>", None), "(no error in the body)");
    }

    #[test]
    fn a_429_or_423_refusal_is_a_rate_limit() {
        let refused = |status| {
            TokenError::Refresh(RefreshError::Refused {
                status,
                message: String::new(),
            })
        };
        assert!(refused(429).is_rate_limited());
        assert!(refused(423).is_rate_limited());
        assert!(!refused(400).is_rate_limited());
        assert!(!TokenError::Refresh(RefreshError::Transport("x".into())).is_rate_limited());
    }
}
