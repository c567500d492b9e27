//! A fake Webex on 127.0.0.1 that behaves like Webex's published API (webex-openapi-specs,
//! `public-spec/webex-messaging.json`; see docs/relayctl.md and docs/presence-poller.md), shared by
//! the unit, integration and e2e tests: `GET /v1/people` with `Link` paging and Webex's `max` caps,
//! `/v1/people/me`, bearer tokens that expire on a clock the test moves, `POST /v1/access_token`
//! rotating the refresh token on every use, a per-token call budget answered with 429 +
//! `Retry-After`, `/v1/webhooks` CRUD with Webex's ownership and reactivation rules, deliveries
//! signed with `X-Spark-Signature` that deactivate a failing webhook, and
//! `/v1/telephony/webhookInterestRegistrations`. Every response carries a `trackingid` header and
//! every request is recorded.
//!
//! By default any bearer token is accepted (an admin of [`ORG`], person [`ME`], never expiring);
//! [`FakeWebex::add_token`], [`FakeWebex::accept_tokens`] or [`FakeWebex::oauth_client`] switch to
//! known tokens only.

// Handlers return axum's `Response` as their error too (it is the answer Webex would give).
#![allow(clippy::result_large_err)]

mod people;
mod webhooks;

pub use people::{people, person};

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

/// The org every token belongs to unless told otherwise.
pub const ORG: &str = "org-12345";
/// The person behind the default token (`GET /v1/people/me`).
pub const ME: &str = "Y2lzY29zcGFyazovL3VzL1BFT1BMRS9mYWtlLW1l";
/// Webex's answer to a missing, unknown or expired bearer token.
pub const UNAUTHORIZED: &str =
    "The request requires a valid access token set in the Authorization request header.";
/// Webex's example refresh-token lifetime (90 days), returned as `refresh_token_expires_in`.
pub const REFRESH_TOKEN_EXPIRES_IN: u64 = 7_776_000;

/// A scripted answer replacing the next `GET /v1/people` response for a page.
#[derive(Debug, Clone)]
pub enum Fault {
    Status(u16),
    RateLimited { status: u16, retry_after: u64 },
}

impl Fault {
    pub fn rate_limited(status: u16, retry_after: u64) -> Self {
        Fault::RateLimited {
            status,
            retry_after,
        }
    }
}

/// One `GET /v1/people` request (listing pages only; see [`FakeWebex::recorded`] for all).
#[derive(Debug, Clone)]
pub struct Seen {
    pub page: usize,
    pub query: Vec<(String, String)>,
    pub token: Option<String>,
    pub status: u16,
}

/// One request of any kind, as the fake answered it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The full path, `/v1/...`.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub token: Option<String>,
    pub body: String,
    pub status: u16,
    /// The `Link` header's next page, if the answer had one.
    pub next: Option<String>,
    /// Real time of arrival.
    pub at: Instant,
}

/// One `POST /v1/access_token`.
#[derive(Debug, Clone)]
pub struct Refresh {
    pub client_id: String,
    /// The refresh token presented.
    pub used: String,
    /// The new pair, when the refresh succeeded.
    pub issued_access: Option<String>,
    pub issued_refresh: Option<String>,
    pub status: u16,
    pub at: Instant,
}

/// Who a token is.
#[derive(Debug, Clone)]
pub struct Token {
    pub org: String,
    /// Admin of `org` (org listings, `ownedBy: org`, interest registrations).
    pub admin: bool,
    /// Other orgs this (partner) admin may name in `orgId`.
    pub partner_of: Vec<String>,
    /// The Person `type`: `person`, `bot` or `appuser`.
    pub kind: String,
    pub person: String,
    /// The integration that minted it (interest registrations are per user and client).
    pub client: String,
    /// On the fake's clock; `None`: never.
    pub expires_at: Option<Instant>,
}

impl Token {
    pub fn admin(org: &str) -> Token {
        Token {
            org: org.to_owned(),
            admin: true,
            partner_of: Vec::new(),
            kind: "person".into(),
            person: ME.into(),
            client: "fake-client".into(),
            expires_at: None,
        }
    }
}

