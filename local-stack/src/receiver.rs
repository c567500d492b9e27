//! The `--demo` receiver: a subscriber endpoint on 127.0.0.1 that checks every signature scheme a
//! delivery carries and prints what it got.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use relay_shared::signing::{
    hook_signature, service_hook_signature, standard_webhooks_signature, SigningSecret,
};
use tokio::sync::mpsc;

/// What the receiver saw for one delivery.
#[derive(Debug, Clone)]
pub struct Received {
    pub delivery_id: String,
    pub event_type: String,
    pub body: String,
    pub standard_ok: bool,
    pub hook_ok: bool,
    pub service_hook_ok: bool,
}

impl Received {
    pub fn all_valid(&self) -> bool {
        self.standard_ok && self.hook_ok && self.service_hook_ok
    }
}

struct ReceiverState {
    secret: SigningSecret,
    tx: mpsc::UnboundedSender<Received>,
    /// `/flaky`: the `webhook-id`s seen once already.
    seen: Mutex<HashSet<String>>,
}

/// Verifies a delivery's three signatures against `secret`.
pub fn verify(secret: &SigningSecret, headers: &HeaderMap, body: &[u8]) -> (bool, bool, bool) {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let ts: i64 = h("webhook-timestamp").parse().unwrap_or_default();
    let expected = standard_webhooks_signature(secret, &h("webhook-id"), ts, body);
    let standard_ok = h("webhook-signature").split(' ').any(|s| s == expected);
    let hook_ok = h("x-hook-signature") == hook_signature(secret, body);
    let service_hook_ok = h("x-servicehook-signature") == service_hook_signature(secret, body);
    (standard_ok, hook_ok, service_hook_ok)
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let (standard_ok, hook_ok, service_hook_ok) = verify(&state.secret, &headers, &body);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let got = Received {
        delivery_id: header("webhook-id"),
        event_type: header("x-servicehook-event"),
        body: String::from_utf8_lossy(&body).into_owned(),
        standard_ok,
        hook_ok,
        service_hook_ok,
    };
    let status = if got.all_valid() {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    };
    let _ = state.tx.send(got);
    status
}

/// `/flaky`, for webhooks a person creates in the console (with a secret the receiver does not
/// know, so nothing is verified): the first attempt of each delivery (`webhook-id`) is a 503, every
/// later one — a retry, a resend, a redrive — a 200. Bounded: it remembers at most 10,000 ids.
async fn flaky(State(state): State<Arc<ReceiverState>>, headers: HeaderMap) -> StatusCode {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut seen = state.seen.lock().expect("not poisoned");
    if seen.len() >= 10_000 {
        seen.clear();
    }
    if seen.insert(id) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

/// Starts the receiver on 127.0.0.1 (random port). Returns its URL and a stream of deliveries.
pub async fn start(
    secret: SigningSecret,
) -> std::io::Result<(String, mpsc::UnboundedReceiver<Received>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new()
        .route("/hook", post(receive))
        .route("/flaky", post(flaky))
        .with_state(Arc::new(ReceiverState {
            secret,
            tx,
            seen: Mutex::new(HashSet::new()),
        }));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, rx))
}