struct Client {
    secret: String,
    access_lifetime: Duration,
}

struct Window {
    start: Instant,
    calls: u32,
}

struct Webhook {
    json: Value,
    failures: u32,
}

struct Interest {
    interests: Value,
    expires_at: chrono::DateTime<chrono::Utc>,
}

struct Inner {
    base: String,
    org: String,
    person: String,
    offset: Duration,
    people: Vec<Value>,
    snapshots: VecDeque<Vec<Value>>,
    faults: VecDeque<(Option<usize>, Fault)>,
    strict: bool,
    tokens: HashMap<String, Token>,
    clients: HashMap<String, Client>,
    /// Live refresh tokens → their client.
    refresh_tokens: HashMap<String, String>,
    refreshes: Vec<Refresh>,
    fail_refreshes: u32,
    minted: u64,
    budget: Option<u32>,
    windows: HashMap<String, Window>,
    webhooks: Vec<Webhook>,
    webhooks_per_page: Option<usize>,
    deactivate_after: u32,
    interests: HashMap<(String, String), Interest>,
    recorded: Vec<Recorded>,
    seen: Vec<Seen>,
}

impl Inner {
    fn now(&self) -> Instant {
        Instant::now() + self.offset
    }

    fn wall(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + self.offset
    }

    /// An admin of the current org, the current person: who the default and new tokens are.
    fn identity(&self) -> Token {
        Token {
            person: self.person.clone(),
            ..Token::admin(&self.org)
        }
    }

    fn mint(&mut self, prefix: &str) -> String {
        self.minted += 1;
        format!("{prefix}-{}", self.minted)
    }
}

/// The fake. Clones share one server.
#[derive(Clone)]
pub struct FakeWebex {
    /// `http://127.0.0.1:PORT/v1`, what the relay takes as its Webex base URL.
    pub base_url: String,
    inner: Arc<Mutex<Inner>>,
}

/// An answer in Webex's error shape, `{"message", "trackingId"}`.
pub(crate) fn error(status: u16, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        axum::Json(json!({"message": message})),
    )
        .into_response()
}

/// One page of a Webex list, `{"items": [...]}`, from `offset`; when more follow, an RFC 5988
/// `Link: <…?…&cursor=N>; rel="next"` to the same path with the same query.
pub(crate) fn page(
    base: &str,
    path: &str,
    query: &[(String, String)],
    all: &[Value],
    offset: usize,
    max: usize,
) -> Response {
    let end = (offset + max).min(all.len());
    let items = all
        .get(offset..end)
        .map(<[Value]>::to_vec)
        .unwrap_or_default();
    let mut resp = axum::Json(json!({ "items": items })).into_response();
    if end < all.len() {
        let mut next = url::Url::parse(&format!("{base}{path}")).unwrap();
        {
            let mut q = next.query_pairs_mut();
            for (k, v) in query.iter().filter(|(k, _)| k != "cursor") {
                q.append_pair(k, v);
            }
            q.append_pair("cursor", &end.to_string());
        }
        resp.headers_mut().insert(
            "link",
            HeaderValue::from_str(&format!("<{next}>; rel=\"next\"")).unwrap(),
        );
    }
    resp
}

impl FakeWebex {
    /// Serves `people` until the test's runtime ends.
    pub async fn start(people: Vec<Value>) -> FakeWebex {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        let inner = Arc::new(Mutex::new(Inner {
            base: base_url.clone(),
            org: ORG.into(),
            person: ME.into(),
            offset: Duration::ZERO,
            people,
            snapshots: VecDeque::new(),
            faults: VecDeque::new(),
            strict: false,
            tokens: HashMap::new(),
            clients: HashMap::new(),
            refresh_tokens: HashMap::new(),
            refreshes: Vec::new(),
            fail_refreshes: 0,
            minted: 0,
            budget: None,
            windows: HashMap::new(),
            webhooks: Vec::new(),
            webhooks_per_page: None,
            deactivate_after: 3,
            interests: HashMap::new(),
            recorded: Vec::new(),
            seen: Vec::new(),
        }));
        let app = Router::new().fallback(handle).with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeWebex { base_url, inner }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    /// The org of tokens created from now on (and of the default token).
    pub fn set_org(&self, org: &str) {
        self.lock().org = org.to_owned();
    }

    /// The person of tokens created from now on (and of the default token, and [`Self::add_webhook`]'s creator).
    pub fn set_person(&self, person: &str) {
        self.lock().person = person.to_owned();
    }

    pub fn set_people(&self, people: Vec<Value>) {
        self.lock().people = people;
    }

    pub fn update(&self, f: impl FnOnce(&mut Vec<Value>)) {
        f(&mut self.lock().people);
    }

    pub fn people(&self) -> Vec<Value> {
        self.lock().people.clone()
    }

    /// Replaces the people at each later first-page listing, in order.
    pub fn push_snapshot(&self, people: Vec<Value>) {
        self.lock().snapshots.push_back(people);
    }

    /// Answers the next listing of `page` (any page: `None`) with `fault`, once.
    pub fn fault(&self, page: Option<usize>, fault: Fault) {
        self.lock().faults.push_back((page, fault));
    }

    /// Moves the fake's clock forward: tokens expire, budget windows and registrations age.
    pub fn advance(&self, by: Duration) {
        self.lock().offset += by;
    }

    /// Accepts `token` (an admin of the current org) for `lifetime` on the fake's clock; from now
    /// on only known tokens are accepted.
    pub fn add_token(&self, token: &str, lifetime: Option<Duration>) {
        let mut s = self.lock();
        let mut t = s.identity();
        t.expires_at = lifetime.map(|l| s.now() + l);
        s.tokens.insert(token.to_owned(), t);
        s.strict = true;
    }

    /// Accepts exactly these tokens (never expiring) and no others.
    pub fn accept_tokens(&self, tokens: &[&str]) {
        let mut s = self.lock();
        let who = s.identity();
        s.tokens = tokens
            .iter()
            .map(|t| (t.to_string(), who.clone()))
            .collect();
        s.strict = true;
    }

    /// Sets who `token` is (adding it if unknown); does not change strictness.
    pub fn set_token(&self, token: &str, who: Token) {
        self.lock().tokens.insert(token.to_owned(), who);
    }

    /// Registers an integration whose `refresh_token` `POST /v1/access_token` redeems once; each
    /// access token it mints lives `access_lifetime` on the fake's clock.
    pub fn oauth_client(
        &self,
        client_id: &str,
        client_secret: &str,
        refresh_token: &str,
        access_lifetime: Duration,
    ) {
        let mut s = self.lock();
        s.clients.insert(
            client_id.to_owned(),
            Client {
                secret: client_secret.to_owned(),
                access_lifetime,
            },
        );
        s.refresh_tokens
            .insert(refresh_token.to_owned(), client_id.to_owned());
        s.strict = true;
    }

    /// The next `n` refreshes fail with 400 `invalid_grant` (the refresh token stays valid).
    pub fn fail_refreshes(&self, n: u32) {
        self.lock().fail_refreshes = n;
    }

    pub fn refreshes(&self) -> Vec<Refresh> {
        self.lock().refreshes.clone()
    }

    /// At most `calls` requests per token per minute of the fake's clock; past it 429 + Retry-After.
    pub fn set_budget(&self, calls: Option<u32>) {
        self.lock().budget = calls;
    }

    /// Every request so far, in arrival order.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.lock().recorded.clone()
    }

    /// The `GET /v1/people` requests so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// How many `GET /v1/people` requests so far.
    pub fn requests(&self) -> usize {
        self.lock().seen.len()
    }

    /// Waits (bounded by `within`) until `more` listings than now were answered 200 with a full
    /// last page; panics past the deadline.
    pub async fn wait_for_listings(&self, more: usize, within: Duration) {
        let complete = |s: &FakeWebex| s.complete_listings().len();
        let target = complete(self) + more;
        let deadline = Instant::now() + within;
        while complete(self) < target {
            assert!(
                Instant::now() < deadline,
                "fewer than {more} complete people listings in {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The arrival time of each `GET /v1/people` answered 200 without a next page (the end of a
    /// listing).
    pub fn complete_listings(&self) -> Vec<Instant> {
        self.lock()
            .recorded
            .iter()
            .filter(|r| r.path == "/v1/people" && r.status == 200 && r.next.is_none())
            .map(|r| r.at)
            .collect()
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
}

/// Who the request is, or the 401/429 Webex would answer.
fn authenticate(s: &mut Inner, token: Option<&str>) -> Result<Token, Response> {
    let now = s.now();
    let who = match token {
        None => return Err(error(401, UNAUTHORIZED)),
        Some(t) => match s.tokens.get(t) {
            Some(who) if who.expires_at.is_none_or(|e| now < e) => who.clone(),
            Some(_) => return Err(error(401, UNAUTHORIZED)),
            None if s.strict => return Err(error(401, UNAUTHORIZED)),
            None => s.identity(),
        },
    };
    if let Some(budget) = s.budget {
        let w = s
            .windows
            .entry(token.unwrap_or_default().to_owned())
            .or_insert(Window {
                start: now,
                calls: 0,
            });
        if now >= w.start + Duration::from_secs(60) {
            *w = Window {
                start: now,
                calls: 0,
            };
        }
        if w.calls >= budget {
            let left = (w.start + Duration::from_secs(60)).saturating_duration_since(now);
            let mut r = error(429, "Too Many Requests");
            r.headers_mut().insert(
                "retry-after",
                HeaderValue::from(left.as_secs_f64().ceil().max(1.0) as u64),
            );
            return Err(r);
        }
        w.calls += 1;
    }
    Ok(who)
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let path = uri.path().to_owned();
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let token = bearer(&headers);
    let text = String::from_utf8_lossy(&body).into_owned();
    let mut resp = {
        let mut s = inner.lock().unwrap();
        let route = path.strip_prefix("/v1").unwrap_or("");
        let resp = if route == "/access_token" && method == Method::POST {
            webhooks::refresh(&mut s, &text, at)
        } else {
            match authenticate(&mut s, token.as_deref()) {
                Err(r) => r,
                Ok(who) => route_authenticated(&mut s, &method, route, &query, &who, &text),
            }
        };
        if route == "/people" && method == Method::GET {
            let max = people::page_size(&query);
            let offset: usize = people::param(&query, "cursor")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            s.seen.push(Seen {
                page: offset / max.max(1),
                query: query.clone(),
                token: token.clone(),
                status: resp.status().as_u16(),
            });
        }
        s.recorded.push(Recorded {
            method: method.to_string(),
            path: path.clone(),
            query,
            token,
            body: text,
            status: resp.status().as_u16(),
            next: resp
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            at,
        });
        resp
    };
    let tracking = format!("ROUTER_{}", ulid::Ulid::new());
    resp.headers_mut()
        .insert("trackingid", HeaderValue::from_str(&tracking).unwrap());
    with_tracking_id(resp, &tracking).await
}

/// Adds `trackingId` to a Webex error body (`{"message": …}`), as Webex's errors carry it.
async fn with_tracking_id(resp: Response, tracking: &str) -> Response {
    if resp.status().is_success() {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let mut value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if value.get("message").is_some() {
        value["trackingId"] = json!(tracking);
        let mut r = (parts.status, axum::Json(value)).into_response();
        for (k, v) in parts.headers.iter() {
            if k != "content-length" {
                r.headers_mut().insert(k, v.clone());
            }
        }
        return r;
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

fn route_authenticated(
    s: &mut Inner,
    method: &Method,
    route: &str,
    query: &[(String, String)],
    who: &Token,
    body: &str,
) -> Response {
    match (method.as_str(), route) {
        ("GET", "/people") => people::list(s, query, who),
        ("GET", "/people/me") => people::me(who),
        ("GET", "/webhooks") => webhooks::list(s, query, who),
        ("POST", "/webhooks") => webhooks::create(s, body, who),
        (m, r) if r.starts_with("/webhooks/") => {
            webhooks::one(s, m, &r["/webhooks/".len()..], body, who)
        }
        (m, "/telephony/webhookInterestRegistrations") => webhooks::interests(s, m, body, who),
        _ => error(404, "The requested resource could not be found."),
    }
}
